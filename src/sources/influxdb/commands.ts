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

/** Restores one database from a portable backup; `newName` restores it under another name. */
export function restoreCommand(host: string, database: string, dir: string, newName?: string): Argv {
  return [
    'influxd',
    'restore',
    '-portable',
    '-host',
    host,
    '-db',
    database,
    ...(newName ? ['-newdb', newName] : []),
    dir,
  ];
}
