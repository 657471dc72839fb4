// Fetches one backup set of a source from the target into a fresh directory and proves it against
// the MANIFEST.json that was uploaded with it. Shared by restore and verify; nothing is touched
// on the database side here.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type AgentContext, openDuplicity, scratchDirectory, sectionOf } from '../context/context.js';
import type { BackupSet, SourceKind } from '../domain.js';
import { BackupFailedError, errorMessage } from '../errors.js';
import { formatBytes } from '../report/format.js';
import { type Manifest, configuredDatabases, readManifest, totalSize, verifyManifest } from '../sources/manifest.js';
import { ensureWritableDirectory } from '../system/directories.js';
import type { SystemUser } from '../system/privileges.js';
import { quickDeadline } from '../system/run-command.js';
import type { DownloadPlace } from './restore-area.js';
import { type RestoreTime, chooseBackupSet } from './restore-point.js';
import { refuseUnencryptedVolumes } from './unencrypted-volumes.js';

export interface DownloadedBackup {
  readonly source: SourceKind;
  readonly dir: string;
  readonly set: BackupSet;
  readonly manifest: Manifest;
  /** The manifest's databases, each one checked to be configured: the only names used in SQL and paths. */
  readonly databases: readonly string[];
  readonly bytes: number;
  readonly durationMs: number;
}

const PROGRESS_EVERY_MS = 10_000;

/** Which backup set `time` means on the target; lets --dry-run say it without downloading. */
export async function resolveBackupSet(
  context: AgentContext,
  source: SourceKind,
  time: RestoreTime,
  runAs?: SystemUser,
): Promise<BackupSet> {
  await ensureDuplicityDirectories(context, runAs);
  const duplicity = openDuplicity(context, source, runAs);
  const set = chooseBackupSet(await duplicity.chainStatus(), time, duplicity.url);
  await refuseUnencryptedVolumes(context, source, runAs);
  return set;
}

/**
 * duplicity's --tempdir and gpg's home: on a brand-new host no run or check has made them yet, and
 * neither duplicity nor gpg (as duplicity calls it) does. Root's restore makes them as the backup
 * user, in backup's own directories, so that root creates nothing where backup could have planted a
 * link.
 */
async function ensureDuplicityDirectories(context: AgentContext, runAs: SystemUser | undefined): Promise<void> {
  const scratch = scratchDirectory(context.config);
  const gnupgHome = context.config.target.gnupg_home;
  if (runAs === undefined) {
    await ensureWritableDirectory(scratch, 'agent.cache_dir');
    await ensureWritableDirectory(gnupgHome, 'target.gnupg_home');
    return;
  }
  await context.runner.run({
    argv: ['mkdir', '-p', '-m', '0700', scratch, gnupgHome],
    runAs,
    deadline: quickDeadline('making the scratch directory and the gnupg home'),
  });
}

/**
 * Downloads `set` (from resolveBackupSet) into a fresh directory (duplicity 3.x would merge into
 * leftovers), seals it and checks every file against the manifest, whose names must be configured.
 */
export async function downloadBackup(
  context: AgentContext,
  source: SourceKind,
  set: BackupSet,
  place: DownloadPlace,
): Promise<DownloadedBackup> {
  const started = Date.now();
  const dir = place.dir;
  const duplicity = openDuplicity(context, source, place.runAs);
  context.logger.info(
    { source, backupTime: set.time.toISOString(), kind: set.kind, dir },
    'downloading the %s backup of %s into %s',
    source,
    set.time.toISOString(),
    dir,
  );
  const into = await place.prepare();
  const progress = setInterval(() => {
    void directorySize(into).then((bytes) =>
      context.logger.info({ source, bytes }, 'downloaded %s so far', formatBytes(bytes)),
    );
  }, PROGRESS_EVERY_MS);
  try {
    await duplicity.restore(set.time, into);
    await place.seal();
  } catch (error) {
    await place.remove();
    throw error;
  } finally {
    clearInterval(progress);
  }
  return checkDownloaded(context, source, dir, set, started);
}

/**
 * Proves the files in `dir` (root's by now) against its MANIFEST.json, which must be of `source`
 * and name only configured databases. `set` null: a directory fetched earlier, dated by its manifest.
 */
export async function checkDownloaded(
  context: AgentContext,
  source: SourceKind,
  dir: string,
  set: BackupSet | null,
  started: number,
): Promise<DownloadedBackup> {
  let manifest: Manifest;
  let databases: string[];
  try {
    manifest = await readManifest(dir);
    if (manifest.source !== source) throw new Error(`it holds a ${manifest.source} backup, not ${source}`);
    databases = configuredDatabases(manifest, sectionOf(context.config, source).databases);
  } catch (error) {
    throw new BackupFailedError(
      `the ${source} backup in ${dir} has no usable MANIFEST.json: ${errorMessage(error)}`,
      'nothing was changed; the set is incomplete, was not made by backup-agent for this host, or was tampered with: try an older --time',
      { cause: error },
    );
  }
  const problems = await verifyManifest(dir, manifest);
  if (problems.length > 0) {
    throw new BackupFailedError(
      `the downloaded ${source} backup does not match its manifest: ${problems.join('; ')}`,
      'nothing was changed; the backup is damaged: try an older --time (backup-agent list)',
    );
  }
  const bytes = totalSize(manifest.files);
  context.logger.info(
    { source, bytes, files: manifest.files.length, durationMs: Date.now() - started },
    'downloaded %s and checked %d file(s) against the manifest',
    formatBytes(bytes),
    manifest.files.length,
  );
  const dated = set ?? { kind: 'full', time: new Date(manifest.finishedAt), volumes: 0, encrypted: false };
  return { source, dir, set: dated, manifest, databases, bytes, durationMs: Date.now() - started };
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
    }
  } catch {
    // not created yet, or being written: the next tick will tell
  }
  return total;
}
