// The .pgpass file of a login with a password. libpq itself ignores a group- or world-readable
// passfile with a warning and then fails with "no password supplied"; the agent names the fix
// instead, and also refuses a file another user owns (and so could change).
import { stat } from 'node:fs/promises';
import { BackupFailedError } from '../../errors.js';

export async function checkPassfile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new BackupFailedError(
      `PostgreSQL passfile ${path} does not exist`,
      `create it with a line host:port:database:user:password (* for any), owned by the agent user, and run chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new BackupFailedError(
      `PostgreSQL passfile ${path} is owned by uid ${info.uid}, not by the agent user (uid ${uid})`,
      `run chown backup: ${path}`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new BackupFailedError(
      `PostgreSQL passfile ${path} is readable or writable by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use a password others can read`,
      `run chmod 600 ${path}`,
    );
  }
}
