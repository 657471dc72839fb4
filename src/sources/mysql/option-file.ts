// The MySQL credentials file: the agent user's own ~/.my.cnf unless mysql.defaults_file names one.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { checkPrivateFile } from '../../system/private-file.js';

/** The configured file, or the agent user's own ~/.my.cnf. */
export function optionFilePath(configured: string): string {
  return configured === '' ? join(homedir(), '.my.cnf') : configured;
}

export function checkOptionFile(path: string): Promise<void> {
  return checkPrivateFile(path, 'MySQL option file', 'a [client] section (user = ..., password = ..., socket = ...)');
}
