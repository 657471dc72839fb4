// MySQL/MariaDB: one plain SQL file per database, restored through the sandboxed client.
import { AgentError, errorMessage } from '../../errors.js';
import type { Engine } from '../engine.js';
import { assessCoverage } from './coverage.js';
import { MYSQL_KEYS, type MysqlSection } from './keys.js';
import { mysqlPrograms } from './programs.js';
import { proveSqlDump, MysqlRestorer } from './restore.js';
import { ROOT_INVENTORY_VARIABLE, handedOverInventory, listObjectsAsRoot } from './root-inventory.js';
import { MysqlSource, dumpFile } from './source.js';

export const mysqlEngine: Engine<MysqlSection> = {
  kind: 'mysql',
  title: 'MySQL/MariaDB',
  keys: MYSQL_KEYS,
  async programs() {
    const { dump, client } = await mysqlPrograms();
    return [dump, client].map((program) => ({ program, package: 'mariadb-client' }));
  },
  source: (section) => MysqlSource.create(section),
  // Also after a failed access check: a view without SHOW VIEW fails it, and the grant may lack more.
  async checks(_section, source, runner) {
    if (!(source instanceof MysqlSource)) return [];
    try {
      const coverage = assessCoverage(await source.coverage(runner), handedOverInventory(process.env));
      return [{ name: 'mysql objects', ...coverage }];
    } catch (error) {
      const hint = error instanceof AgentError ? error.hint : undefined;
      return [{ name: 'mysql objects', status: 'fail', detail: errorMessage(error), hint }];
    }
  },
  async prepareCheckAsRoot(section, runner) {
    process.env[ROOT_INVENTORY_VARIABLE] = JSON.stringify(await listObjectsAsRoot(runner, section));
  },
  async proveDumps(dir, databases) {
    for (const database of databases) await proveSqlDump(dumpFile(dir, database));
    return `${databases.map((database) => `${database}.sql`).join(', ')} complete (mysqldump trailer present)`;
  },
  restorer: (section, tools) => MysqlRestorer.create(section, tools),
};
