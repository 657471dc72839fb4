import { open, rename } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/** Writes the file under a temporary name, syncs it and renames it into place: readers see old or new, never half. */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(temporary, 'w', mode);
  try {
    // open() applies the umask (077 in the agent); a file meant for others (the metrics file) needs
    // its mode set explicitly, before it appears under its real name.
    await handle.chmod(mode);
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
}

/** Makes a rename durable: the directory entry itself must reach the disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
