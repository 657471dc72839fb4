// The names an operator types for --into and the names read back from a manifest end up in SQL and
// in paths: one rule for every engine, checked before either happens.
import { UsageError } from '../errors.js';

const NAME = /^[A-Za-z0-9_$-]{1,63}$/;

export function checkDatabaseName(name: string, option: string): string {
  if (!NAME.test(name)) throw new UsageError(`${option} "${name}" is not a database name (letters, digits, _ $ -)`);
  return name;
}
