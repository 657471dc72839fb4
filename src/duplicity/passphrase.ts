// The symmetric passphrase lives in a file only the agent can read; it reaches duplicity through
// the PASSPHRASE environment variable and never appears in argv or in the log.
import { readFile, stat } from 'node:fs/promises';
import { BackupFailedError, errorMessage } from '../errors.js';

export async function readPassphrase(path: string): Promise<string> {
  let text: string;
  let mode: number;
  try {
    mode = (await stat(path)).mode;
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new BackupFailedError(
      `cannot read the passphrase file ${path} (target.passphrase_file): ${errorMessage(error)}`,
      `create it as root: install -m 0640 -o root -g backup /dev/null ${path}, then write a long random passphrase into it and keep a copy off this host`,
    );
  }
  if ((mode & 0o007) !== 0) {
    throw new BackupFailedError(
      `the passphrase file ${path} is accessible to others (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`,
      `run chmod 640 ${path} (owner root, group backup) or chmod 600 (owner backup)`,
    );
  }
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase === '')
    throw new BackupFailedError(`the passphrase file ${path} is empty`, 'write a long random passphrase into it');
  return passphrase;
}
