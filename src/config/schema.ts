// Every key of backup-agent.ini: its parser, default and one-line documentation. The example
// file, the README table and the loader all come from this table, so they cannot disagree.
import type { z } from 'zod';
import {
  WEEKDAYS,
  absolutePath,
  boolean,
  cronExpression,
  duration,
  emailAddress,
  emailList,
  gpgKeyId,
  hostPort,
  httpUrl,
  integer,
  nameList,
  oneOf,
  optionalAbsolutePath,
  optionalTimeOfDay,
  rsyncUrl,
  smtpUrl,
  timeZone,
} from './values.js';

export interface KeySpec<T> {
  readonly schema: z.ZodType<T, string>;
  /** Raw text used when the key is absent; null means the key must be set. */
  readonly default: string | null;
  readonly doc: string;
  /** Shown in the example file instead of an empty default. */
  readonly example?: string;
}

function key<T>(schema: z.ZodType<T, string>, defaultText: string | null, doc: string, example?: string): KeySpec<T> {
  return example === undefined ? { schema, default: defaultText, doc } : { schema, default: defaultText, doc, example };
}

export const CONFIG_KEYS = {
  agent: {
    schedule: key(
      cronExpression,
      '15 23 * * *',
      'When the daemon runs a backup (cron: 5 fields, or 6 with seconds first), evaluated in `timezone`.',
    ),
    timezone: key(timeZone, 'UTC', 'Time zone of `schedule` and `full_day`.'),
    full_day: key(oneOf(WEEKDAYS), 'sun', 'Weekday of the weekly full backup; other days are incremental.'),
    max_full_age: key(duration, '8d', 'A full backup is forced when the newest full on the target is older than this.'),
    keep_full: key(
      integer(1, 1000),
      '4',
      'Full chains kept on the target; older chains are removed after a successful full.',
    ),
    staging_dir: key(
      absolutePath,
      '/var/lib/backup-agent/staging',
      'Where dumps are written before upload; one subdirectory per source.',
    ),
    cache_dir: key(
      absolutePath,
      '/var/cache/backup-agent',
      "duplicity's --archive-dir (signatures of the chain) and the run lock.",
    ),
    restore_dir: key(
      absolutePath,
      '/var/lib/backup-agent/restore',
      'Where restore and verify download backups (one subdirectory per source) and keep safety dumps.',
    ),
    catch_up: key(
      boolean,
      'true',
      'daemon: when a scheduled run was missed while it was down (or there is no state file yet), run once soon after start.',
    ),
    deadline: key(
      optionalTimeOfDay,
      '01:00',
      'daemon: a scheduled run must have succeeded by this time (HH:MM in `timezone`) after it started; empty: no deadline.',
    ),
    rpo: key(duration, '26h', "daemon: alert when a source's newest successful backup is older than this."),
    state_file: key(
      absolutePath,
      '/var/lib/backup-agent/state.json',
      'last run and last success per source, of the daemon and of manual runs; read by `status`, the SLA watch and catch-up after a restart.',
    ),
  },
  target: {
    url: key(
      rsyncUrl,
      null,
      'Backup target; each source goes to <url>/<source>. `//` after the host means an absolute path.',
      'rsync://backup@backup.example.org/backups',
    ),
    encryption: key(
      oneOf(['symmetric', 'pubkey', 'none'] as const),
      'symmetric',
      'symmetric (passphrase_file), pubkey (encrypt_key) or none (warned on every run).',
    ),
    passphrase_file: key(
      absolutePath,
      '/etc/backup-agent/passphrase',
      'symmetric: file holding the passphrase; owned by the agent user, not readable by others.',
    ),
    encrypt_key: key(
      gpgKeyId,
      '',
      'pubkey: fingerprint of the public key in `gnupg_home` the backups are encrypted to.',
    ),
    gnupg_home: key(
      absolutePath,
      '/var/lib/backup-agent/gnupg',
      'GNUPGHOME for duplicity: public key (pubkey mode) and gpg-agent sockets.',
    ),
    ssh_key: key(
      absolutePath,
      '/etc/backup-agent/id_ed25519',
      'Private ssh key for the target; owned by the agent user, mode 0600.',
    ),
    known_hosts: key(
      absolutePath,
      '/etc/backup-agent/known_hosts',
      "The target's host key (ssh-keyscan output); unknown hosts are refused.",
    ),
    volume_size: key(integer(1, 10_000), '200', "duplicity's --volsize in MB: the size of each uploaded volume."),
  },
  mysql: {
    enabled: key(boolean, 'true', 'Back up MySQL/MariaDB (a missing [mysql] section means false).'),
    databases: key(nameList('database'), '', 'Databases to dump, one file each.', 'agama'),
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
  },
  influxdb: {
    enabled: key(boolean, 'true', 'Back up InfluxDB 1.x (a missing [influxdb] section means false).'),
    databases: key(nameList('database'), '', 'Databases to back up with influxd backup -portable.', 'telegraf'),
    host: key(hostPort, '127.0.0.1:8088', "influxd's RPC address (bind-address in influxdb.conf)."),
    http_url: key(
      httpUrl,
      'http://127.0.0.1:8086',
      "influxd's HTTP API, used by restore and verify to drop and inspect databases.",
    ),
    stop_services: key(
      nameList('systemd service'),
      'telegraf',
      'Services stopped during an InfluxDB restore and started again afterwards (skipped when not installed).',
    ),
  },
  notify: {
    email_to: key(
      emailList,
      '',
      'Who gets alert mails, e.g. ops@example.org (several: comma-separated); empty: no mail.',
    ),
    email_from: key(emailAddress, 'backup-agent@%H', 'Sender of alert mails; %H is the host name.'),
    smtp_url: key(
      smtpUrl,
      'smtp://localhost:25',
      'Mail server: smtp://host[:port] (STARTTLS when offered) or smtps://user@host:465.',
    ),
    smtp_password_file: key(
      optionalAbsolutePath,
      '',
      'File holding the SMTP password for the user in smtp_url; owned by the agent user, not readable by others.',
    ),
    on: key(
      oneOf(['failure', 'always'] as const),
      'failure',
      'failure: mail failures and recoveries; always: also every successful run.',
    ),
  },
  metrics: {
    textfile: key(
      optionalAbsolutePath,
      '',
      'node_exporter textfile collector file written after each run, e.g. /var/lib/prometheus/node-exporter/backup_agent.prom; empty: none.',
    ),
  },
} as const;

type Keys = typeof CONFIG_KEYS;
export type SectionName = keyof Keys;
type SectionValues<S extends SectionName> = {
  readonly [K in keyof Keys[S]]: Keys[S][K] extends KeySpec<infer T> ? T : never;
};

/** The validated configuration: one object per ini section, values parsed to their types. */
export type Config = { readonly [S in SectionName]: SectionValues<S> } & { readonly file: string };

/** Sections a host may leave out entirely; the source is then disabled. */
export const OPTIONAL_SECTIONS: readonly SectionName[] = ['mysql', 'influxdb'];

export function sectionNames(): SectionName[] {
  return Object.keys(CONFIG_KEYS) as SectionName[];
}

export function keySpecs(section: SectionName): [string, KeySpec<unknown>][] {
  return Object.entries(CONFIG_KEYS[section]) as [string, KeySpec<unknown>][];
}
