// `backup-agent verify`: the restore drill. Downloads the latest backup of each source into scratch
// space, proves it against its manifest and checks each dump is complete; as root with --import it
// also loads it into scratch databases and compares. Nothing live is touched; the scratch is removed.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceKind } from '../domain.js';
import { duplicityTime } from '../duplicity/run.js';
import { BackupFailedError, errorMessage } from '../errors.js';
import { type DownloadedBackup, downloadBackup, resolveBackupSet } from '../restore/download.js';
import { InfluxAdmin } from '../restore/influxdb.js';
import { MysqlAdmin, tablesInDump } from '../restore/mysql.js';
import { parseRestoreTime } from '../restore/restore-point.js';
import { checkPortableBackup } from '../sources/influxdb/source.js';
import { endsWithTrailer } from '../sources/mysql/source.js';
import { acquireRunLock } from '../system/lock.js';
import { quickDeadline } from '../system/run-command.js';
import { agentUser, isRoot } from '../system/privileges.js';
import { type DownloadPlace, openRestoreArea, ownDownloadPlace, rootDownloadPlace } from '../restore/restore-area.js';
import { type AgentContext, endSession, lockPath, restoreDeadline } from '../context/context.js';

export interface DrillResult {
  readonly source: SourceKind;
  readonly ok: boolean;
  readonly backupTime: Date | null;
  readonly bytes: number;
  readonly durationMs: number;
  /** What was proven, one sentence each; or the failure. */
  readonly findings: readonly string[];
}

export async function runDrill(
  context: AgentContext,
  sources: readonly SourceKind[],
  importToo: boolean,
): Promise<DrillResult[]> {
  const { config } = context;
  // Root (--import) downloads into its restore area as the backup user, as the restore does; the
  // backup user alone downloads into its own scratch space.
  const owner = isRoot() ? await agentUser() : undefined;
  const area = owner === undefined ? undefined : await openRestoreArea(config);
  const lock = await acquireRunLock(lockPath(config.agent.cache_dir), 'backup-agent verify', owner);
  try {
    const results: DrillResult[] = [];
    for (const source of sources) {
      if (context.cancel.aborted) break;
      const name = `verify-${source}`;
      const place =
        owner === undefined || area === undefined
          ? ownDownloadPlace(config, name)
          : rootDownloadPlace(area.root, name, owner);
      results.push(await drill(context, source, importToo, place));
    }
    return results;
  } finally {
    // Root's download ran as the backup user: the ssh master and gpg-agent are that user's.
    await endSession(context, owner);
    await lock.release();
  }
}

async function drill(
  context: AgentContext,
  source: SourceKind,
  importToo: boolean,
  place: DownloadPlace,
): Promise<DrillResult> {
  const started = Date.now();
  let downloaded: DownloadedBackup | undefined;
  try {
    const set = await resolveBackupSet(context, source, parseRestoreTime('now'), place.runAs);
    downloaded = await downloadBackup(context, source, set, place);
    const findings = [
      `${downloaded.manifest.files.length} file(s) match MANIFEST.json`,
      ...(source === 'mysql' ? await checkSqlDumps(downloaded) : await checkInfluxBackups(context, downloaded)),
      ...(importToo ? await importIntoScratch(context, downloaded) : []),
    ];
    return {
      source,
      ok: true,
      backupTime: set.time,
      bytes: downloaded.bytes,
      durationMs: Date.now() - started,
      findings,
    };
  } catch (error) {
    return {
      source,
      ok: false,
      backupTime: downloaded?.set.time ?? null,
      bytes: downloaded?.bytes ?? 0,
      durationMs: Date.now() - started,
      findings: [errorMessage(error)],
    };
  } finally {
    await place.remove();
  }
}

async function checkSqlDumps(downloaded: DownloadedBackup): Promise<string[]> {
  const dumps = downloaded.manifest.files.filter((file) => file.name.endsWith('.sql'));
  for (const dump of dumps) {
    if (!(await endsWithTrailer(join(downloaded.dir, dump.name)))) {
      throw new BackupFailedError(
        `${dump.name} has no "-- Dump completed" trailer: the dump in this backup is cut short`,
      );
    }
  }
  return [`${dumps.map((dump) => dump.name).join(', ')} complete (mysqldump trailer present)`];
}

async function checkInfluxBackups(context: AgentContext, downloaded: DownloadedBackup): Promise<string[]> {
  const databases = downloaded.databases;
  for (const database of databases) {
    const dir = join(downloaded.dir, database);
    await checkPortableBackup(database, dir);
    for (const name of (await readdir(dir)).filter((file) => file.endsWith('.tar.gz'))) {
      await context.runner.run({
        argv: ['tar', '--list', '--gzip', '--file', join(dir, name)],
        deadline: restoreDeadline(context.config, `reading ${name}`),
      });
    }
  }
  return [`portable backups of ${databases.join(', ')} complete and every shard archive readable`];
}

async function importIntoScratch(context: AgentContext, downloaded: DownloadedBackup): Promise<string[]> {
  const stamp = duplicityTime(new Date()).replace(/[-:TZ]/g, '');
  const findings: string[] = [];
  if (downloaded.source === 'mysql') {
    const admin = await MysqlAdmin.create(
      context.runner,
      context.logger,
      context.config.mysql,
      restoreDeadline(context.config, 'the scratch import'),
    );
    for (const database of downloaded.databases) {
      const scratch = `${database}_verify_${stamp}`;
      const dumpFile = join(downloaded.dir, `${database}.sql`);
      try {
        await admin.createEmpty(scratch);
        await admin.import(scratch, dumpFile, false);
        const expected = await tablesInDump(
          context.runner,
          dumpFile,
          restoreDeadline(context.config, `reading the dump of ${database}`),
        );
        const counts = await admin.tableCounts(scratch);
        const missing = expected.filter((table) => !counts.some((row) => row.table === table));
        if (missing.length > 0)
          throw new BackupFailedError(`importing ${database} did not create ${missing.join(', ')}`);
        const rows = counts.reduce((sum, row) => sum + row.rows, 0);
        findings.push(`${database} imports into a scratch database: ${counts.length} table(s), ${rows} row(s)`);
      } finally {
        // On the cleanup runner: after a SIGTERM the drill's own runner starts nothing any more.
        await admin.through(context.cleanup, quickDeadline(`dropping ${scratch}`)).drop(scratch);
      }
    }
    return findings;
  }
  const admin = new InfluxAdmin(
    context.runner,
    context.logger,
    context.config.influxdb,
    restoreDeadline(context.config, 'the scratch restore'),
  );
  for (const database of downloaded.databases) {
    const scratch = `${database}_verify_${stamp}`;
    try {
      await admin.restore(database, join(downloaded.dir, database), scratch);
      const counts = await admin.measurementCounts(scratch);
      if (counts.length === 0) throw new BackupFailedError(`restoring ${database} as ${scratch} gave no measurements`);
      const points = counts.reduce((sum, row) => sum + row.points, 0);
      findings.push(
        `${database} restores into a scratch database: ${counts.length} measurement(s), ${points} point(s)`,
      );
    } finally {
      // Through HTTP, which a SIGTERM does not cancel: the scratch database goes in every case.
      if (await admin.exists(scratch)) await admin.drop(scratch);
    }
  }
  return findings;
}
