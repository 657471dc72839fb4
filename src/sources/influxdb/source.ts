// InfluxDB 1.x: `influxd backup -portable` per database into its own subdirectory. influxd retries
// a dead server for about four minutes, so reachability is checked first.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupFailedError, errorMessage } from '../../errors.js';
import { CommandFailedError, type CommandRunner, quickDeadline } from '../../system/run-command.js';
import { probeTcp } from '../../system/tcp-probe.js';
import type { DataSource, DumpStep } from '../source.js';
import { backupCommand, metastoreBackupCommand, versionCommand } from './commands.js';
import type { InfluxdbSection } from './keys.js';

export class InfluxdbSource implements DataSource {
  readonly kind = 'influxdb';
  readonly databases: readonly string[];
  private readonly host: string;

  constructor(config: InfluxdbSection) {
    this.databases = config.databases;
    this.host = config.host;
  }

  async preflight(): Promise<void> {
    const separator = this.host.lastIndexOf(':');
    try {
      await probeTcp(this.host.slice(0, separator), Number(this.host.slice(separator + 1)));
    } catch (error) {
      throw new BackupFailedError(
        `influxdb is not reachable at ${this.host}: ${errorMessage(error)}`,
        `is influxd running, and is bind-address = "${this.host}" in /etc/influxdb/influxdb.conf?`,
      );
    }
  }

  async verifyAccess(runner: CommandRunner, scratch: string): Promise<string> {
    await this.preflight();
    const dir = await mkdtemp(join(scratch, 'influx-check-'));
    try {
      await runner.run({
        argv: metastoreBackupCommand(this.host, dir),
        deadline: quickDeadline('backing up the influxdb metastore'),
      });
    } catch (error) {
      if (!(error instanceof CommandFailedError)) throw error;
      throw new BackupFailedError(
        `influxd backup of the metastore from ${this.host} failed: ${error.result.stderrTail.at(-1) ?? ''}`,
        'check the influxd log',
        { cause: error },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return `influxd answers at ${this.host} and its metastore can be backed up`;
  }

  dumpSteps(_runner: CommandRunner, dir: string): Promise<DumpStep[]> {
    return Promise.resolve(
      this.databases.map((database) => ({
        label: `${this.kind} dump of ${database}`,
        argv: backupCommand(this.host, database, join(dir, database)),
        explain: (error: CommandFailedError) => {
          const output = error.result.stderrTail.join('\n');
          // influxd answers an unknown database with a bare EOF.
          const cause = /backup failed: EOF|backup: EOF/.test(output)
            ? `database ${database} does not exist on ${this.host}`
            : (error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`);
          return new BackupFailedError(
            `influxdb backup of ${database} failed: ${cause}`,
            'check influxdb.databases and the influxd log',
            { cause: error },
          );
        },
      })),
    );
  }

  async proveDump(_runner: CommandRunner, dir: string): Promise<void> {
    for (const database of this.databases) await checkPortableBackup(database, join(dir, database));
  }

  async toolVersions(runner: CommandRunner): Promise<Record<string, string>> {
    const result = await runner.run({
      argv: versionCommand(),
      stdout: 'capture',
      deadline: quickDeadline('influxd version'),
    });
    return { influxd: result.stdout.trim() };
  }
}

/** A portable backup is a .manifest, a .meta and one .tar.gz per shard; none may be empty. */
export async function checkPortableBackup(database: string, dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const empty: string[] = [];
  for (const name of names) if ((await stat(join(dir, name))).size === 0) empty.push(name);
  if (
    !names.some((name) => name.endsWith('.manifest')) ||
    !names.some((name) => name.endsWith('.meta')) ||
    empty.length > 0
  ) {
    throw new BackupFailedError(
      `influxdb backup of ${database} is incomplete: ${dir} holds ${names.length === 0 ? 'nothing' : names.join(', ')}${empty.length > 0 ? ` (empty: ${empty.join(', ')})` : ''}`,
      'influxd exited 0 without writing a complete portable backup; check the influxd log',
    );
  }
}
