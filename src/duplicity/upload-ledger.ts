// What this agent uploaded: the size of every file of each set, read from the target's listing
// right after duplicity reported success, and the directory and host the set was made from.
// duplicity's manifests name the volumes but not their sizes, so without this record a volume cut
// short on the target (a full disk there, a half-copied migration) would go unnoticed until a restore.
// Kept next to the cache, not in it: a damaged cache is moved aside, and this record stays valid.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../system/atomic-write.js';
import type { CommandRunner, Deadline } from '../system/run-command.js';
import { type RemoteFile, listRemoteFiles } from '../remote/remote.js';
import { type StoredSet, groupSets, setId } from './backup-files.js';
import type { DuplicitySettings } from './command.js';

const ledgerSchema = z.object({
  version: z.literal(1),
  /** File name on the target → size in bytes when the upload had finished. */
  files: z.record(z.string(), z.number().int().nonnegative()),
  /** Where the newest set came from; duplicity refuses an incremental from another directory or host. */
  source: z.object({ localdir: z.string(), hostname: z.string() }).nullable(),
});

export type UploadLedger = z.output<typeof ledgerSchema>;
export type SetSource = NonNullable<UploadLedger['source']>;

export const EMPTY_LEDGER: UploadLedger = { version: 1, files: {}, source: null };

export function ledgerPath(archiveDir: string, name: string): string {
  return join(archiveDir, `${name}.uploaded.json`);
}

/** The ledger, or an empty one with the reason when the file is missing or not a ledger. */
export async function readLedger(file: string): Promise<{ ledger: UploadLedger; problem: string | null }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ledger: EMPTY_LEDGER, problem: null };
    return { ledger: EMPTY_LEDGER, problem: `cannot read ${file}: ${(error as Error).message}` };
  }
  try {
    return { ledger: ledgerSchema.parse(JSON.parse(text)), problem: null };
  } catch (error) {
    return { ledger: EMPTY_LEDGER, problem: `${file} is not a valid record of uploads: ${(error as Error).message}` };
  }
}

export async function writeLedger(file: string, ledger: UploadLedger): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(ledger)}\n`);
}

/**
 * After duplicity reported success for an upload of `localdir`: records its set as the target lists
 * it. Returns that listing, the run's one look at the target after the upload (retention reads it).
 */
export async function recordUpload(
  runner: CommandRunner,
  settings: DuplicitySettings,
  localdir: string,
  deadline: Deadline,
): Promise<RemoteFile[]> {
  const file = ledgerPath(settings.archiveDir, settings.name);
  const [listing, { ledger }] = await Promise.all([
    listRemoteFiles(runner, settings.url, settings, deadline),
    readLedger(file),
  ]);
  await writeLedger(file, recordNewestSet(ledger, listing, { localdir, hostname: hostname() }));
  return listing;
}

/**
 * The ledger after a successful upload: the files of the newest set with a manifest (the one just
 * uploaded or resumed) at their listed sizes; sets no longer on the target (retention) are dropped.
 * A set that lost only some files keeps its record, which is what lets the next run notice.
 */
export function recordNewestSet(ledger: UploadLedger, listing: readonly RemoteFile[], source: SetSource): UploadLedger {
  const sets = groupSets(listing);
  const present = new Set(sets.map(setId));
  const files: Record<string, number> = {};
  for (const [name, size] of Object.entries(ledger.files)) {
    const set = groupSets([{ name, size }])[0];
    if (set !== undefined && present.has(setId(set))) files[name] = size;
  }
  const newest = sets.filter((set) => set.manifest !== undefined).at(-1);
  if (newest !== undefined) for (const file of filesOf(newest)) files[file.name] = file.size;
  return { version: 1, files, source };
}

function filesOf(set: StoredSet): RemoteFile[] {
  return [set.manifest, set.signatures, ...set.volumes.values()].filter((file) => file !== undefined);
}
