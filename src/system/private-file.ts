// Credentials files (MySQL's option file, PostgreSQL's passfile). Their clients read a 0644 file
// without a word (libpq warns, then fails with "no password supplied"), so the agent refuses one
// the way ssh refuses a readable private key, and one another user owns and so could change.
import { stat } from 'node:fs/promises';
import { BackupFailedError } from '../errors.js';

/** `what` names the file for people ("MySQL option file"); `create` says how to write a new one. */
export async function checkPrivateFile(path: string, what: string, create: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new BackupFailedError(
      `${what} ${path} does not exist`,
      `create it with ${create}, owned by the agent user, and run chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new BackupFailedError(
      `${what} ${path} is owned by uid ${info.uid}, not by the agent user (uid ${uid})`,
      `run chown backup: ${path}`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new BackupFailedError(
      `${what} ${path} is readable or writable by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use a password others can read`,
      `run chmod 600 ${path}`,
    );
  }
}
