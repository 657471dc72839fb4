// PostgreSQL: one custom-format archive per database, written by pg_dump straight to disk (the
// agent never holds the data) and kept only when pg_restore reads it back to its end; and the
// roles, memberships and tablespaces, which no database archive holds, in globals.sql.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { BackupFailedError, errorMessage } from '../../errors.js';
import { CommandFailedError, type CommandRunner, type Deadline, quickDeadline } from '../../system/run-command.js';
import type { Argv, DataSource, DumpStep } from '../source.js';
import { GLOBALS_FILE, archiveFile, globalsComplete, proveArchive } from './archive.js';
import {
  type Connection,
  dumpCommand,
  globalsCommand,
  queryCommand,
  schemaCheckCommand,
  versionCommand,
} from './commands.js';
import { BACKUP_GRANT, explainFailure } from './dump-errors.js';
import type { PostgresqlSection } from './keys.js';
import { checkPassfile } from './passfile.js';

export class PostgresqlSource implements DataSource {
  readonly kind = 'postgresql';
  readonly databases: readonly string[];
  private readonly connection: Connection;

  constructor(section: PostgresqlSection) {
    this.databases = section.databases;
    // Peer authentication maps the system user to the role of the same name.
    this.connection = {
      host: section.host,
      port: section.port,
      user: section.user === '' ? userInfo().username : section.user,
      passfile: section.passfile,
    };
  }

  async preflight(runner: CommandRunner): Promise<void> {
    if (this.connection.passfile) await checkPassfile(this.connection.passfile);
    const database = this.databases[0] ?? 'postgres';
    await this.run(
      runner,
      queryCommand(this.connection, database, 'SELECT 1'),
      quickDeadline('asking the PostgreSQL server'),
      `logging in to PostgreSQL at ${this.connection.host}:${this.connection.port} as ${this.connection.user}`,
      database,
    );
  }

  async verifyAccess(runner: CommandRunner): Promise<string> {
    await this.preflight(runner);
    for (const database of this.databases) {
      await this.run(
        runner,
        schemaCheckCommand(this.connection, database),
        quickDeadline(`reading the schema of ${database}`),
        `the access check of ${database}`,
        database,
      );
    }
    return `PostgreSQL answers at ${this.connection.host}:${this.connection.port} and role ${this.connection.user} can read and lock every table of ${this.databases.join(', ')}`;
  }

  async dumpSteps(runner: CommandRunner, dir: string): Promise<DumpStep[]> {
    const steps: DumpStep[] = this.databases.map((database) => ({
      label: `${this.kind} dump of ${database}`,
      argv: dumpCommand(this.connection, database),
      stdoutTo: archiveFile(dir, database),
      explain: (error) => explainFailure(`pg_dump of ${database}`, database, this.connection, error),
    }));
    const globals = await this.globalsStep(runner, dir);
    return globals === null ? steps : [...steps, globals];
  }

  async proveDump(runner: CommandRunner, dir: string, deadline: Deadline): Promise<void> {
    const log = runner.logger.child({ source: this.kind });
    for (const database of this.databases) {
      const contents = await proveArchive(
        runner,
        archiveFile(dir, database),
        database,
        { ...deadline, step: `reading back the dump of ${database}` },
        undefined,
        'the dump client stopped early or the disk lost data; see the messages above',
      );
      log.info({ database, tables: contents.tables.length }, 'the archive of %s reads back to its end', database);
    }
    const globals = join(dir, GLOBALS_FILE);
    if ((await globalsComplete(globals).catch(() => null)) === false)
      throw new BackupFailedError(`${globals} does not end with pg_dumpall's trailer`, 'see the messages above');
  }

  async toolVersions(runner: CommandRunner): Promise<Record<string, string>> {
    const result = await runner.run({
      argv: versionCommand(),
      stdout: 'capture',
      deadline: quickDeadline('pg_dump --version'),
    });
    return { pg_dump: result.stdout.trim() };
  }

  /**
   * Roles are the server's, not a database's: without globals.sql a restore on a new host lacks
   * them. Their passwords are in pg_authid, which only a superuser or pg_read_all_data reads. A
   * backup without globals is still a backup of the data: when even the probe without passwords
   * fails, the run warns, naming what is missing, and dumps the databases alone.
   */
  private async globalsStep(runner: CommandRunner, dir: string): Promise<DumpStep | null> {
    const log = runner.logger.child({ source: this.kind });
    const { user } = this.connection;
    try {
      const rolePasswords = await this.readsPasswords(runner);
      await this.run(
        runner,
        globalsCommand(this.connection, rolePasswords, '/dev/null'),
        quickDeadline('trying pg_dumpall --globals-only'),
        'pg_dumpall --globals-only',
        'postgres',
      );
      if (!rolePasswords)
        log.warn(
          { role: user },
          'role %s may not read pg_authid: %s holds the roles without their passwords (set them again after a restore on a new host); for them: %s',
          user,
          GLOBALS_FILE,
          BACKUP_GRANT,
        );
      return {
        label: `${this.kind} dump of the roles`,
        argv: globalsCommand(this.connection, rolePasswords),
        stdoutTo: join(dir, GLOBALS_FILE),
        explain: (error) => explainFailure('pg_dumpall --globals-only', 'postgres', this.connection, error),
      };
    } catch (error) {
      if (!(error instanceof BackupFailedError)) throw error;
      log.warn(
        { error: errorMessage(error), hint: error.hint },
        'no %s in this backup: roles, their memberships and passwords, and tablespaces are not backed up: %s',
        GLOBALS_FILE,
        errorMessage(error),
      );
      return null;
    }
  }

  private async readsPasswords(runner: CommandRunner): Promise<boolean> {
    const database = this.databases[0] ?? 'postgres';
    const result = await this.run(
      runner,
      queryCommand(this.connection, database, "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')"),
      quickDeadline('asking whether the role reads pg_authid'),
      'the privilege query',
      database,
    );
    return result.trim() === 't';
  }

  private async run(
    runner: CommandRunner,
    argv: Argv,
    deadline: Deadline,
    what: string,
    database: string,
  ): Promise<string> {
    try {
      return (await runner.run({ argv, deadline, stdout: 'capture' })).stdout;
    } catch (error) {
      if (error instanceof CommandFailedError && error.signal === undefined)
        throw explainFailure(what, database, this.connection, error);
      throw error;
    }
  }
}
