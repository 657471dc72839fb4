// influxd backup/restore command lines (InfluxDB 1.x, portable format).
import type { Argv } from '../source.js';

export function backupCommand(host: string, database: string, dir: string): Argv {
  return ['influxd', 'backup', '-portable', '-database', database, '-host', host, dir];
}

/** Without -database influxd backs up only the metastore: a cheap proof that the RPC port answers. */
export function metastoreBackupCommand(host: string, dir: string): Argv {
  return ['influxd', 'backup', '-portable', '-host', host, dir];
}

export function versionCommand(): Argv {
  return ['influxd', 'version'];
}
