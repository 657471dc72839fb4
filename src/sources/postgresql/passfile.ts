// The .pgpass file of a login with a password.
import { checkPrivateFile } from '../../system/private-file.js';

export function checkPassfile(path: string): Promise<void> {
  return checkPrivateFile(path, 'PostgreSQL passfile', 'a line host:port:database:user:password (* for any)');
}
