// A marker written before each upload and removed after it. Finding one at the start of a run
// means the previous upload was killed: duplicity resumes it when given the same command on the
// same, unchanged staging directory, so that happens before any new dump.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupKind, SourceKind } from '../domain.js';
import { writeFileAtomic } from '../system/atomic-write.js';

export interface InterruptedUpload {
  readonly kind: BackupKind;
  readonly startedAt: string;
}

function markerPath(cacheDir: string, source: SourceKind): string {
  return join(cacheDir, `${source}.upload-in-progress.json`);
}

export async function findInterruptedUpload(
  cacheDir: string,
  source: SourceKind,
): Promise<InterruptedUpload | undefined> {
  try {
    return JSON.parse(await readFile(markerPath(cacheDir, source), 'utf8')) as InterruptedUpload;
  } catch {
    return undefined;
  }
}

export async function markUploadStarted(cacheDir: string, source: SourceKind, kind: BackupKind): Promise<void> {
  const marker: InterruptedUpload = { kind, startedAt: new Date().toISOString() };
  await writeFileAtomic(markerPath(cacheDir, source), `${JSON.stringify(marker)}\n`);
}

export async function markUploadFinished(cacheDir: string, source: SourceKind): Promise<void> {
  await rm(markerPath(cacheDir, source), { force: true });
}
