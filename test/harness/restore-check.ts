// Loads what plain duplicity restored into scratch databases, so a test can compare fingerprints
// with the live data. Nothing here uses the agent.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { InfluxDb } from './influxdb.js';
import type { MariaDb } from './mariadb.js';

let counter = 0;

/** Imports <dir>/<database>.sql into a new database and returns that database's fingerprint. */
export async function fingerprintOfSqlDump(mariadb: MariaDb, dir: string, database: string): Promise<string> {
  const scratch = `${database}_check_${++counter}`;
  await mariadb.sql(`CREATE DATABASE ${scratch}`);
  try {
    await mariadb.importFile(scratch, join(dir, `${database}.sql`));
    return await mariadb.fingerprint(scratch);
  } finally {
    await mariadb.sql(`DROP DATABASE ${scratch}`);
  }
}

/** Restores <dir>/<database> with influxd restore -portable -newdb and returns that database's fingerprint. */
export async function fingerprintOfInfluxBackup(influx: InfluxDb, dir: string, database: string): Promise<string> {
  const scratch = `${database}_check_${++counter}`;
  await execa(
    'influxd',
    ['restore', '-portable', '-host', influx.rpcAddress, '-db', database, '-newdb', scratch, join(dir, database)],
    { stdin: 'ignore' },
  );
  try {
    return await influx.fingerprint(scratch);
  } finally {
    await influx.dropDatabase(scratch);
  }
}

export interface StagedManifest {
  readonly source: string;
  readonly files: readonly { name: string; size: number; sha256: string }[];
}

export async function readStagedManifest(dir: string): Promise<StagedManifest> {
  return JSON.parse(await readFile(join(dir, 'MANIFEST.json'), 'utf8')) as StagedManifest;
}
