// PostgreSQL: one pg_dump archive (custom format, uncompressed) per database and the roles in
// globals.sql; restored with pg_restore in a session that is no superuser (session-role.ts).
import { join } from 'node:path';
import { BackupFailedError } from '../../errors.js';
import { agentUser, isRoot } from '../../system/privileges.js';
import type { Engine } from '../engine.js';
import { GLOBALS_FILE, archiveFile, globalsComplete, proveDownloadedArchive } from './archive.js';
import { POSTGRESQL_KEYS, type PostgresqlSection } from './keys.js';
import { PostgresqlRestorer } from './restore.js';
import { PostgresqlSource } from './source.js';

const PROGRAMS = ['pg_dump', 'pg_dumpall', 'pg_restore', 'psql'] as const;

export const postgresqlEngine: Engine<PostgresqlSection> = {
  kind: 'postgresql',
  title: 'PostgreSQL',
  keys: POSTGRESQL_KEYS,
  programs: () => Promise.resolve(PROGRAMS.map((program) => ({ program, package: 'postgresql-client' }))),
  source: (section) => Promise.resolve(new PostgresqlSource(section)),
  async proveDumps(dir, databases, tools) {
    // Root (restore, verify --import) has pg_restore parse the downloaded files as the backup user.
    const runAs = isRoot() ? await agentUser() : undefined;
    for (const database of databases) {
      await proveDownloadedArchive(
        tools.runner,
        archiveFile(dir, database),
        database,
        tools.deadline(`reading the dump of ${database}`),
        runAs,
      );
    }
    const globals = join(dir, GLOBALS_FILE);
    const withGlobals = await globalsComplete(globals).catch(() => null);
    if (withGlobals === false) {
      throw new BackupFailedError(
        `${globals} does not end with pg_dumpall's trailer: it is cut short`,
        'nothing was changed; try an older --time (backup-agent list)',
      );
    }
    const files = databases.map((database) => `${database}.dump`).join(', ');
    return `${files} complete (pg_restore read every archive to its end)${withGlobals === true ? ', globals.sql complete' : ''}`;
  },
  restorer: (section, tools) => PostgresqlRestorer.create(section, tools),
};
