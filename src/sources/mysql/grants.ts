// What the backup user's grant lets mariadb-dump see. Without a privilege the dump either fails
// (views without SHOW VIEW, --events without EVENT) or silently leaves the objects out (triggers
// without TRIGGER, --routines without access to their bodies).
// Read from SHOW GRANTS, which also lists the privileges of the user's active role.

export type ObjectKind = 'view' | 'trigger' | 'routine' | 'event';

export const OBJECT_KINDS: readonly ObjectKind[] = ['view', 'trigger', 'routine', 'event'];

/** The privilege the backup user needs for each kind of object, as an operator would grant it. */
export const NEEDED: Readonly<Record<ObjectKind, string>> = {
  view: 'SHOW VIEW',
  trigger: 'TRIGGER',
  // SHOW CREATE ROUTINE ON db.* also works from MariaDB 11.3, but is a syntax error on 10.11.
  routine: 'SELECT ON mysql.proc',
  event: 'EVENT',
};

interface Grant {
  readonly privileges: ReadonlySet<string>;
  /** A LIKE pattern as stored by the server (`_` and `%` are wildcards), or null for `*`. */
  readonly database: string | null;
  readonly table: string | null;
}

const IDENTIFIER = String.raw`\*|\`(?:[^\`]|\`\`)*\``;
const GRANT_LINE = new RegExp(String.raw`^GRANT (.+?) ON (${IDENTIFIER})\.(${IDENTIFIER}) TO `);

/** Grants on databases and tables; role memberships, PROXY and routine-level grants do not matter here. */
export function parseGrants(lines: readonly string[]): Grant[] {
  const grants: Grant[] = [];
  for (const line of lines) {
    const match = GRANT_LINE.exec(line);
    if (match === null) continue;
    const [, list = '', database = '*', table = '*'] = match;
    const privileges = list
      // A privilege with a column list, SELECT (`a`, `b`), does not cover the table as a whole.
      .replace(/[A-Z ]+\([^)]*\)/g, '')
      .split(',')
      .map((privilege) => privilege.trim().toUpperCase());
    grants.push({ privileges: new Set(privileges), database: unquote(database), table: unquote(table) });
  }
  return grants;
}

function unquote(identifier: string): string | null {
  return identifier === '*' ? null : identifier.slice(1, -1).replaceAll('``', '`');
}

function likeMatches(pattern: string, name: string): boolean {
  const regex = pattern.replace(
    /\\([_%])|([_%])|([^_%\\]+|\\)/g,
    (_, escaped?: string, wildcard?: string, text?: string) => {
      if (escaped !== undefined) return escaped;
      if (wildcard !== undefined) return wildcard === '%' ? '.*' : '.';
      return (text ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    },
  );
  return new RegExp(`^${regex}$`, 's').test(name);
}

function holds(grant: Grant, privilege: string): boolean {
  return grant.privileges.has(privilege) || grant.privileges.has('ALL PRIVILEGES');
}

/** On every table of `database`: a global grant or a database grant whose pattern matches it. */
function onDatabase(grants: readonly Grant[], privilege: string, database: string): boolean {
  return grants.some(
    (grant) =>
      grant.table === null &&
      (grant.database === null || likeMatches(grant.database, database)) &&
      holds(grant, privilege),
  );
}

function onTable(grants: readonly Grant[], privilege: string, database: string, table: string): boolean {
  return (
    onDatabase(grants, privilege, database) ||
    grants.some((grant) => grant.database === database && grant.table === table && holds(grant, privilege))
  );
}

/** The kinds of object in `database` the grant lets a dump include. */
export function dumpableKinds(grants: readonly Grant[], database: string): Set<ObjectKind> {
  const kinds = new Set<ObjectKind>();
  if (onDatabase(grants, 'SHOW VIEW', database)) kinds.add('view');
  if (onDatabase(grants, 'TRIGGER', database)) kinds.add('trigger');
  if (onTable(grants, 'SELECT', 'mysql', 'proc') || onDatabase(grants, 'SHOW CREATE ROUTINE', database))
    kinds.add('routine');
  if (onDatabase(grants, 'EVENT', database)) kinds.add('event');
  return kinds;
}
