// One run at a time per host, decided by the kernel. The lock is flock(2) on the lock file's open
// file description: it ends with the process that holds it (kill -9, OOM, reboot), and nobody takes
// it from a live holder, whoever that is. A pid heuristic cannot do this: under the unit,
// ProtectProc=invisible and PrivateUsers=yes hide root's restore from the daemon, which took it for
// dead and deleted its lock.
//
// Node has no flock(), so util-linux flock(1) locks the descriptor node hands it as its fd 3. Both
// share one open file description, which stays locked after flock exits, for as long as node keeps
// the descriptor open; node opens files O_CLOEXEC, so no other child inherits it. The file is
// never unlinked: a process that opened it before would lock an inode nobody else opens any more.
//
// The file lives in the backup user's cache directory, where root (restore, verify --import) takes
// the lock too. So it is opened without following a symlink, without waiting on a FIFO, checked
// through the descriptor (a plain file with one link), and handed to backup through the descriptor.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { z } from 'zod';
import { AgentError, LockHeldError, errorMessage } from '../errors.js';

const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/** What the holder writes into the lock file, so that a refused run can name it. */
const holderSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  command: z.string(),
  /** Holds it for a moment only (see acquireBriefRunLock): worth waiting for. */
  brief: z.literal(true).optional(),
});

export type LockHolder = Readonly<z.infer<typeof holderSchema>>;

export interface RunLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Someone else holds the lock; the message and `activity` name the holder. */
export class LockBusyError extends LockHeldError {
  /** What the daemon logs for a skipped slot: "restore by pid 812 in progress, started … (…)". */
  readonly activity: string;

  constructor(
    path: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder === undefined
        ? `another backup-agent run holds the lock ${path} (it has not written its name yet)`
        : `another backup-agent run holds the lock ${path}: pid ${holder.pid}, started ${holder.startedAt} (${holder.command})`,
      'wait for it to finish (systemctl status backup-agent shows what the daemon is doing)',
    );
    this.activity = describeHolder(holder);
  }
}

/** The lock file cannot be used: not a plain file, or not openable. Retrying does not help. */
export class LockFileError extends AgentError {
  readonly exitCode = 1;
}

/** flock --nonblock answers at once; this deadline is for a flock that does not. */
const FLOCK_DEADLINE_MS = 10_000;
/** flock's exit code when someone else holds the lock (its default, 1, is also some of its errors). */
const HELD_EXIT_CODE = 75;
/** A holder's line is short; a longer file is not one the agent wrote. */
const HOLDER_MAX_BYTES = 4096;
/** How long a run waits for a brief holder; it holds the lock for tens of milliseconds. */
const BRIEF_HOLD_WAIT_MS = 10_000;
/** Tries to open or create the file; a name that keeps changing between the two is someone's game. */
const OPEN_ATTEMPTS = 3;

/**
 * Takes the lock now or throws LockBusyError naming the holder. `owner`: root hands a lock file it
 * creates to the backup user, who owns the cache directory and must be able to lock it later.
 */
export async function acquireRunLock(
  path: string,
  command: string,
  owner?: { readonly uid: number; readonly gid: number },
): Promise<RunLock> {
  try {
    return await acquire(path, command, owner, 0, false);
  } catch (error) {
    if (!(error instanceof LockBusyError) || error.holder?.brief !== true) throw error;
    // A scheduled slot that meets a `list` stopping the gpg-agent must not be skipped for it.
    return acquire(path, command, owner, BRIEF_HOLD_WAIT_MS, false);
  }
}

/**
 * For a moment's work under the run lock (list, check and status stopping the gpg-agent at their
 * end); a run that meets it waits instead of failing. Fails at once when someone else holds it.
 */
export async function acquireBriefRunLock(path: string, command: string): Promise<RunLock> {
  return acquire(path, command, undefined, 0, true);
}

/** For short critical sections (the state file): waits up to `waitMs` for the holder to finish. */
export async function acquireLockWaiting(path: string, command: string, waitMs: number): Promise<RunLock> {
  return acquire(path, command, undefined, waitMs, false);
}

async function acquire(
  path: string,
  command: string,
  owner: { readonly uid: number; readonly gid: number } | undefined,
  waitMs: number,
  brief: boolean,
): Promise<RunLock> {
  const handle = await openLockFile(path, owner);
  try {
    if (!(await flock(handle, path, waitMs))) {
      throw new LockBusyError(path, await readHolder(handle));
    }
    const holder: LockHolder = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      command,
      ...(brief ? { brief: true } : {}),
    };
    await handle.truncate(0);
    await handle.write(`${JSON.stringify(holder)}\n`, 0);
  } catch (error) {
    await handle.close();
    throw error;
  }
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      // Emptied while still locked, so no later reader mistakes a finished run for a live one.
      await handle.truncate(0).catch(() => undefined);
      await handle.close();
    },
  };
}

function describeHolder(holder: LockHolder | undefined): string {
  if (holder === undefined) return 'a run that has not written its name yet is in progress';
  const what = /^backup-agent (\S+)/.exec(holder.command)?.[1] ?? holder.command;
  const detail = what === holder.command ? '' : ` (${holder.command})`;
  return `${what} by pid ${holder.pid} in progress, started ${holder.startedAt}${detail}`;
}

async function openLockFile(
  path: string,
  owner: { readonly uid: number; readonly gid: number } | undefined,
): Promise<FileHandle> {
  for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
    // O_NOFOLLOW: a symlink is refused (ELOOP); O_NONBLOCK: a FIFO does not wait for a writer.
    const existing = await open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK).catch(openFailure(path, 'ENOENT'));
    if (existing !== undefined) return checked(existing, path, owner, false);
    // O_EXCL: only a file made right now is handed to the owner, never one found in its place.
    const created = await open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o644).catch(
      openFailure(path, 'EEXIST'),
    );
    if (created !== undefined) return checked(created, path, owner, true);
  }
  throw new LockFileError(
    `cannot open the lock file ${path}: it keeps appearing and disappearing`,
    'something other than backup-agent is changing it: inspect the directory',
  );
}

/** Rejects with a LockFileError, except for `expected`, which resolves undefined (try the other way). */
function openFailure(path: string, expected: string): (error: unknown) => undefined {
  return (error) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === expected) return undefined;
    if (code === 'ELOOP') {
      throw new LockFileError(
        `the lock file ${path} is a symbolic link; refusing to follow it`,
        'backup-agent never makes one: inspect it, remove it, and try again',
      );
    }
    throw new LockFileError(`cannot open the lock file ${path}: ${errorMessage(error)}`, 'check the directory');
  };
}

async function checked(
  handle: FileHandle,
  path: string,
  owner: { readonly uid: number; readonly gid: number } | undefined,
  created: boolean,
): Promise<FileHandle> {
  try {
    const info = await handle.stat();
    const kind = !info.isFile() ? 'not a plain file' : info.nlink !== 1 ? `a file with ${info.nlink} links` : null;
    // Root writes into a file found here only if it is the owner's or its own (one it made and did not hand over).
    const stranger = owner !== undefined && !created && info.uid !== owner.uid && info.uid !== 0;
    if (kind !== null || stranger) {
      throw new LockFileError(
        `the lock file ${path} is ${kind ?? `owned by uid ${info.uid}`}; refusing to use it`,
        'backup-agent never makes such a file: inspect it, remove it, and try again',
      );
    }
    if (owner !== undefined && created) await handle.chown(owner.uid, owner.gid);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** true: this process holds the lock now; false: someone else held it (for `waitMs`). */
function flock(handle: FileHandle, path: string, waitMs: number): Promise<boolean> {
  // No setpriv --pdeathsig as for other children: should the agent die while flock waits, flock
  // gets the lock on a description only it holds any more, and releases it as it exits.
  const how = waitMs > 0 ? ['--wait', String(waitMs / 1000)] : ['--nonblock'];
  const argv = [...how, '--exclusive', '--conflict-exit-code', String(HELD_EXIT_CODE), '3'];
  return new Promise((resolve, reject) => {
    const child = spawn('flock', argv, {
      stdio: ['ignore', 'ignore', 'pipe', handle.fd],
      timeout: waitMs + FLOCK_DEADLINE_MS,
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-500)));
    child.once('error', (error) =>
      reject(new LockFileError(`cannot lock ${path}: flock: ${error.message}`, 'install util-linux')),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === HELD_EXIT_CODE) resolve(false);
      else {
        const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
        reject(new LockFileError(`cannot lock ${path}: flock failed with ${how}: ${stderr.trim()}`));
      }
    });
  });
}

/** Read through the descriptor that was refused the lock: the same file, no path followed again. */
async function readHolder(handle: FileHandle): Promise<LockHolder | undefined> {
  const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(HOLDER_MAX_BYTES), position: 0 });
  try {
    return holderSchema.parse(JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')));
  } catch {
    // Empty (a holder that has just taken it) or not the agent's: unnamed.
    return undefined;
  }
}
