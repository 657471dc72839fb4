// `backup-agent restore <source>`, run by root: download (as the backup user) → check against
// the manifest → safety copy of what is there now → replace → prove the result. Every failure says
// what state the host is in, and the safety copy makes every restore reversible.
import { join } from 'node:path';
import type { BackupSet, SourceKind } from '../domain.js';
import { restoreCommand } from '../duplicity/command.js';
import { duplicityTime } from '../duplicity/run.js';
import { BackupFailedError, UsageError } from '../errors.js';
import { acquireRunLock } from '../system/lock.js';
import { agentUser } from '../system/privileges.js';
import { takeDirectory } from '../system/root-fs.js';
import { seconds } from '../system/run-command.js';
import { type DownloadedBackup, checkDownloaded, downloadBackup, resolveBackupSet } from '../restore/download.js';
import { openRestoreArea, rootDownloadPlace } from '../restore/restore-area.js';
import type { RestoreTime } from '../restore/restore-point.js';
import { stopServices } from '../restore/services.js';
import { checkDatabaseName } from '../sources/database-name.js';
import type { DatabaseRestore, RestoredDatabase, Restorer } from '../sources/engine.js';
import { engineOf } from '../sources/registry.js';
import {
  type AgentContext,
  duplicitySettings,
  endSession,
  engineTools,
  lockPath,
  sectionOf,
} from '../context/context.js';

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
    const engine = engineOf(request.source);
    const restorer = await engine.restorer(sectionOf(config, request.source), engineTools(context));
    const plan = describePlan(context, request, restorer, set, dir);
    if (request.dryRun) {
      process.stdout.write(
        `${[...plan, '', 'commands:', ...plannedCommands(context, request, restorer, dir)].join('\n')}\n`,
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
    const stamp = duplicityTime(new Date()).replace(/[-:]/g, '');
    const services = await stopServices(context.runner, context.cleanup, logger, restorer.stopServices);
    const databases: RestoredDatabase[] = [];
    let failure: unknown;
    try {
      for (const database of request.databases) {
        const restore = databaseRestore(request, downloaded.dir, database, area.safetyDir, stamp);
        databases.push(await timed(`restore of ${database}`, () => restorer.restore(restore)));
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
      source: request.source,
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

function databaseRestore(
  request: RestoreRequest,
  dir: string,
  database: string,
  safetyDir: string,
  stamp: string,
): DatabaseRestore {
  return { database, dir, into: request.into, safetyDir, stamp, showProgress: process.stderr.isTTY };
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

function describePlan(
  context: AgentContext,
  request: RestoreRequest,
  restorer: Restorer,
  set: BackupSet | null,
  dir: string,
): string[] {
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
  lines.push(
    request.into
      ? `  3. create the new database ${request.into} and import into it; the original is not touched`
      : `  3. save the current ${request.databases.join(', ')} into ${safetyDirectory(context)}/ (undo), then replace it`,
  );
  if (restorer.stopServices.length > 0) {
    lines.push(`     stopping ${restorer.stopServices.join(', ')} meanwhile, and starting it again afterwards`);
  }
  lines.push(`  4. check the restored tables/measurements and print their counts`);
  return lines;
}

function plannedCommands(context: AgentContext, request: RestoreRequest, restorer: Restorer, dir: string): string[] {
  return request.databases.flatMap((database) =>
    restorer.plannedCommands(databaseRestore(request, dir, database, safetyDirectory(context), 'TIMESTAMP')),
  );
}

function safetyDirectory(context: AgentContext): string {
  return join(context.config.agent.restore_dir, 'safety');
}
