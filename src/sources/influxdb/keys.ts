// The [influxdb] section of backup-agent.ini.
import { type EngineValues, key } from '../../config/schema.js';
import { boolean, hostPort, httpUrl, nameList } from '../../config/values.js';

export const INFLUXDB_KEYS = {
  enabled: key(boolean, 'true', 'Back up InfluxDB 1.x (a missing [influxdb] section means false).'),
  databases: key(nameList('database'), '', 'Databases to back up with influxd backup -portable.', {
    example: 'telegraf',
  }),
  host: key(hostPort, '127.0.0.1:8088', "influxd's RPC address (bind-address in influxdb.conf)."),
  http_url: key(
    httpUrl,
    'http://127.0.0.1:8086',
    "influxd's HTTP API, used by restore and verify to drop and inspect databases.",
    { secret: true },
  ),
  stop_services: key(
    nameList('systemd service'),
    'telegraf',
    'Services stopped during an InfluxDB restore and started again afterwards (skipped when not installed).',
  ),
} as const;

export type InfluxdbSection = EngineValues<typeof INFLUXDB_KEYS>;
