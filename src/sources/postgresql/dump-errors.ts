// Turns a client's stderr into a cause the operator can act on. The texts are libpq's and the
// server's (PostgreSQL 15, LC_ALL=C.UTF-8 as the runner sets it, so not translated).
import { BackupFailedError } from '../../errors.js';
import type { CommandFailedError } from '../../system/run-command.js';
import type { Connection } from './commands.js';

/**
 * The grant the backup role needs (README quotes it), as the superuser, on PostgreSQL 14 or later:
 * pg_read_all_data reads every table, view and sequence of every database, and lets pg_dumpall
 * read pg_authid for the roles' passwords. CONNECT is PUBLIC's by default; where a database
 * revoked it, the role needs it on that database. Tables with row-level security also need
 * BYPASSRLS: pg_dump refuses to dump a table whose policies would hide rows from it.
 */
export const BACKUP_GRANT = 'CREATE ROLE backup LOGIN; GRANT pg_read_all_data TO backup;';

export function connectGrant(database: string, role: string): string {
  return `GRANT CONNECT ON DATABASE "${database}" TO ${role};`;
}

interface Cause {
  readonly pattern: RegExp;
  readonly cause: string;
  readonly hint: (database: string, connection: Connection) => string;
}

const CAUSES: readonly Cause[] = [
  {
    pattern: /Peer authentication failed/,
    cause: 'peer authentication failed: the system user and the role differ',
    hint: (_, connection) =>
      `leave postgresql.user empty (the role is the agent user's name), or log in over TCP with a passfile; the role ${connection.user} must exist`,
  },
  {
    pattern: /role "[^"]*" does not exist/,
    cause: 'the role does not exist',
    hint: () => `as the PostgreSQL superuser: ${BACKUP_GRANT}`,
  },
  {
    pattern: /password authentication failed|no password supplied/,
    cause: 'the server wants a password the passfile does not give',
    hint: (_, connection) =>
      !connection.passfile
        ? `set postgresql.passfile to a .pgpass file with a line for ${connection.host}:${connection.port}, or use the socket directory and peer authentication`
        : `check the line for ${connection.host}:${connection.port} and role ${connection.user} in ${connection.passfile}`,
  },
  {
    pattern: /database "[^"]*" does not exist/,
    cause: 'the database does not exist',
    hint: () => 'check postgresql.databases',
  },
  {
    pattern: /permission denied for database|not have CONNECT privilege/,
    cause: 'the role may not connect to the database',
    hint: (database, connection) => `as the PostgreSQL superuser: ${connectGrant(database, connection.user)}`,
  },
  {
    pattern: /row-level security/,
    cause: 'a table has row-level security, which would hide rows from the dump',
    hint: (_, connection) => `as the PostgreSQL superuser: ALTER ROLE ${connection.user} BYPASSRLS;`,
  },
  {
    pattern: /permission denied/,
    cause: 'the role may not read everything in the database',
    hint: () => `as the PostgreSQL superuser: ${BACKUP_GRANT}`,
  },
  {
    pattern: /could not connect|Connection refused|No such file or directory|could not translate host name/,
    cause: 'the PostgreSQL server is not reachable (is it running?)',
    hint: () => 'start the server, or check postgresql.host and postgresql.port',
  },
  {
    pattern: /No space left on device/,
    cause: 'the disk of the staging directory is full',
    hint: () => 'free space on the staging filesystem or move agent.staging_dir',
  },
];

/** `what` names the step: "pg_dump of shop", "the access check of shop". */
export function explainFailure(
  what: string,
  database: string,
  connection: Connection,
  error: CommandFailedError,
): BackupFailedError {
  const stderr = error.result.stderrTail.join('\n');
  const known = CAUSES.find((candidate) => candidate.pattern.test(stderr));
  const detail =
    error.result.stderrTail.filter((line) => line.trim() !== '').at(-1) ?? `exit code ${error.result.exitCode}`;
  return new BackupFailedError(
    `${what} failed: ${known?.cause ?? 'the client failed'}: ${detail}`,
    known?.hint(database, connection),
    { cause: error },
  );
}
