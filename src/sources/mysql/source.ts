// MySQL/MariaDB: one plain, deterministic SQL file per database, written by the dump client
// straight to disk (the agent never holds the data), kept only with exit 0 and the trailer.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupFailedError } from '../../errors.js';
import { CommandFailedError, type CommandRunner, quickDeadline } from '../../system/run-command.js';
import type { DataSource, DumpStep } from '../source.js';
import { type DumpObjects, accessCheckCommand, dumpCommand, queryCommand, versionCommand } from './commands.js';
import { type DatabaseCoverage, grantHint, lostObjects, missingKinds, missingPrivilegeWarning } from './coverage.js';
import { explainDumpFailure } from './dump-errors.js';
import { dumpableKinds, parseGrants } from './grants.js';
import { inventoryQuery, parseInventory } from './objects.js';
import type { MysqlSection } from './keys.js';
import { checkOptionFile, optionFilePath } from './option-file.js';
import { mysqlPrograms } from './programs.js';

const TRAILER = /\n-- Dump completed( on [0-9: -]+)?\n?$/;

export class MysqlSource implements DataSource {
  readonly kind = 'mysql';
  readonly databases: readonly string[];
  private readonly optionFile: string;

  private constructor(
    config: MysqlSection,
    private readonly program: string,
    private readonly client: string,
  ) {
    this.databases = config.databases;
    this.optionFile = optionFilePath(config.defaults_file);
  }

  static async create(config: MysqlSection): Promise<MysqlSource> {
    const { dump, client } = await mysqlPrograms();
    return new MysqlSource(config, dump, client);
  }

  async preflight(): Promise<void> {
    await checkOptionFile(this.optionFile);
  }

  async verifyAccess(runner: CommandRunner): Promise<string> {
    await this.preflight();
    for (const coverage of await this.coverage(runner)) {
      const { database } = coverage;
      try {
        await runner.run({
          argv: accessCheckCommand(this.program, this.optionFile, database, dumpObjects(coverage)),
          deadline: quickDeadline(`reading the schema of ${database}`),
        });
      } catch (error) {
        if (error instanceof CommandFailedError) throw explainDumpFailure(database, this.optionFile, error);
        throw error;
      }
    }
    return `${this.optionFile} is private and ${this.program} can read the schema of ${this.databases.join(', ')}`;
  }

  /** Per database, what the grant lets the dump include and which objects the backup user sees. */
  async coverage(runner: CommandRunner): Promise<DatabaseCoverage[]> {
    // The account comes first; SHOW GRANTS also shows the password hash, which never leaves here.
    const [account = '', ...grantLines] = (await this.query(runner, 'SELECT CURRENT_USER(); SHOW GRANTS')).split('\n');
    const grants = parseGrants(grantLines);
    const at = account.lastIndexOf('@');
    const quoted = `'${account.slice(0, at)}'@'${account.slice(at + 1)}'`;
    const coverages: DatabaseCoverage[] = [];
    for (const database of this.databases) {
      const visible = parseInventory(await this.query(runner, inventoryQuery(database)));
      coverages.push({ database, dumpable: dumpableKinds(grants, database), visible, account: quoted });
    }
    return coverages;
  }

  /** Per database: what the grant lets the dump include; objects it would silently lose are refused. */
  async dumpSteps(runner: CommandRunner, dir: string): Promise<DumpStep[]> {
    const log = runner.logger.child({ source: this.kind });
    const steps: DumpStep[] = [];
    for (const coverage of await this.coverage(runner)) {
      const { database } = coverage;
      for (const kind of missingKinds(coverage))
        log.warn({ database, kind }, '%s', missingPrivilegeWarning(coverage, kind));
      const lost = lostObjects(coverage, coverage.visible);
      if (lost.length > 0)
        throw new BackupFailedError(
          `the dump of ${database} would not hold every object: ${lost.join('; ')}`,
          grantHint(coverage, missingKinds(coverage)),
        );
      // No lock_wait_timeout can be set for mariadb-dump's session (it takes no init command): a
      // dump waiting on a table lock ends at the dump deadline, and the server drops the waiting
      // session when the client goes.
      steps.push({
        label: `${this.kind} dump of ${database}`,
        argv: dumpCommand(this.program, this.optionFile, database, dumpObjects(coverage)),
        stdoutTo: dumpFile(dir, database),
        explain: (error) => explainDumpFailure(database, this.optionFile, error),
      });
    }
    return steps;
  }

  async proveDump(_runner: CommandRunner, dir: string): Promise<void> {
    for (const database of this.databases) {
      const file = dumpFile(dir, database);
      if (!(await endsWithTrailer(file))) {
        throw new BackupFailedError(
          `the dump of ${database} is incomplete: ${file} does not end with "-- Dump completed"`,
          'the dump client stopped early; see its messages above',
        );
      }
    }
  }

  async toolVersions(runner: CommandRunner): Promise<Record<string, string>> {
    const result = await runner.run({
      argv: versionCommand(this.program),
      stdout: 'capture',
      deadline: quickDeadline(`${this.program} --version`),
    });
    return { [this.program]: result.stdout.trim() };
  }

  private async query(runner: CommandRunner, sql: string): Promise<string> {
    try {
      return (
        await runner.run({
          argv: queryCommand(this.client, this.optionFile, sql),
          stdout: 'capture',
          deadline: quickDeadline('reading the grants and objects'),
        })
      ).stdout;
    } catch (error) {
      if (error instanceof CommandFailedError)
        throw explainDumpFailure(this.databases.join(', '), this.optionFile, error);
      throw error;
    }
  }
}

/** --events without EVENT fails the dump; --routines without access to the bodies leaves them out. */
function dumpObjects(coverage: DatabaseCoverage): DumpObjects {
  return { routines: coverage.dumpable.has('routine'), events: coverage.dumpable.has('event') };
}

export function dumpFile(dir: string, database: string): string {
  return join(dir, `${database}.sql`);
}

/** mysqldump writes "-- Dump completed" last: without it the dump stopped early. */
export async function endsWithTrailer(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return TRAILER.test(buffer.toString('utf8'));
  } finally {
    await handle.close();
  }
}
