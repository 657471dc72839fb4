// `backup-agent restore mysql|influxdb`, run by root: download (as the backup user) → check against
// the manifest → safety copy of what is there now → replace → prove the result. Every failure says
// what state the host is in, and the safety copy makes every restore reversible.
import { join } from 'node:path';
import type { BackupSet, SourceKind } from '../domain.js';
import { restoreCommand } from '../duplicity/command.js';
import { duplicityTime } from '../duplicity/run.js';
import { AgentError, BackupFailedError, UsageError, errorMessage } from '../errors.js';
import { formatBytes } from '../report/format.js';
import { acquireRunLock } from '../system/lock.js';
import { agentUser } from '../system/privileges.js';
import { takeDirectory } from '../system/root-fs.js';
import { seconds } from '../system/run-command.js';
import { type DownloadedBackup, checkDownloaded, downloadBackup, resolveBackupSet } from '../restore/download.js';
import { InfluxAdmin, type MeasurementCount } from '../restore/influxdb.js';
import {
  MysqlAdmin,
  type TableCount,
  checkDatabaseName,
  refuseClientCommands,
  tablesInDump,
} from '../restore/mysql.js';
import { endsWithTrailer } from '../sources/mysql/source.js';
import { openRestoreArea, rootDownloadPlace } from '../restore/restore-area.js';
import type { RestoreTime } from '../restore/restore-point.js';
import { stopServices } from '../restore/services.js';
import { type AgentContext, duplicitySettings, endSession, lockPath, restoreDeadline } from '../context/context.js';

export interface RestoreRequest {
  readonly source: SourceKind;
  readonly time: RestoreTime;
  /** Configured databases to restore (default: all of them). */
  readonly databases: readonly string[];
  readonly into?: string | undefined;
  readonly fromDir?: string | undefined;
  readonly downloadOnly: boolean;
  readonly dryRun: boolean;
  /** Asks the operator; resolves true to go on. Not called with --yes. */
  readonly confirm: (question: string) => Promise<boolean>;
}

export interface RestoredDatabase {
  readonly database: string;
  readonly restoredAs: string;
  /** Safety copy of the database as it was before the restore; null when it did not exist. */
  readonly safetyCopy: string | null;
  readonly undo: string | null;
  readonly contents: readonly (TableCount | MeasurementCount)[];
}

export interface RestoreReport {
  readonly source: SourceKind;
  readonly backupTime: Date | null;
  readonly dir: string;
  readonly downloadOnly: boolean;
  readonly databases: readonly RestoredDatabase[];
  readonly steps: readonly { readonly step: string; readonly ms: number }[];
  readonly servicesRestarted: readonly string[];
}

export function restoreDirectory(context: AgentContext, source: SourceKind): string {
  return join(context.config.agent.restore_dir, source);
}

export function selectDatabases(
  configured: readonly string[],
  requested: string | undefined,
  into: string | undefined,
): string[] {
  if (requested !== undefined && !configured.includes(requested)) {
    throw new UsageError(
      `--database ${requested} is not one of the configured databases (${configured.join(', ')})`,
      'restore one of the databases the agent backs up',
    );
  }
  const databases = requested === undefined ? [...configured] : [requested];
  if (into !== undefined) {
    checkDatabaseName(into, '--into');
    if (databases.length !== 1) throw new UsageError('--into needs --database: one database gets the new name');
  }
  return databases;
}

/** Plans, asks, and restores. Returns null when the operator said no or for --dry-run. */
export async function runRestore(context: AgentContext, request: RestoreRequest): Promise<RestoreReport | null> {
  const { config, logger } = context;
  const user = await agentUser();
  const dir = request.fromDir ?? restoreDirectory(context, request.source);
  const steps: { step: string; ms: number }[] = [];
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await work();
    } finally {
      steps.push({ step, ms: Date.now() - started });
      logger.info({ step, durationMs: Date.now() - started }, '%s took %ss', step, seconds(Date.now() - started));
    }
  };

  // The run lock keeps a scheduled backup from dumping a half-restored database and uploading it.
  const lock = await acquireRunLock(lockPath(config.agent.cache_dir), `backup-agent restore ${request.source}`, user);
  try {
    const set =
      request.fromDir === undefined
        ? await timed('reading the backup chain', () => resolveBackupSet(context, request.source, request.time, user))
        : null;
    const plan = describePlan(context, request, set, dir);
    if (request.dryRun) {
      process.stdout.write(
        `${[...plan, '', 'commands:', ...(await sourceCommands(context, request, dir))].join('\n')}\n`,
      );
      return null;
    }
    if (!request.downloadOnly && !(await request.confirm(`${plan.join('\n')}\n\nGo on? [y/N] `))) {
      logger.warn('restore cancelled by the operator; nothing was changed');
      return null;
    }

    const area = await openRestoreArea(config);
    const downloaded =
      set === null
        ? await timed('manifest check', () => checkFetchedDirectory(context, request.source, dir))
        : await timed('download and manifest check', () =>
            downloadBackup(context, request.source, set, rootDownloadPlace(area.root, request.source, user)),
          );
    if (request.downloadOnly) {
      return {
        source: request.source,
        backupTime: set?.time ?? null,
        dir,
        downloadOnly: true,
        databases: [],
        steps,
        servicesRestarted: [],
      };
    }
    const safetyDir = area.safetyDir;
    const stamp = duplicityTime(new Date()).replace(/[-:]/g, '');

    if (request.source === 'mysql') {
      const admin = await MysqlAdmin.create(
        context.runner,
        logger,
        config.mysql,
        restoreDeadline(config, 'the mysql restore'),
      );
      const databases: RestoredDatabase[] = [];
      for (const database of request.databases) {
        databases.push(
          await timed(`restore of ${database}`, () =>
            restoreMysqlDatabase(
              context,
              admin,
              downloaded,
              database,
              request.into,
              join(safetyDir, `${database}-${stamp}.sql`),
            ),
          ),
        );
      }
      return {
        source: 'mysql',
        backupTime: set?.time ?? null,
        dir,
        downloadOnly: false,
        databases,
        steps,
        servicesRestarted: [],
      };
    }

    const admin = new InfluxAdmin(
      context.runner,
      logger,
      config.influxdb,
      restoreDeadline(config, 'the influxdb restore'),
    );
    const services = await stopServices(context.runner, context.cleanup, logger, config.influxdb.stop_services);
    const databases: RestoredDatabase[] = [];
    let failure: unknown;
    try {
      for (const database of request.databases) {
        databases.push(
          await timed(`restore of ${database}`, () =>
            restoreInfluxDatabase(
              admin,
              downloaded,
              database,
              request.into,
              join(safetyDir, `influxdb-${database}-${stamp}`),
            ),
          ),
        );
      }
    } catch (error) {
      failure = error;
    }
    // Always, even after a failure: a stopped telegraf loses metrics for as long as it stays down.
    const notRestarted = await services.restart();
    const restarted = services.names.filter((name) => !notRestarted.includes(name));
    if (failure !== undefined) throw withServiceState(failure, restarted, notRestarted);
    if (notRestarted.length > 0) {
      throw new BackupFailedError(
        `the restore succeeded but ${notRestarted.join(', ')} did not start again`,
        `start it by hand: systemctl start ${notRestarted.join(' ')}`,
      );
    }
    return {
      source: 'influxdb',
      backupTime: set?.time ?? null,
      dir,
      downloadOnly: false,
      databases,
      steps,
      servicesRestarted: restarted,
    };
  } finally {
    // The download ran as the backup user: its ssh master and gpg-agent are that user's.
    await endSession(context, user);
    await lock.release();
  }
}

async function restoreMysqlDatabase(
  context: AgentContext,
  admin: MysqlAdmin,
  downloaded: DownloadedBackup,
  database: string,
  into: string | undefined,
  safetyFile: string,
): Promise<RestoredDatabase> {
  const dumpFile = join(downloaded.dir, `${database}.sql`);
  if (!downloaded.manifest.files.some((file) => file.name === `${database}.sql`)) {
    throw new BackupFailedError(
      `the backup holds no dump of ${database} (${downloaded.dir})`,
      'untouched: nothing was changed',
    );
  }
  if (!(await endsWithTrailer(dumpFile))) {
    throw new BackupFailedError(
      `${dumpFile} does not end with "-- Dump completed": the dump in this backup is cut short`,
      'nothing was changed; try an older --time (backup-agent list)',
    );
  }
  const reading = restoreDeadline(context.config, `reading the dump of ${database}`);
  await refuseClientCommands(context.runner, dumpFile, reading);
  const target = into ?? database;
  const expected = await tablesInDump(context.runner, dumpFile, reading);
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
      admin.import(into, dumpFile, process.stderr.isTTY),
    );
  } else {
    if (await admin.exists(database)) {
      const bytes = await inState(`database ${database} untouched`, () => admin.safetyDump(database, safetyFile));
      safetyCopy = safetyFile;
      context.logger.info(
        { database, file: safetyFile, bytes },
        'safety dump of %s: %s (%s)',
        database,
        safetyFile,
        formatBytes(bytes),
      );
    }
    await inState(
      safetyCopy === null
        ? `database ${database} is partly restored; run the restore again`
        : `database ${database} is partly restored; its previous state is in ${safetyCopy}`,
      () => admin.replace(database, dumpFile, process.stderr.isTTY),
    );
  }
  const contents = await admin.tableCounts(target);
  const missing = expected.filter((table) => !contents.some((row) => row.table === table));
  if (missing.length > 0) {
    throw new BackupFailedError(
      `after the import, ${target} lacks table(s) ${missing.join(', ')} that the dump creates`,
      undoHint(target, safetyCopy),
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

async function restoreInfluxDatabase(
  admin: InfluxAdmin,
  downloaded: DownloadedBackup,
  database: string,
  into: string | undefined,
  safetyDir: string,
): Promise<RestoredDatabase> {
  const backupDir = join(downloaded.dir, database);
  if (!downloaded.manifest.files.some((file) => file.name.startsWith(`${database}/`))) {
    throw new BackupFailedError(
      `the backup holds no InfluxDB backup of ${database} (${downloaded.dir})`,
      'untouched: nothing was changed',
    );
  }
  const target = into ?? database;
  let safetyCopy: string | null = null;
  if (into !== undefined) {
    if (await admin.exists(into)) {
      throw new UsageError(`database ${into} already exists; --into needs a new name`, 'nothing was changed');
    }
  } else if (await admin.exists(database)) {
    await inState(`database ${database} untouched`, () => admin.safetyBackup(database, safetyDir));
    safetyCopy = safetyDir;
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

/** Runs `work`; a failure carries the sentence saying what state the host is in now. */
async function inState<T>(state: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AgentError && !(error instanceof BackupFailedError)) throw error;
    const hint = error instanceof BackupFailedError && error.hint !== undefined ? ` (${error.hint})` : '';
    throw new BackupFailedError(`${errorMessage(error)}${hint}`, `state now: ${state}`, { cause: error });
  }
}

function withServiceState(error: unknown, restarted: readonly string[], notRestarted: readonly string[]): unknown {
  if (!(error instanceof BackupFailedError)) return error;
  const services = [
    ...(restarted.length > 0 ? [`${restarted.join(', ')} restarted`] : []),
    ...(notRestarted.length > 0
      ? [`${notRestarted.join(', ')} did NOT start again: systemctl start ${notRestarted.join(' ')}`]
      : []),
  ];
  if (services.length === 0) return error;
  return new BackupFailedError(error.message, [error.hint, ...services].filter(Boolean).join('; '), { cause: error });
}

function undoCommand(database: string, safetyCopy: string): string {
  return `mariadb -e 'DROP DATABASE \`${database}\`; CREATE DATABASE \`${database}\`' && mariadb ${database} < ${safetyCopy}`;
}

function undoHint(database: string, safetyCopy: string | null): string {
  return safetyCopy === null ? 'run the restore again' : `to go back: ${undoCommand(database, safetyCopy)}`;
}

/** --from-dir: the directory becomes root's (plain files and directories only) before it is read. */
async function checkFetchedDirectory(
  context: AgentContext,
  source: SourceKind,
  dir: string,
): Promise<DownloadedBackup> {
  const started = Date.now();
  await takeDirectory(dir, '--from-dir');
  return checkDownloaded(context, source, dir, null, started);
}

function describePlan(context: AgentContext, request: RestoreRequest, set: BackupSet | null, dir: string): string[] {
  const source = request.source;
  const from = set === null ? `the files in ${dir}` : `the ${set.kind} backup of ${set.time.toISOString()}`;
  const lines = [
    `restore ${source}: ${request.databases.map((db) => (request.into ? `${db} → ${request.into}` : db)).join(', ')} from ${from}`,
  ];
  if (set !== null) {
    const argv = restoreCommand(duplicitySettings(context, source), duplicityTime(set.time), dir);
    lines.push(`  1. download as the backup user: ${context.runner.display(argv).join(' ')}`);
    lines.push(`  2. check every file against ${dir}/MANIFEST.json`);
  }
  if (request.downloadOnly) return lines;
  const safetyDir = join(context.config.agent.restore_dir, 'safety');
  lines.push(
    request.into
      ? `  3. create the new database ${request.into} and import into it; the original is not touched`
      : `  3. save the current ${request.databases.join(', ')} into ${safetyDir}/ (undo), then replace it`,
  );
  if (source === 'influxdb' && context.config.influxdb.stop_services.length > 0) {
    lines.push(
      `     stopping ${context.config.influxdb.stop_services.join(', ')} meanwhile, and starting it again afterwards`,
    );
  }
  lines.push(`  4. check the restored tables/measurements and print their counts`);
  return lines;
}

async function sourceCommands(context: AgentContext, request: RestoreRequest, dir: string): Promise<string[]> {
  const safetyDir = join(context.config.agent.restore_dir, 'safety');
  if (request.source === 'mysql') {
    const admin = await MysqlAdmin.create(
      context.runner,
      context.logger,
      context.config.mysql,
      restoreDeadline(context.config, 'the mysql restore'),
    );
    return request.databases.flatMap((database) =>
      admin.plannedCommands(
        request.into ?? database,
        join(dir, `${database}.sql`),
        request.into === undefined ? join(safetyDir, `${database}-TIMESTAMP.sql`) : null,
      ),
    );
  }
  const admin = new InfluxAdmin(
    context.runner,
    context.logger,
    context.config.influxdb,
    restoreDeadline(context.config, 'the influxdb restore'),
  );
  return request.databases.flatMap((database) =>
    admin.plannedCommands(
      database,
      join(dir, database),
      join(safetyDir, `influxdb-${database}-TIMESTAMP`),
      request.into,
    ),
  );
}
