// Root's side of an InfluxDB restore: influxd restore -portable over the RPC port, and the checks
// that the database came back with its measurements. Dropping and inspecting go through HTTP.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupFailedError, UsageError, errorMessage } from '../../errors.js';
import type { Logger } from '../../report/logger.js';
import { CommandFailedError, type CommandRunner, type Deadline } from '../../system/run-command.js';
import type { DatabaseRestore, EngineTools, ObjectCount, RestoredDatabase, Restorer } from '../engine.js';
import { inState } from '../restore-state.js';
import { backupCommand, restoreCommand } from './commands.js';
import { InfluxHttp } from './http.js';
import type { InfluxdbSection } from './keys.js';
import { checkPortableBackup } from './source.js';

// How long measurementCounts waits for the restored shards to open.
const SHARD_SETTLE_MS = 30_000;
const TRANSIENT_AFTER_RESTORE = /shard is disabled|engine is closed/;

// influxd's answer when the database already exists; the lab this agent replaces calls it harmless
// because it also shows up after a successful restore on some versions. It is accepted only when
// the database is then really there with data.
const METADATA_NOT_CHANGED = /DB metadata not changed\. database may already exist/;

export class InfluxAdmin {
  readonly http: InfluxHttp;
  private readonly host: string;

  constructor(
    private readonly runner: CommandRunner,
    private readonly logger: Logger,
    config: InfluxdbSection,
    /** Each backup and restore command of the restore. */
    private readonly deadline: Deadline,
  ) {
    this.http = new InfluxHttp(config.http_url);
    this.host = config.host;
  }

  plannedCommands(database: string, dir: string, safetyDir: string, newName?: string): string[] {
    return [
      backupCommand(this.host, database, safetyDir).join(' '),
      `POST ${this.http.baseUrl}/query q=DROP DATABASE "${database}"`,
      restoreCommand(this.host, database, dir, newName).join(' '),
    ];
  }

  async exists(database: string): Promise<boolean> {
    return (await this.http.databases()).includes(database);
  }

  async safetyBackup(database: string, dir: string): Promise<void> {
    await this.runner.run({ argv: backupCommand(this.host, database, dir), deadline: this.deadline });
  }

  async drop(database: string): Promise<void> {
    await this.http.drop(database);
  }

  /** Restores `database` from `dir`, as `newName` when given. */
  async restore(database: string, dir: string, newName?: string): Promise<void> {
    const name = newName ?? database;
    try {
      await this.runner.run({ argv: restoreCommand(this.host, database, dir, newName), deadline: this.deadline });
    } catch (error) {
      // A stop by SIGTERM is not influxd's failure: "check the influxd log" would mislead.
      if (!(error instanceof CommandFailedError) || error.signal !== undefined) throw error;
      const output = error.result.stderrTail.join('\n');
      if (METADATA_NOT_CHANGED.test(output) && (await this.measurementCounts(name)).length > 0) {
        this.logger.warn({ database: name }, 'influxd said "DB metadata not changed", but %s is there with data', name);
        return;
      }
      throw new BackupFailedError(
        `influxd restore of ${name} failed: ${error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`}`,
        METADATA_NOT_CHANGED.test(output)
          ? `the database ${name} still exists; influxd restores only into a new database`
          : 'check the influxd log',
        { cause: error },
      );
    }
  }

  /**
   * Measurements and their point counts. influxd restore returns before the server re-enables the
   * restored shards, so queries right after it may answer "shard is disabled" or "engine is closed"
   * for a moment (the second seen in CI, 2026-12-01, on the runbook's restore).
   */
  async measurementCounts(database: string): Promise<ObjectCount[]> {
    const deadline = Date.now() + SHARD_SETTLE_MS;
    for (;;) {
      try {
        return await this.countOnce(database);
      } catch (error) {
        if (!TRANSIENT_AFTER_RESTORE.test(errorMessage(error)) || Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  }

  private async countOnce(database: string): Promise<ObjectCount[]> {
    if (!(await this.exists(database))) return [];
    const counts: ObjectCount[] = [];
    for (const measurement of (await this.http.measurements(database)).sort()) {
      counts.push({ name: measurement, count: await this.http.pointCount(database, measurement), unit: 'points' });
    }
    return counts;
  }
}

/** The engine's Restorer: influxd restores only into a database that does not exist, so a replace drops first. */
export class InfluxRestorer implements Restorer {
  readonly stopServices: readonly string[];
  private readonly admin: InfluxAdmin;

  constructor(config: InfluxdbSection, tools: EngineTools) {
    this.stopServices = config.stop_services;
    this.admin = new InfluxAdmin(tools.runner, tools.logger, config, tools.deadline('the influxdb restore'));
  }

  plannedCommands(restore: DatabaseRestore): string[] {
    return this.admin.plannedCommands(
      restore.database,
      join(restore.dir, restore.database),
      safetyDir(restore),
      restore.into,
    );
  }

  async restore(restore: DatabaseRestore): Promise<RestoredDatabase> {
    const { admin } = this;
    const { database, into } = restore;
    const backupDir = join(restore.dir, database);
    await checkPortableBackup(database, backupDir);
    const target = into ?? database;
    let safetyCopy: string | null = null;
    if (into !== undefined) {
      if (await admin.exists(into)) {
        throw new UsageError(`database ${into} already exists; --into needs a new name`, 'nothing was changed');
      }
    } else if (await admin.exists(database)) {
      const copy = safetyDir(restore);
      await inState(`database ${database} untouched`, () => admin.safetyBackup(database, copy));
      safetyCopy = copy;
      await admin.drop(database);
    }
    await inState(
      into !== undefined
        ? `database ${into} may be partly restored; drop it and try again`
        : safetyCopy === null
          ? `database ${database} is not restored; run the restore again`
          : `database ${database} was dropped and is not (fully) restored; its previous state is in ${safetyCopy}`,
      () => admin.restore(database, backupDir, into),
    );
    const contents = await admin.measurementCounts(target);
    if (contents.length === 0) {
      throw new BackupFailedError(`after the restore, ${target} has no measurements`, 'check the influxd log');
    }
    return {
      database,
      restoredAs: target,
      safetyCopy,
      undo:
        safetyCopy === null
          ? null
          : `curl -XPOST ${admin.http.baseUrl}/query --data-urlencode 'q=DROP DATABASE "${target}"' && influxd restore -portable -db ${target} ${safetyCopy}`,
      contents,
    };
  }

  async importScratch(database: string, dir: string, scratch: string): Promise<string> {
    try {
      await this.admin.restore(database, join(dir, database), scratch);
      const counts = await this.admin.measurementCounts(scratch);
      if (counts.length === 0) throw new BackupFailedError(`restoring ${database} as ${scratch} gave no measurements`);
      const points = counts.reduce((sum, row) => sum + row.count, 0);
      return `${database} restores into a scratch database: ${counts.length} measurement(s), ${points} point(s)`;
    } finally {
      // Through HTTP, which a SIGTERM does not cancel: the scratch database goes in every case.
      if (await this.admin.exists(scratch)) await this.admin.drop(scratch);
    }
  }
}

/** Every portable backup complete and every shard archive readable, without a server. */
export async function provePortableBackups(
  dir: string,
  databases: readonly string[],
  tools: EngineTools,
): Promise<string> {
  for (const database of databases) {
    const backup = join(dir, database);
    await checkPortableBackup(database, backup);
    for (const name of (await readdir(backup)).filter((file) => file.endsWith('.tar.gz'))) {
      await tools.runner.run({
        argv: ['tar', '--list', '--gzip', '--file', join(backup, name)],
        deadline: tools.deadline(`reading ${name}`),
      });
    }
  }
  return `portable backups of ${databases.join(', ')} complete and every shard archive readable`;
}

function safetyDir(restore: DatabaseRestore): string {
  return join(restore.safetyDir, `influxdb-${restore.database}-${restore.stamp}`);
}
