// mariadb-dump command lines. --defaults-file must come first (the client rejects it elsewhere)
// and makes the dump immune to other option files, ~/.my.cnf included.
import type { Argv } from '../source.js';

/** Root's restore client may have no option file: Debian's root then logs in through the socket. */
function connection(optionFile: string | null): string[] {
  return optionFile === null ? [] : [`--defaults-file=${optionFile}`];
}

/** Which optional object kinds a dump asks for: each only when the grant allows it (see grants.ts). */
export interface DumpObjects {
  readonly routines: boolean;
  readonly events: boolean;
}

/** Root's dumps (the safety dump before a restore): root holds every privilege. */
export const EVERY_OBJECT: DumpObjects = { routines: true, events: true };

/** Triggers and views are in a dump by default; procedures, functions and events only when asked for. */
function objectOptions(objects: DumpObjects): string[] {
  return [...(objects.routines ? ['--routines'] : []), ...(objects.events ? ['--events'] : [])];
}

export function dumpCommand(
  program: string,
  optionFile: string | null,
  database: string,
  objects: DumpObjects = EVERY_OBJECT,
): Argv {
  return [
    program,
    ...connection(optionFile),
    // One consistent snapshot for InnoDB, without needing LOCK TABLES on every table.
    '--single-transaction',
    // Tablespace information needs the PROCESS privilege, which the backup grant does not have.
    '--no-tablespaces',
    // Unchanged data gives a byte-identical dump, so daily incrementals stay small.
    '--skip-dump-date',
    '--order-by-primary',
    '--quick',
    ...objectOptions(objects),
    database,
  ];
}

/** Schema only, to /dev/null: connection, password, grant and views are all exercised. */
export function accessCheckCommand(program: string, optionFile: string, database: string, objects: DumpObjects): Argv {
  return [
    program,
    `--defaults-file=${optionFile}`,
    '--single-transaction',
    '--no-tablespaces',
    '--no-data',
    `--result-file=/dev/null`,
    ...objectOptions(objects),
    database,
  ];
}

export function versionCommand(program: string): Argv {
  return [program, '--version'];
}

/** One statement, tab-separated rows without headers (what the restore checks read). */
export function queryCommand(client: string, optionFile: string | null, sql: string): Argv {
  return [client, ...connection(optionFile), '--batch', '--skip-column-names', '--execute', sql];
}

/**
 * Imports a dump read from stdin; the dump carries no USE line, so the target name is free. The
 * dump is input root did not write: --binary-mode leaves the client no commands but DELIMITER and
 * \C, and MariaDB's --sandbox refuses every command that reaches the file system or a shell.
 */
export function importCommand(client: string, optionFile: string | null, database: string): Argv {
  const sandbox = client === 'mariadb' ? ['--sandbox'] : [];
  return [client, ...connection(optionFile), '--binary-mode', ...sandbox, '--database', database];
}
