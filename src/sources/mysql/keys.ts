// The [mysql] section of backup-agent.ini.
import { type EngineValues, key } from '../../config/schema.js';
import { boolean, nameList, optionalAbsolutePath } from '../../config/values.js';

export const MYSQL_KEYS = {
  enabled: key(boolean, 'true', 'Back up MySQL/MariaDB (a missing [mysql] section means false).'),
  databases: key(nameList('database'), '', 'Databases to dump, one file each.', { example: 'agama' }),
  defaults_file: key(
    optionalAbsolutePath,
    '',
    "Client option file with user and password; empty: the agent user's ~/.my.cnf.",
  ),
  admin_defaults_file: key(
    optionalAbsolutePath,
    '',
    "Option file for root's restore client; empty: root's defaults (Debian: the local socket, unix_socket auth).",
  ),
} as const;

export type MysqlSection = EngineValues<typeof MYSQL_KEYS>;
