// One run at a time per host. The lock file names its holder (pid, start time, command) so the
// second run can say who has it; a holder that died (kill -9, reboot) is detected and replaced.
import { chown, link, readFile, unlink, writeFile } from 'node:fs/promises';
import { LockHeldError } from '../errors.js';

interface LockHolder {
  readonly pid: number;
  /** Start time of the process in clock ticks since boot: tells a live holder from a reused pid. */
  readonly processStart: string;
  readonly startedAt: string;
  readonly command: string;
}

export interface RunLock {
  readonly path: string;
  release(): Promise<void>;
}

/** `owner`: root (restore) hands the lock file to the backup user, who owns the cache directory. */
export async function acquireRunLock(
  path: string,
  command: string,
  owner?: { readonly uid: number; readonly gid: number },
): Promise<RunLock> {
  const me: LockHolder = {
    pid: process.pid,
    processStart: await processStart(process.pid),
    startedAt: new Date().toISOString(),
    command,
  };
  const temporary = `${path}.${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(me)}\n`, { mode: 0o644 });
  if (owner !== undefined) await chown(temporary, owner.uid, owner.gid);
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // link() fails if the lock exists: creating it is atomic, unlike check-then-write.
        await link(temporary, path);
        return { path, release: () => releaseIfMine(path) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readHolder(path);
      if (holder && (await isAlive(holder))) {
        throw new LockHeldError(
          `another backup-agent run holds the lock ${path}: pid ${holder.pid}, started ${holder.startedAt} (${holder.command})`,
          'wait for it to finish (systemctl status backup-agent shows what it is doing)',
        );
      }
      await unlink(path).catch(() => undefined);
    }
    throw new LockHeldError(
      `could not take the lock ${path}: it keeps reappearing`,
      'another run is starting at the same moment; try again',
    );
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function releaseIfMine(path: string): Promise<void> {
  const holder = await readHolder(path);
  if (holder?.pid === process.pid) await unlink(path).catch(() => undefined);
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

async function isAlive(holder: LockHolder): Promise<boolean> {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return (await processStart(holder.pid)) === holder.processStart;
}

async function processStart(pid: number): Promise<string> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name in field 2 may contain spaces, so count after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}
