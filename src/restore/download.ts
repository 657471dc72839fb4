// Fetches one backup set of a source from the target into a fresh directory and proves it against
// the MANIFEST.json that was uploaded with it. Shared by restore and verify; nothing is touched
// on the database side here.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type AgentContext, duplicityEnv, duplicitySettings } from '../actions/context.js';
import type { BackupSet, SourceKind } from '../domain.js';
import { Duplicity } from '../duplicity/run.js';
import { BackupFailedError } from '../errors.js';
import { formatBytes } from '../report/format.js';
import { type Manifest, readManifest, totalSize, verifyManifest } from '../sources/manifest.js';
import type { SystemUser } from '../system/privileges.js';
import { type RestoreTime, chooseBackupSet } from './restore-point.js';

export interface DownloadedBackup {
  readonly source: SourceKind;
  readonly dir: string;
  readonly set: BackupSet;
  readonly manifest: Manifest;
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
  const duplicity = new Duplicity(context.runner, duplicitySettings(context, source), duplicityEnv(context), runAs);
  return chooseBackupSet(await duplicity.chainStatus(), time, duplicity.url);
}

/**
 * Downloads `set` (from resolveBackupSet) into `dir` (removed first: duplicity 3.x would merge into
 * leftovers) and checks every file against the manifest. `runAs` is the backup user when root restores.
 */
export async function downloadBackup(
  context: AgentContext,
  source: SourceKind,
  set: BackupSet,
  dir: string,
  runAs?: SystemUser,
): Promise<DownloadedBackup> {
  const started = Date.now();
  const duplicity = new Duplicity(context.runner, duplicitySettings(context, source), duplicityEnv(context), runAs);
  context.logger.info(
    { source, backupTime: set.time.toISOString(), kind: set.kind, dir },
    'downloading the %s backup of %s into %s',
    source,
    set.time.toISOString(),
    dir,
  );
  await rm(dir, { recursive: true, force: true });
  const progress = setInterval(() => {
    void directorySize(dir).then((bytes) =>
      context.logger.info({ source, bytes }, 'downloaded %s so far', formatBytes(bytes)),
    );
  }, PROGRESS_EVERY_MS);
  try {
    await duplicity.restore(set.time, dir);
  } finally {
    clearInterval(progress);
  }

  let manifest: Manifest;
  try {
    manifest = await readManifest(dir);
  } catch (error) {
    throw new BackupFailedError(
      `the downloaded ${source} backup in ${dir} has no readable MANIFEST.json`,
      'the backup set is incomplete or was not made by backup-agent; try an older --time',
      { cause: error },
    );
  }
  const problems = await verifyManifest(dir, manifest);
  if (problems.length > 0) {
    throw new BackupFailedError(
      `the downloaded ${source} backup does not match its manifest: ${problems.join('; ')}`,
      'the backup on the target is damaged; try an older --time (backup-agent list)',
    );
  }
  const bytes = totalSize(manifest.files);
  context.logger.info(
    { source, bytes, files: manifest.files.length, durationMs: Date.now() - started },
    'downloaded %s and checked %d file(s) against the manifest',
    formatBytes(bytes),
    manifest.files.length,
  );
  return { source, dir, set, manifest, bytes, durationMs: Date.now() - started };
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
    }
  } catch {
    // not created yet, or being written: the next tick will tell
  }
  return total;
}
