// mariadb-dump command lines. --defaults-file must come first (the client rejects it elsewhere)
// and makes the dump immune to other option files, ~/.my.cnf included.
import type { Argv } from '../source.js';

/** Root's restore client may have no option file: Debian's root then logs in through the socket. */
function connection(optionFile: string | null): string[] {
  return optionFile === null ? [] : [`--defaults-file=${optionFile}`];
}

export function dumpCommand(program: string, optionFile: string | null, database: string): Argv {
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
    database,
  ];
}

/** Schema only, to /dev/null: connection, password, grant and views are all exercised. */
export function accessCheckCommand(program: string, optionFile: string, database: string): Argv {
  return [
    program,
    `--defaults-file=${optionFile}`,
    '--single-transaction',
    '--no-tablespaces',
    '--no-data',
    `--result-file=/dev/null`,
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

/** Imports a dump read from stdin; the dump carries no USE line, so the target name is free. */
export function importCommand(client: string, optionFile: string | null, database: string): Argv {
  return [client, ...connection(optionFile), '--database', database];
}
