// MySQL/MariaDB: one plain, deterministic SQL file per database, written by the dump client
// straight to disk (the agent never holds the data), kept only with exit 0 and the trailer.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { BackupFailedError } from '../../errors.js';
import { findProgram } from '../../system/find-program.js';
import { CommandFailedError, type CommandRunner } from '../../system/run-command.js';
import type { DataSource, PlannedCommand } from '../source.js';
import { accessCheckCommand, dumpCommand, versionCommand } from './commands.js';
import { explainDumpFailure } from './dump-errors.js';
import { checkOptionFile, optionFilePath } from './option-file.js';

const TRAILER = /\n-- Dump completed( on [0-9: -]+)?\n?$/;

export class MysqlSource implements DataSource {
  readonly kind = 'mysql';
  readonly databases: readonly string[];
  private readonly optionFile: string;

  private constructor(
    config: Config['mysql'],
    private readonly program: string,
  ) {
    this.databases = config.databases;
    this.optionFile = optionFilePath(config.defaults_file);
  }

  /** Prefers mariadb-dump (a real binary on Debian 12 and 13); MySQL's own client is mysqldump. */
  static async create(config: Config['mysql']): Promise<MysqlSource> {
    const program = (await findProgram('mariadb-dump')) ? 'mariadb-dump' : 'mysqldump';
    return new MysqlSource(config, program);
  }

  async preflight(): Promise<void> {
    await checkOptionFile(this.optionFile);
  }

  async verifyAccess(runner: CommandRunner): Promise<string> {
    await this.preflight();
    for (const database of this.databases) {
      try {
        await runner.run({ argv: accessCheckCommand(this.program, this.optionFile, database) });
      } catch (error) {
        if (error instanceof CommandFailedError) throw explainDumpFailure(database, this.optionFile, error);
        throw error;
      }
    }
    return `${this.optionFile} is private and ${this.program} can read the schema of ${this.databases.join(', ')}`;
  }

  dumpCommands(dir: string): PlannedCommand[] {
    return this.databases.map((database) => ({
      argv: dumpCommand(this.program, this.optionFile, database),
      stdoutTo: dumpFile(dir, database),
    }));
  }

  async dump(runner: CommandRunner, dir: string): Promise<void> {
    for (const database of this.databases) {
      const file = dumpFile(dir, database);
      try {
        await runner.run({ argv: dumpCommand(this.program, this.optionFile, database), stdout: { file } });
      } catch (error) {
        if (error instanceof CommandFailedError) throw explainDumpFailure(database, this.optionFile, error);
        throw error;
      }
      if (!(await endsWithTrailer(file))) {
        throw new BackupFailedError(
          `the dump of ${database} is incomplete: ${file} does not end with "-- Dump completed"`,
          'the dump client stopped early; see its messages above',
        );
      }
    }
  }

  async toolVersions(runner: CommandRunner): Promise<Record<string, string>> {
    const result = await runner.run({ argv: versionCommand(this.program), stdout: 'capture' });
    return { [this.program]: result.stdout.trim() };
  }
}

function dumpFile(dir: string, database: string): string {
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
