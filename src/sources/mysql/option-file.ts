// The MySQL credentials file. The client itself reads a 0644 file without a word, so the agent
// refuses it the way ssh refuses a readable private key.
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BackupFailedError } from '../../errors.js';

/** The configured file, or the agent user's own ~/.my.cnf. */
export function optionFilePath(configured: string): string {
  return configured === '' ? join(homedir(), '.my.cnf') : configured;
}

export async function checkOptionFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new BackupFailedError(
      `MySQL option file ${path} does not exist`,
      `create it with a [client] section (user = ..., password = ..., socket = ...), owned by the agent user, and run chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new BackupFailedError(
      `MySQL option file ${path} is owned by uid ${info.uid}, not by the agent user (uid ${uid})`,
      `run chown backup: ${path}`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new BackupFailedError(
      `MySQL option file ${path} is readable or writable by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use a password others can read`,
      `run chmod 600 ${path}`,
    );
  }
}
