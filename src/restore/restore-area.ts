// Where a download lands before it is checked and used. Root's restore area (agent.restore_dir) is
// root's own directory: the backup user may write only into the one container a running download
// gets, and that container is taken back from it (every file root's, nothing but plain files and
// directories) before root reads a byte. A download by the backup user itself (verify without
// --import) has no such boundary and uses the agent's scratch space.
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { ensureWritableDirectory } from '../system/directories.js';
import type { SystemUser } from '../system/privileges.js';
import { ensureRootDirectory, removeTree, takeTree } from '../system/root-fs.js';

export interface DownloadPlace {
  /** Where the checked set is, once sealed. */
  readonly dir: string;
  /** Who runs duplicity: the backup user when root restores; undefined for the agent user itself. */
  readonly runAs: SystemUser | undefined;
  /** Clears what an earlier download left and returns the path duplicity creates and fills. */
  prepare(): Promise<string>;
  /** After duplicity has exited: makes the download safe to read and moves it to `dir`. */
  seal(): Promise<void>;
  /** Removes the download and whatever a failed one left. */
  remove(): Promise<void>;
}

/** agent.restore_dir, made (or proven) root's; `safety` holds the copies taken before a restore. */
export async function openRestoreArea(config: Config): Promise<{ readonly root: string; readonly safetyDir: string }> {
  const root = config.agent.restore_dir;
  // 0711: the backup user can reach the container it is given by name, and list nothing.
  await ensureRootDirectory(root, 0o711, 'agent.restore_dir');
  const safetyDir = join(root, 'safety');
  await ensureRootDirectory(safetyDir, 0o700, 'agent.restore_dir');
  return { root, safetyDir };
}

/** A download into root's restore area as `<root>/<name>`, written by `user` and then taken from it. */
export function rootDownloadPlace(root: string, name: string, user: SystemUser): DownloadPlace {
  const dir = join(root, name);
  const container = join(root, `.download-${name}`);
  const into = join(container, name);
  return {
    dir,
    runAs: user,
    async prepare() {
      await removeTree(dir);
      await removeTree(container);
      await mkdir(container, { mode: 0o700 });
      const handle = await open(container, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        await handle.chown(user.uid, user.gid);
      } finally {
        await handle.close();
      }
      return into;
    },
    async seal() {
      await takeTree(container, true);
      await rename(into, dir);
      await rmdir(container);
    },
    async remove() {
      await removeTree(container);
      await removeTree(dir);
    },
  };
}

/** A download by the agent user into its own scratch space. */
export function ownDownloadPlace(config: Config, name: string): DownloadPlace {
  const scratch = join(config.agent.cache_dir, 'tmp');
  const dir = join(scratch, name);
  return {
    dir,
    runAs: undefined,
    async prepare() {
      await ensureWritableDirectory(scratch, 'agent.cache_dir');
      await rm(dir, { recursive: true, force: true });
      return dir;
    },
    seal: () => Promise.resolve(),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
