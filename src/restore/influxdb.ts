// Root's side of an InfluxDB restore: influxd restore -portable over the RPC port, and the checks
// that the database came back with its measurements. Dropping and inspecting go through HTTP.
import type { Config } from '../config/schema.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupFailedError, errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { backupCommand, restoreCommand } from '../sources/influxdb/commands.js';
import { CommandFailedError, type CommandRunner, type Deadline } from '../system/run-command.js';
import { InfluxHttp } from './influx-http.js';

export interface MeasurementCount {
  readonly measurement: string;
  readonly points: number;
}

// influxd's answer when the database already exists; the lab this agent replaces calls it harmless
// because it also shows up after a successful restore on some versions. It is accepted only when
// the database is then really there with data.
const SHARD_SETTLE_MS = 30_000;

const METADATA_NOT_CHANGED = /DB metadata not changed\. database may already exist/;

export class InfluxAdmin {
  readonly http: InfluxHttp;
  private readonly host: string;

  constructor(
    private readonly runner: CommandRunner,
    private readonly logger: Logger,
    config: Config['influxdb'],
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
   * restored shards, so queries right after it may answer "shard is disabled" for a moment.
   */
  async measurementCounts(database: string): Promise<MeasurementCount[]> {
    const deadline = Date.now() + SHARD_SETTLE_MS;
    for (;;) {
      try {
        return await this.countOnce(database);
      } catch (error) {
        if (!/shard is disabled/.test(errorMessage(error)) || Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  }

  private async countOnce(database: string): Promise<MeasurementCount[]> {
    if (!(await this.exists(database))) return [];
    const counts: MeasurementCount[] = [];
    for (const measurement of (await this.http.measurements(database)).sort()) {
      counts.push({ measurement, points: await this.http.pointCount(database, measurement) });
    }
    return counts;
  }
}
