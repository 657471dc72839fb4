// The PostgreSQL clients' command lines. Every client gets --no-password: a missing password fails
// at once instead of waiting on a prompt nobody answers; a password only ever comes from a
// passfile, named in the connection string (a path, not a secret: a dump step carries no
// environment). nameList allows no "=" or "/" in a database name, so a bare name is never read as
// a connection string.
import type { Argv } from '../source.js';

/** Where a client connects and as which role. */
export interface Connection {
  /** A socket directory or a host name or address. */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The .pgpass file with the password; absent for peer authentication. */
  readonly passfile?: string | undefined;
}

/** A value in a libpq connection string: quoted, with \\ and ' escaped. */
function conninfoValue(value: string): string {
  return `'${value.replace(/[\\']/g, (character) => `\\${character}`)}'`;
}

/** --dbname: the bare name, or a connection string that also names the passfile. */
export function databaseOption(connection: Connection, database: string | null): string[] {
  const passfile = connection.passfile;
  if (passfile === undefined || passfile === '') return database === null ? [] : [`--dbname=${database}`];
  const name = database === null ? '' : `dbname=${conninfoValue(database)} `;
  return [`--dbname=${name}passfile=${conninfoValue(passfile)}`];
}

export function connectionOptions(connection: Connection): string[] {
  return [`--host=${connection.host}`, `--port=${connection.port}`, `--username=${connection.user}`, '--no-password'];
}

/** A socket directory is an absolute path; anything else is reached over TCP. */
export function isSocketDirectory(host: string): boolean {
  return host.startsWith('/');
}

export function dumpCommand(connection: Connection, database: string): Argv {
  return [
    'pg_dump',
    ...connectionOptions(connection),
    // The custom format is what pg_restore reads without a psql in between, and holds a table of
    // contents the completeness proof reads. Uncompressed, unchanged data gives the same bytes but
    // for the creation time in the header, so duplicity's incrementals stay small.
    '--format=custom',
    '--compress=0',
    // Records the database itself (owner, encoding, locale, its grants and settings) in the archive.
    '--create',
    ...databaseOption(connection, database),
  ];
}

/** Schema only, to /dev/null: connection, password, and the lock every table needs are all exercised. */
export function schemaCheckCommand(connection: Connection, database: string): Argv {
  return [
    'pg_dump',
    ...connectionOptions(connection),
    '--schema-only',
    '--file=/dev/null',
    ...databaseOption(connection, database),
  ];
}

/**
 * Roles, their memberships and tablespaces; without pg_authid, the roles without their passwords.
 * `file` /dev/null makes it a probe; otherwise stdout is the dump.
 */
export function globalsCommand(connection: Connection, rolePasswords: boolean, file?: string): Argv {
  return [
    'pg_dumpall',
    ...connectionOptions(connection),
    ...databaseOption(connection, null),
    '--globals-only',
    ...(rolePasswords ? [] : ['--no-role-passwords']),
    // pg_dumpall fsyncs a --file, which /dev/null refuses.
    ...(file === undefined ? [] : [`--file=${file}`, '--no-sync']),
  ];
}

/** One statement; unaligned rows without headers. psql runs its -c text as one transaction. */
export function queryCommand(connection: Connection, database: string, sql: string): Argv {
  return psql(connection, database, sql, []);
}

/** As queryCommand, with NUL between fields and rows: a table name may hold a tab or a newline. */
export function rowsCommand(connection: Connection, database: string, sql: string): Argv {
  return psql(connection, database, sql, ['--field-separator-zero', '--record-separator-zero']);
}

function psql(connection: Connection, database: string, sql: string, separators: readonly string[]): Argv {
  return [
    'psql',
    ...connectionOptions(connection),
    '--no-psqlrc',
    '--set=ON_ERROR_STOP=1',
    '--no-align',
    '--tuples-only',
    ...separators,
    ...databaseOption(connection, database),
    `--command=${sql}`,
  ];
}

/** The archive's table of contents, from stdin; --create keeps the DATABASE entry, which names the owner, in the list. */
export function listCommand(): Argv {
  return ['pg_restore', '--list', '--create'];
}

/** Reads every data block of the archive on stdin to its end and throws the SQL away. */
export function readThroughCommand(): Argv {
  return ['pg_restore', '--file=/dev/null'];
}

/**
 * Loads the archive on stdin into an existing database. --no-owner: the session's role may not
 * give objects away (the restore hands them to the owner afterwards). One transaction: a failure
 * leaves the database empty, never half loaded.
 */
export function restoreCommand(connection: Connection, database: string): Argv {
  return [
    'pg_restore',
    ...connectionOptions(connection),
    '--no-owner',
    '--single-transaction',
    '--exit-on-error',
    ...databaseOption(connection, database),
  ];
}

export function versionCommand(): Argv {
  return ['pg_dump', '--version'];
}

/** A quoted SQL identifier; names read from an archive or the catalog may hold anything. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A quoted SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1). */
export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
