// Which views, triggers, routines and events a backup holds, and which it would lose. The backup
// user cannot see what its grant hides (objects.ts), so a run warns about every missing privilege
// and fails only for objects it can see would be lost; `check`, run by root, names them all.
import { OBJECT_KINDS, NEEDED, type ObjectKind } from './grants.js';
import { type Inventory, type RootInventory, describeKind, plural } from './objects.js';

export interface DatabaseCoverage {
  readonly database: string;
  /** The kinds the grant lets the dump include. */
  readonly dumpable: ReadonlySet<ObjectKind>;
  /** What the backup user itself sees in information_schema. */
  readonly visible: Inventory;
  /** The backup user as a GRANT statement names it, e.g. 'backup'@'localhost'. */
  readonly account: string;
}

export interface Finding {
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  readonly hint?: string;
}

export function missingKinds(coverage: DatabaseCoverage): ObjectKind[] {
  return OBJECT_KINDS.filter((kind) => !coverage.dumpable.has(kind));
}

/** "1 trigger (trg) needs TRIGGER" for each kind the grant misses and `inventory` has objects of. */
export function lostObjects(coverage: DatabaseCoverage, inventory: Inventory): string[] {
  return missingKinds(coverage).flatMap((kind) => {
    const entry = inventory[kind];
    return entry === undefined || entry.count === 0 ? [] : [`${describeKind(kind, entry)} need ${NEEDED[kind]}`];
  });
}

/** The statements that give the backup user what `kinds` need. */
export function grantHint(coverage: DatabaseCoverage, kinds: readonly ObjectKind[]): string {
  const onDatabase = kinds.filter((kind) => kind !== 'routine').map((kind) => NEEDED[kind]);
  const statements = [
    ...(onDatabase.length > 0
      ? [`GRANT ${onDatabase.join(', ')} ON \`${coverage.database}\`.* TO ${coverage.account};`]
      : []),
    ...(kinds.includes('routine') ? [`GRANT SELECT ON mysql.proc TO ${coverage.account};`] : []),
  ];
  return `as root: ${statements.join(' ')}`;
}

const CONSEQUENCE: Readonly<Record<ObjectKind, string>> = {
  view: 'a view makes the dump fail',
  trigger: 'triggers are left out of the backup',
  routine: 'procedures and functions are left out of the backup',
  event: 'events are left out of the backup',
};

/** The warning a run logs for a privilege the grant lacks. */
export function missingPrivilegeWarning(coverage: DatabaseCoverage, kind: ObjectKind): string {
  return `the MySQL grant lacks ${NEEDED[kind]} for ${coverage.database}: ${CONSEQUENCE[kind]}; the backup user cannot tell whether there are any, run backup-agent check as root to list them`;
}

/**
 * For `check`: objects the backup would lose fail, missing privileges without such objects warn.
 * `root` is what root's client listed before check ran again as the backup user (null: check
 * was not started by root, so only what the backup user sees is known).
 */
export function assessCoverage(coverages: readonly DatabaseCoverage[], root: RootInventory | null): Finding {
  const lost: string[] = [];
  const unknown: string[] = [];
  const hints: string[] = [];
  for (const coverage of coverages) {
    const missing = missingKinds(coverage);
    if (missing.length === 0) continue;
    const known = root !== null && 'databases' in root ? (root.databases[coverage.database] ?? {}) : coverage.visible;
    const losses = lostObjects(coverage, known);
    if (losses.length > 0) lost.push(`${coverage.database}: ${losses.join('; ')}`);
    unknown.push(`${coverage.database}: ${missing.map(plural).join(', ')}`);
    hints.push(grantHint(coverage, missing));
  }
  const hint = hints.length === 0 ? undefined : hints.join(' ');
  if (lost.length > 0) return { status: 'fail', detail: `not in the backup: ${lost.join(' | ')}`, hint };
  if (unknown.length === 0)
    return { status: 'ok', detail: 'the grant covers views, triggers, routines and events of every database' };
  const why =
    root === null
      ? 'the backup user cannot see them without the privilege; run check as root to list them'
      : 'error' in root
        ? `root's client could not list them: ${root.error}`
        : 'there are none now; ones created later would be missing';
  return { status: 'warn', detail: `the grant does not cover ${unknown.join(' | ')} (${why})`, hint };
}
