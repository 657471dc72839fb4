import { access, constants, mkdir } from 'node:fs/promises';
import { BackupFailedError, errorMessage } from '../errors.js';

/** Creates the directory (mode 0700) if needed and proves the agent user can write in it. */
export async function ensureWritableDirectory(path: string, key: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
    await access(path, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new BackupFailedError(
      `${key} = ${path} is not a writable directory for uid ${process.getuid?.() ?? '?'}: ${errorMessage(error)}`,
      `as root: install -d -o backup -g backup -m 0750 ${path}`,
    );
  }
}
