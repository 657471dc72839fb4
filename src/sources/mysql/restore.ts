// Root's side of a MySQL/MariaDB restore: safety dump, replace the database with the downloaded
// dump, and prove the result (tables versus the dump, row counts). The client runs as root through
// the local socket (Debian's root authenticates with unix_socket), or with mysql.admin_defaults_file.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupFailedError, UsageError } from '../../errors.js';
import { formatBytes } from '../../report/format.js';
import type { Logger } from '../../report/logger.js';
import { CommandFailedError, type CommandRunner, type Deadline, quickDeadline } from '../../system/run-command.js';
import type { DatabaseRestore, EngineTools, ObjectCount, RestoredDatabase, Restorer } from '../engine.js';
import { importProgress } from '../import-progress.js';
import { inState } from '../restore-state.js';
import type { Argv } from '../source.js';
import { dumpCommand, importCommand, queryCommand } from './commands.js';
import type { MysqlSection } from './keys.js';
import { mysqlPrograms } from './programs.js';
import { dumpFile, endsWithTrailer } from './source.js';

function ident(name: string): string {
  return `\`${name}\``;
}

export class MysqlAdmin {
  private constructor(
    private readonly runner: CommandRunner,
    private readonly logger: Logger,
    private readonly client: string,
    private readonly dumper: string,
    private readonly optionFile: string | null,
    /** Each statement, dump and import of the restore. */
    private readonly deadline: Deadline,
  ) {}

  static async create(
    runner: CommandRunner,
    logger: Logger,
    config: MysqlSection,
    deadline: Deadline,
  ): Promise<MysqlAdmin> {
    const { client, dump } = await mysqlPrograms();
    const optionFile = config.admin_defaults_file === '' ? null : config.admin_defaults_file;
    return new MysqlAdmin(runner, logger, client, dump, optionFile, deadline);
  }

  /** The same administration through another runner: a drop that must happen after a SIGTERM too. */
  through(runner: CommandRunner, deadline: Deadline): MysqlAdmin {
    return new MysqlAdmin(runner, this.logger, this.client, this.dumper, this.optionFile, deadline);
  }

  /** The commands a restore of `database` runs, for --dry-run; no safety file means a new database. */
  plannedCommands(database: string, dumpFile: string, safetyFile: string | null): string[] {
    return [
      ...(safetyFile === null
        ? []
        : [
            `${dumpCommand(this.dumper, this.optionFile, database).join(' ')} > ${safetyFile}`,
            queryCommand(this.client, this.optionFile, `DROP DATABASE IF EXISTS ${ident(database)}`).join(' '),
          ]),
      queryCommand(this.client, this.optionFile, `CREATE DATABASE ${ident(database)}`).join(' '),
      `${importCommand(this.client, this.optionFile, database).join(' ')} < ${dumpFile}`,
    ];
  }

  async query(sql: string): Promise<string[][]> {
    const result = await this.runSql(queryCommand(this.client, this.optionFile, sql), `${this.client}: ${sql}`);
    return result
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.split('\t'));
  }

  async exists(database: string): Promise<boolean> {
    const rows = await this.query(
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${database}'`,
    );
    return rows.length > 0;
  }

  /**
   * The current database as a plain dump: a restore can always be undone with it. Written to a new
   * file in root's safety directory, and proven complete before anything is dropped.
   */
  async safetyDump(database: string, file: string): Promise<number> {
    await this.runner.run({
      argv: dumpCommand(this.dumper, this.optionFile, database),
      stdout: { file },
      deadline: this.deadline,
    });
    if (!(await endsWithTrailer(file))) {
      throw new BackupFailedError(
        `the safety dump of ${database} (${file}) does not end with "-- Dump completed": it is not a complete copy`,
        'see the dump client messages above; the restore stopped before dropping anything',
      );
    }
    return (await stat(file)).size;
  }

  /** Drops and recreates the database with its original character set, then imports the dump. */
  async replace(database: string, dumpFile: string, showProgress: boolean): Promise<void> {
    const existing = (await this.exists(database))
      ? (await this.query(`SHOW CREATE DATABASE ${ident(database)}`))[0]?.[1]
      : undefined;
    await this.query(`DROP DATABASE IF EXISTS ${ident(database)}`);
    await this.query(existing ?? `CREATE DATABASE ${ident(database)}`);
    await this.import(database, dumpFile, showProgress);
  }

  async createEmpty(database: string): Promise<void> {
    await this.query(`CREATE DATABASE ${ident(database)}`);
  }

  async drop(database: string): Promise<void> {
    await this.query(`DROP DATABASE IF EXISTS ${ident(database)}`);
  }

  async import(database: string, dumpFile: string, showProgress: boolean): Promise<void> {
    const size = (await stat(dumpFile)).size;
    const progress = importProgress(database, size, showProgress);
    try {
      await this.runner.run({
        argv: importCommand(this.client, this.optionFile, database),
        stdinFile: dumpFile,
        onStart: progress.onStart,
        deadline: this.deadline,
      });
    } catch (error) {
      // A stop by SIGTERM keeps its own message: it is not the client's failure.
      if (error instanceof CommandFailedError && error.signal === undefined) {
        throw new BackupFailedError(
          `importing ${dumpFile} into ${database} failed: ${error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`}`,
          undefined,
          { cause: error },
        );
      }
      throw error;
    } finally {
      progress.stop();
    }
    this.logger.info({ database, bytes: size }, 'imported %s into %s', formatBytes(size), database);
  }

  /** Tables present in the database with their row counts, sorted by name. */
  async tableCounts(database: string): Promise<ObjectCount[]> {
    const tables = await this.query(
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${database}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
    );
    const counts: ObjectCount[] = [];
    for (const [table] of tables) {
      if (table === undefined) continue;
      const [row] = await this.query(`SELECT COUNT(*) FROM ${ident(database)}.${ident(table)}`);
      counts.push({ name: table, count: Number(row?.[0] ?? 0), unit: 'rows' });
    }
    return counts;
  }

  private async runSql(argv: Argv, what: string): Promise<string> {
    try {
      return (await this.runner.run({ argv, stdout: 'capture', deadline: this.deadline })).stdout;
    } catch (error) {
      if (error instanceof CommandFailedError) {
        throw new BackupFailedError(
          `${what} failed: ${error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`}`,
          this.optionFile === null
            ? 'the restore connects as root through the local socket; set mysql.admin_defaults_file if root needs a password'
            : `check the credentials in mysql.admin_defaults_file = ${this.optionFile}`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/**
 * Refuses a dump that carries mysql client commands (a line starting with a backslash, such as
 * `\! cmd`): mariadb-dump writes none, so one is a forged or damaged dump. The import's sandbox
 * would stop it too, but only after the database was dropped; this check runs before.
 */
export async function refuseClientCommands(runner: CommandRunner, dumpFile: string, deadline: Deadline): Promise<void> {
  const result = await runner.run({
    deadline,
    // `\-` alone is the sandbox switch mariadb-dump itself may write; harmless. Only the start of
    // each hit is printed: a forged line may be long.
    argv: [
      'grep',
      '--text',
      '--line-number',
      '--max-count=3',
      '--only-matching',
      '--extended-regexp',
      '^[[:space:]]*\\\\[^-].{0,60}',
      dumpFile,
    ],
    stdout: 'capture',
    okExitCodes: [0, 1],
  });
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  if (lines.length > 0) {
    throw new BackupFailedError(
      `${dumpFile} carries mysql client commands, which a dump never holds: ${lines.map((line) => JSON.stringify(line)).join(', ')}`,
      'nothing was changed; the backup is forged or damaged: do not import it; try an older --time and find out who wrote it',
    );
  }
}

/** The tables a dump creates, read with grep: a 10 GB dump is not read into memory. */
export async function tablesInDump(runner: CommandRunner, dumpFile: string, deadline: Deadline): Promise<string[]> {
  const result = await runner.run({
    deadline,
    argv: ['grep', '--text', '--only-matching', '--extended-regexp', '^CREATE TABLE `[^`]+`', dumpFile],
    stdout: 'capture',
    okExitCodes: [0, 1],
  });
  return result.stdout
    .split('\n')
    .map((line) => /`([^`]+)`/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined)
    .sort();
}

/** The engine's Restorer: one database at a time, each proven against the tables its dump creates. */
export class MysqlRestorer implements Restorer {
  readonly stopServices: readonly string[] = [];

  constructor(
    private readonly admin: MysqlAdmin,
    private readonly tools: EngineTools,
  ) {}

  static async create(config: MysqlSection, tools: EngineTools): Promise<MysqlRestorer> {
    const admin = await MysqlAdmin.create(tools.runner, tools.logger, config, tools.deadline('the mysql restore'));
    return new MysqlRestorer(admin, tools);
  }

  plannedCommands(restore: DatabaseRestore): string[] {
    return this.admin.plannedCommands(
      restore.into ?? restore.database,
      dumpFile(restore.dir, restore.database),
      restore.into === undefined ? safetyFile(restore) : null,
    );
  }

  async restore(restore: DatabaseRestore): Promise<RestoredDatabase> {
    const { database, into } = restore;
    const { admin, tools } = this;
    const dump = dumpFile(restore.dir, database);
    const expected = await this.provenTables(database, dump);
    const target = into ?? database;
    let safetyCopy: string | null = null;
    if (into !== undefined) {
      if (await admin.exists(into)) {
        throw new UsageError(
          `database ${into} already exists; --into needs a new name`,
          `nothing was changed; drop ${into} first or pick another name`,
        );
      }
      await admin.createEmpty(into);
      await inState(`database ${into} was created and is partly imported; drop it and try again`, () =>
        admin.import(into, dump, restore.showProgress),
      );
    } else {
      if (await admin.exists(database)) {
        const file = safetyFile(restore);
        const bytes = await inState(`database ${database} untouched`, () => admin.safetyDump(database, file));
        safetyCopy = file;
        tools.logger.info({ database, file, bytes }, 'safety dump of %s: %s (%s)', database, file, formatBytes(bytes));
      }
      await inState(
        safetyCopy === null
          ? `database ${database} is partly restored; run the restore again`
          : `database ${database} is partly restored; its previous state is in ${safetyCopy}`,
        () => admin.replace(database, dump, restore.showProgress),
      );
    }
    const contents = await admin.tableCounts(target);
    const missing = expected.filter((table) => !contents.some((row) => row.name === table));
    if (missing.length > 0) {
      throw new BackupFailedError(
        `after the import, ${target} lacks table(s) ${missing.join(', ')} that the dump creates`,
        safetyCopy === null ? 'run the restore again' : `to go back: ${undoCommand(target, safetyCopy)}`,
      );
    }
    return {
      database,
      restoredAs: target,
      safetyCopy,
      undo: safetyCopy === null ? null : undoCommand(target, safetyCopy),
      contents,
    };
  }

  async importScratch(database: string, dir: string, scratch: string): Promise<string> {
    const dump = dumpFile(dir, database);
    try {
      const expected = await this.provenTables(database, dump);
      await this.admin.createEmpty(scratch);
      await this.admin.import(scratch, dump, false);
      const counts = await this.admin.tableCounts(scratch);
      const missing = expected.filter((table) => !counts.some((row) => row.name === table));
      if (missing.length > 0) throw new BackupFailedError(`importing ${database} did not create ${missing.join(', ')}`);
      const rows = counts.reduce((sum, row) => sum + row.count, 0);
      return `${database} imports into a scratch database: ${counts.length} table(s), ${rows} row(s)`;
    } finally {
      // On the cleanup runner: after a SIGTERM the drill's own runner starts nothing any more.
      await this.admin.through(this.tools.cleanup, quickDeadline(`dropping ${scratch}`)).drop(scratch);
    }
  }

  /** The dump is complete and carries no client commands; returns the tables it creates. */
  private async provenTables(database: string, dump: string): Promise<string[]> {
    const reading = this.tools.deadline(`reading the dump of ${database}`);
    await proveSqlDump(dump);
    await refuseClientCommands(this.tools.runner, dump, reading);
    return tablesInDump(this.tools.runner, dump, reading);
  }
}

/** A dump in a downloaded set: there, and ending with mysqldump's trailer. */
export async function proveSqlDump(file: string): Promise<void> {
  try {
    await stat(file);
  } catch {
    throw new BackupFailedError(`the backup holds no dump ${file}`, 'untouched: nothing was changed');
  }
  if (!(await endsWithTrailer(file))) {
    throw new BackupFailedError(
      `${file} does not end with "-- Dump completed": the dump in this backup is cut short`,
      'nothing was changed; try an older --time (backup-agent list)',
    );
  }
}

function safetyFile(restore: DatabaseRestore): string {
  return join(restore.safetyDir, `${restore.database}-${restore.stamp}.sql`);
}

function undoCommand(database: string, safetyCopy: string): string {
  return `mariadb -e 'DROP DATABASE \`${database}\`; CREATE DATABASE \`${database}\`' && mariadb ${database} < ${safetyCopy}`;
}
