// The views, triggers, routines and events of a database, from information_schema. What a user
// sees there depends on its privileges (checked on MariaDB 10.11): with SELECT alone, views are
// listed but triggers, routines and events are not; with EXECUTE, routines are listed without
// their bodies. Root's client sees everything.
import { z } from 'zod';
import type { ObjectKind } from './grants.js';

/** Per kind, how many objects there are and (some of) their names, e.g. "procedure p1". */
export type Inventory = Partial<Record<ObjectKind, { readonly count: number; readonly names: readonly string[] }>>;

export function inventoryQuery(database: string): string {
  const schema = `'${database}'`;
  return [
    `SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${schema}`,
    `SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${schema}`,
    `SELECT 'routine', CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${schema}`,
    `SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${schema}`,
  ].join(' UNION ALL ');
}

/** The client's --batch output of inventoryQuery: one "kind<TAB>name" line per object. */
export function parseInventory(stdout: string): Inventory {
  const inventory: Record<string, { count: number; names: string[] }> = {};
  for (const line of stdout.split('\n')) {
    const [kind, name] = line.split('\t');
    if (kind === undefined || name === undefined) continue;
    const entry = (inventory[kind] ??= { count: 0, names: [] });
    entry.count += 1;
    entry.names.push(name);
  }
  for (const entry of Object.values(inventory)) entry.names.sort();
  return inventory;
}

/** At most `limit` names per kind; the count stays exact. */
export function capInventory(inventory: Inventory, limit: number): Inventory {
  return Object.fromEntries(
    Object.entries(inventory).map(([kind, entry]) => [
      kind,
      { count: entry.count, names: entry.names.slice(0, limit) },
    ]),
  );
}

const PLURAL: Readonly<Record<ObjectKind, string>> = {
  view: 'views',
  trigger: 'triggers',
  routine: 'routines',
  event: 'events',
};

export function plural(kind: ObjectKind): string {
  return PLURAL[kind];
}

/** "2 routines (function f1, procedure p1)", with "and N more" when names were left out. */
export function describeKind(
  kind: ObjectKind,
  entry: { readonly count: number; readonly names: readonly string[] },
): string {
  const noun = entry.count === 1 ? kind : PLURAL[kind];
  const more = entry.count > entry.names.length ? ` and ${entry.count - entry.names.length} more` : '';
  return `${entry.count} ${noun} (${entry.names.join(', ')}${more})`;
}

const inventorySchema = z.partialRecord(
  z.enum(['view', 'trigger', 'routine', 'event']),
  z.object({ count: z.number().int().nonnegative(), names: z.array(z.string()).readonly() }).readonly(),
);

/** What root's client found, per database, or why it could not look. */
export const rootInventorySchema = z.union([
  z.object({ databases: z.record(z.string(), inventorySchema) }),
  z.object({ error: z.string() }),
]);

export type RootInventory = z.infer<typeof rootInventorySchema>;
