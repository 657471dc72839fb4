// Which client programs this host has. MariaDB's own (mariadb-dump, mariadb) are real binaries on
// Debian 12 and 13; a host with MySQL's packages has mysqldump and mysql.
import { findProgram } from '../../system/find-program.js';

export interface MysqlPrograms {
  readonly dump: string;
  readonly client: string;
}

export async function mysqlPrograms(): Promise<MysqlPrograms> {
  return {
    dump: (await findProgram('mariadb-dump')) ? 'mariadb-dump' : 'mysqldump',
    client: (await findProgram('mariadb')) ? 'mariadb' : 'mysql',
  };
}
