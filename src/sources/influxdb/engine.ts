// InfluxDB 1.x: `influxd backup -portable` per database, restored with `influxd restore -portable`.
import type { Engine } from '../engine.js';
import { INFLUXDB_KEYS, type InfluxdbSection } from './keys.js';
import { InfluxRestorer, provePortableBackups } from './restore.js';
import { InfluxdbSource } from './source.js';

export const influxdbEngine: Engine<InfluxdbSection> = {
  kind: 'influxdb',
  title: 'InfluxDB',
  keys: INFLUXDB_KEYS,
  programs: () => Promise.resolve([{ program: 'influxd', package: 'influxdb' }]),
  source: (section) => Promise.resolve(new InfluxdbSource(section)),
  proveDumps: provePortableBackups,
  restorer: (section, tools) => Promise.resolve(new InfluxRestorer(section, tools)),
};
