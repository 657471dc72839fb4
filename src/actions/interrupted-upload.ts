// A marker written before each upload and removed after it. Finding one at the start of a run
// means the previous upload was killed: duplicity resumes it when given the same command on the
// same, unchanged staging directory, so that happens before any new dump.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { BackupKind, SourceKind } from '../domain.js';
import { writeFileAtomic } from '../system/atomic-write.js';

const markerSchema = z.object({ kind: z.enum(['full', 'incremental']), startedAt: z.string().datetime() });

export type InterruptedUpload = Readonly<z.infer<typeof markerSchema>>;

function markerPath(cacheDir: string, source: SourceKind): string {
  return join(cacheDir, `${source}.upload-in-progress.json`);
}

export async function findInterruptedUpload(
  cacheDir: string,
  source: SourceKind,
): Promise<InterruptedUpload | undefined> {
  try {
    return markerSchema.parse(JSON.parse(await readFile(markerPath(cacheDir, source), 'utf8')));
  } catch {
    // None, or one that does not parse: no upload to resume; the chain check before the next
    // upload still sees what a killed one left on the target.
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
