// A damaged duplicity cache (a signature file cut short by a full disk or a crash) fails every
// backup with a Python traceback until someone deletes it, while a missing cache is simply rebuilt
// from the target. So after a failure that may come from the cache, the cache
// is read through; if it is damaged it is moved aside (the newest damaged copy is kept for a
// post-mortem) and the step is tried once more.
// Not checked before every run: gunzipping the signatures runs at about 300 MB/s on one core (2
// vCPU test machine), seconds per run for a cache of a 100 GB database, to find a fault that the
// first call reading the damaged file reveals anyway, at the price of one failed duplicity start.
import { createReadStream } from 'node:fs';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BackupFailedError } from '../errors.js';
import { CommandFailedError } from '../system/run-command.js';
import { parseManifest } from './backup-files.js';
import { PERMANENT_REFUSAL } from '../remote/failures.js';

/** duplicity's exit code for every error of the target's backend: unreachable, refused, missing directory. */
const BACKEND_ERROR = 50;
/** Another duplicity holds the cache's lock: the cache is in use, not damaged. */
const CACHE_BUSY = 23;

/**
 * Whether a failed duplicity call may have failed on its cache: duplicity exited by itself, and
 * neither the target (backend error, permanent refusal) nor a concurrent duplicity was the cause.
 * Timeouts and cancellation are other errors and never qualify.
 */
export function mayBeCacheFault(error: unknown): boolean {
  const cause = error instanceof BackupFailedError ? error.cause : error;
  if (!(cause instanceof CommandFailedError) || cause.signal !== undefined) return false;
  const { exitCode, stderrTail } = cause.result;
  if (exitCode === BACKEND_ERROR || exitCode === CACHE_BUSY) return false;
  return !PERMANENT_REFUSAL.test(stderrTail.join('\n'));
}

/** The first damaged file of the cache directory and why; undefined when every file reads whole. */
export async function findCacheDamage(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir).catch(() => [])).sort();
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.sigtar.gz')) {
      const problem = await gzipProblem(path);
      if (problem !== undefined) return `${name} cannot be read: ${problem}`;
    } else if (name.endsWith('.manifest')) {
      const { damage } = parseManifest(await readFile(path, 'utf8'));
      if (damage !== null) return `${name} is damaged: ${damage}`;
    }
  }
  return undefined;
}

async function gzipProblem(path: string): Promise<string | undefined> {
  const discard = new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
  try {
    await pipeline(createReadStream(path), createGunzip(), discard);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Renames <archiveDir>/<name> to <name>.damaged-<stamp> and removes older such copies; duplicity
 * then starts from an empty cache and downloads the signatures and manifests again.
 */
export async function moveCacheAside(archiveDir: string, name: string, now: Date): Promise<string> {
  const prefix = `${name}.damaged-`;
  const aside = `${prefix}${now.toISOString().replace(/[-:]|\.\d{3}/g, '')}`;
  await rename(join(archiveDir, name), join(archiveDir, aside));
  for (const entry of await readdir(archiveDir)) {
    if (entry.startsWith(prefix) && entry !== aside)
      await rm(join(archiveDir, entry), { recursive: true, force: true });
  }
  return join(archiveDir, aside);
}
