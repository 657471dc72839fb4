// `duplicity --version` starts Python and costs 0.1–0.3 s on every command. The answer only
// changes when the program does, so it is kept in the cache directory, keyed by the identity of
// the file that runs (device, inode, size, mtime): an upgrade replaces the file and the key.
import { readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { BackupFailedError } from '../errors.js';
import { writeFileAtomic } from '../system/atomic-write.js';
import { findProgram } from '../system/find-program.js';
import { type CommandRunner, quickDeadline } from '../system/run-command.js';
import { type DuplicityVersion, parseDuplicityVersion } from './version.js';

const entrySchema = z.object({ identity: z.string(), output: z.string().max(200) });

export function versionCachePath(cacheDir: string): string {
  return join(cacheDir, 'duplicity-version.json');
}

/**
 * The version of the duplicity on PATH. `cacheDir` is the agent's cache: read and written only by
 * the backup user itself; root, which must not take what backup wrote as instructions, passes null.
 */
export async function duplicityVersion(runner: CommandRunner, cacheDir: string | null): Promise<DuplicityVersion> {
  const identity = cacheDir === null ? null : await programIdentity();
  const file = cacheDir === null ? null : versionCachePath(cacheDir);
  let output: string | undefined;
  if (file !== null && identity !== null) {
    const cached = entrySchema.safeParse(await readJson(file));
    if (cached.success && cached.data.identity === identity) output = cached.data.output;
  }
  if (output === undefined) {
    output = (
      await runner.run({
        argv: ['duplicity', '--version'],
        stdout: 'capture',
        deadline: quickDeadline('duplicity --version'),
      })
    ).stdout;
  }
  const version = parseDuplicityVersion(output);
  if (version === null) {
    throw new BackupFailedError(
      `cannot tell the duplicity version from "${output.trim()}"`,
      'install duplicity 0.8 or newer',
    );
  }
  if (file !== null && identity !== null) {
    // A cache that cannot be written costs the next command 0.2 s, nothing more.
    await writeFileAtomic(file, JSON.stringify({ identity, output: output.trim() })).catch(() => undefined);
  }
  return version;
}

async function programIdentity(): Promise<string | null> {
  const path = await findProgram('duplicity');
  if (path === undefined) return null;
  try {
    const real = await realpath(path);
    const info = await stat(real);
    return `${real}:${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return null;
  }
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
