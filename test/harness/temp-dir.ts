import { chmod, lchown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface UidGid {
  uid: number;
  gid: number;
}

let backupIds: UidGid | undefined;

// The agent drops privileges to Debian's `backup` system user, so every file it
// must read or write in a test has to belong to that user.
export async function backupUser(): Promise<UidGid> {
  if (backupIds === undefined) {
    const uid = Number((await execa('id', ['-u', 'backup'])).stdout.trim());
    const gid = Number((await execa('id', ['-g', 'backup'])).stdout.trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
      throw new Error(`cannot resolve uid/gid of user backup (got ${uid}/${gid})`);
    }
    backupIds = { uid, gid };
  }
  return backupIds;
}

/** setpriv's arguments to run argv as backup, as User=backup or cron would; setpriv execs, so the pid is argv's. */
export async function asBackupUser(argv: readonly string[]): Promise<string[]> {
  const { uid, gid } = await backupUser();
  return [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', ...argv];
}

// 0755 instead of mkdtemp's 0700: uid 34 must be able to traverse into it.
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

// lchown so that a symlink inside the tree never redirects ownership elsewhere.
export async function chownToBackup(path: string): Promise<void> {
  const { uid, gid } = await backupUser();
  await chownTree(path, uid, gid);
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const entries = await readdir(path, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOTDIR') return [];
    throw err;
  });
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await lchown(child, uid, gid);
  }
}
