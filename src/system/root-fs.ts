// How root touches files in places the backup user can also write (the restore area while a
// download runs, the cache, a downloaded set). A path there is input, not an instruction: backup
// may swap any name for a symlink, a FIFO or a hard link at any moment. So root opens files without
// following symlinks and checks them through the descriptor, creates files only when they are new,
// changes ownership through descriptors, and first takes a tree away from backup (top-down, each
// directory made root's before anything inside it is looked at) before reading or deleting in it.
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { BackupFailedError } from '../errors.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

const STICKY = 0o1000;

/** A file or directory that is not what root may safely use. */
export class UnsafePathError extends BackupFailedError {}

/** Opens an existing regular file for reading; a symlink, FIFO, device or hard link is refused. */
export async function openRegularFile(path: string): Promise<FileHandle> {
  // O_NONBLOCK: opening a planted FIFO would otherwise wait forever for a writer.
  const handle = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch((error: unknown) => {
    throw refusedOpen(path, error);
  });
  const info = await handle.stat();
  if (!info.isFile() || info.nlink !== 1) {
    await handle.close();
    throw new UnsafePathError(
      `${path} is not a plain file (${describe(info)}); refusing to read it as root`,
      'something other than backup-agent put it there: inspect it, remove it, and start again',
    );
  }
  return handle;
}

/** Creates a new file; an existing name (file, symlink or anything else) is never opened. */
export async function createNewFile(path: string, mode = 0o600): Promise<FileHandle> {
  return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
}

/**
 * Ensures `path` is a directory that only root can change, creating it (with `mode`) when missing.
 * Every ancestor must be root's and not writable by others (a sticky /tmp is fine): otherwise
 * whoever can write there could swap the directory for another one between two of root's steps.
 */
export async function ensureRootDirectory(path: string, mode: number, key: string): Promise<void> {
  const absolute = resolve(path);
  await checkRootChain(dirname(absolute), key, absolute);
  try {
    await mkdir(absolute, { mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const info = await lstat(absolute);
  if (!info.isDirectory() || info.uid !== 0 || (info.mode & 0o022) !== 0) {
    throw new UnsafePathError(
      `${key} = ${absolute} is not a directory only root can change (${describe(info)})`,
      `as root: mv ${absolute} ${absolute}.suspect, and let backup-agent create it again`,
    );
  }
  const handle = await open(absolute, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

async function checkRootChain(dir: string, key: string, wanted: string): Promise<void> {
  const parts = dir.split(sep).filter((part) => part !== '');
  for (let depth = 0; depth <= parts.length; depth++) {
    const ancestor = sep + parts.slice(0, depth).join(sep);
    const info = await lstat(ancestor);
    const writableByOthers = (info.mode & 0o022) !== 0 && (info.mode & STICKY) === 0;
    if (!info.isDirectory() || info.uid !== 0 || writableByOthers) {
      throw new UnsafePathError(
        `${key} ${wanted} lies under ${ancestor}, which ${info.isDirectory() ? `belongs to uid ${info.uid} or is writable by others` : 'is not a directory'}: root works only in directories that only root can change`,
        `use a directory whose parents are all root's and not writable by others, e.g. /var/lib/backup-agent-restore`,
      );
    }
  }
}

/**
 * Makes every directory of the tree root's (0700), top-down through descriptors, so nothing in it
 * can change under root any more. `claimFiles` also takes the files (root, 0600) and refuses
 * anything that is not a directory or a plain file, naming it: a downloaded set holds nothing else.
 */
export async function takeTree(dir: string, claimFiles: boolean): Promise<void> {
  const handle = await open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK).catch((error: unknown) => {
    throw refusedOpen(dir, error);
  });
  try {
    await handle.chown(0, 0);
    await handle.chmod(0o700);
  } finally {
    await handle.close();
  }
  // The directory is root's now: the names listed below cannot be swapped any more.
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await takeTree(path, claimFiles);
    else if (claimFiles) await takeFile(path);
  }
}

/** takeTree for a directory root was pointed at: its parents must be root's too, or it could be swapped. */
export async function takeDirectory(dir: string, option: string): Promise<void> {
  const absolute = resolve(dir);
  await checkRootChain(dirname(absolute), option, absolute);
  await takeTree(absolute, true);
}

async function takeFile(path: string): Promise<void> {
  const handle = await openRegularFile(path);
  try {
    await handle.chown(0, 0);
    await handle.chmod(0o600);
  } finally {
    await handle.close();
  }
}

/** Removes a tree backup may have written: its directories are made root's first, then deleted. */
export async function removeTree(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (info.isDirectory()) await takeTree(path, false);
  await rm(path, { recursive: true, force: true });
}

function refusedOpen(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO') {
    return new UnsafePathError(
      `${path} is a symbolic link or not what it should be (${code}); refusing to follow it as root`,
      'something other than backup-agent put it there: inspect it, remove it, and start again',
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

function describe(info: {
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isDirectory(): boolean;
  isFile(): boolean;
  uid: number;
  mode: number;
  nlink: number;
}): string {
  const kind = info.isSymbolicLink()
    ? 'a symbolic link'
    : info.isFIFO()
      ? 'a FIFO'
      : info.isDirectory()
        ? 'a directory'
        : info.isFile()
          ? info.nlink > 1
            ? `a file with ${info.nlink} hard links`
            : 'a file'
          : 'a special file';
  return `${kind}, owner uid ${info.uid}, mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')}`;
}
