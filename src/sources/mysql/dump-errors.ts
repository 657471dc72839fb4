// Turns the dump client's stderr into a cause the operator can act on. Error numbers are MariaDB's;
// an unprivileged user cannot tell "no such database" from "no grant" (both 1044).
import { BackupFailedError } from '../../errors.js';
import type { CommandFailedError } from '../../system/run-command.js';

interface Cause {
  readonly pattern: RegExp;
  readonly cause: string;
  readonly hint: (database: string, optionFile: string) => string;
}

const CAUSES: readonly Cause[] = [
  {
    pattern: /error:? 1045\b/i,
    cause: 'wrong MySQL user or password (access denied)',
    hint: (_, file) => `check user and password in ${file}`,
  },
  {
    pattern: /error:? 200[23]\b|Can't connect/i,
    cause: 'the MySQL server is not reachable (is it running?)',
    hint: (_, file) => `start the server, or check socket/host/port in ${file}`,
  },
  {
    pattern: /error:? 1044\b/i,
    cause: 'no access to the database: the grant is missing or the database does not exist',
    hint: (database) => `as root: GRANT SELECT, LOCK TABLES ON \`${database}\`.* TO 'backup'@'localhost';`,
  },
  {
    pattern: /SHOW VIEW command denied|\(1142\)|error: 1142\b|command denied/i,
    cause: 'a privilege is missing (views need SHOW VIEW, events need EVENT)',
    hint: (database) =>
      `as root: GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON \`${database}\`.* TO 'backup'@'localhost'; GRANT SELECT ON mysql.proc TO 'backup'@'localhost';`,
  },
  {
    pattern: /error:? 2013\b|Lost connection/i,
    cause: 'the connection to the server was lost during the dump',
    hint: () => 'check the server log (restart, crash or wait_timeout) and run the backup again',
  },
  {
    pattern: /Errcode: 28|No space left/i,
    cause: 'the disk of the staging directory is full',
    hint: () => 'free space on the staging filesystem or move agent.staging_dir',
  },
  {
    pattern: /Could not open required defaults file|unknown variable|unknown option/i,
    cause: 'the option file could not be used',
    hint: (_, file) => `check ${file}: it must be readable by the agent user and contain only client options`,
  },
];

export function explainDumpFailure(database: string, optionFile: string, error: CommandFailedError): BackupFailedError {
  const stderr = error.result.stderrTail.join('\n');
  const known = CAUSES.find((candidate) => candidate.pattern.test(stderr));
  const detail = error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`;
  const cause = known?.cause ?? 'the dump client failed';
  return new BackupFailedError(
    `mysql dump of ${database} failed: ${cause}: ${detail}`,
    known?.hint(database, optionFile),
    { cause: error },
  );
}
