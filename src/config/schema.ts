// Every key of backup-agent.ini: its parser, default and one-line documentation. The example
// file, the README table and the loader all come from this table, so they cannot disagree.
import type { z } from 'zod';
import {
  FULL_DAYS,
  absolutePath,
  boolean,
  cronExpression,
  duration,
  durationOrZero,
  emailAddress,
  emailList,
  gpgKeyId,
  integer,
  oneOf,
  optionalAbsolutePath,
  optionalTimeOfDay,
  pingUrl,
  rsyncUrl,
  size,
  spaceReserve,
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
  /** The value can carry a password (a URL's user:password@, a ping URL's token): an error names the key but never shows the value. */
  readonly secret?: boolean;
}

export function key<T>(
  schema: z.ZodType<T, string>,
  defaultText: string | null,
  doc: string,
  extras: Pick<KeySpec<T>, 'example' | 'secret'> = {},
): KeySpec<T> {
  return { schema, default: defaultText, doc, ...extras };
}

export const CONFIG_KEYS = {
  agent: {
    schedule: key(
      cronExpression,
      '15 23 * * *',
      'When the daemon runs a backup (cron: 5 fields, or 6 with seconds first), evaluated in `timezone`.',
    ),
    timezone: key(timeZone, 'UTC', 'Time zone of `schedule` and `full_day`.'),
    spread: key(
      durationOrZero,
      '0',
      'Each host runs at `schedule` plus its own stable offset in [0, spread), hashed from its machine-id, host name and `target.url`, so that a fleet does not reach the target in the same minute; catch-up, `deadline` and `next run` use this slot. 0: exactly at `schedule`.',
    ),
    full_day: key(
      oneOf(FULL_DAYS),
      'sun',
      'Weekday of the weekly full backup; other days are incremental. auto: a weekday chosen for this host from its identity (machine-id, host name, `target.url`), so that a fleet spreads its fulls over the week.',
    ),
    max_full_age: key(duration, '8d', 'A full backup is forced when the newest full on the target is older than this.'),
    keep_full: key(
      integer(
        2,
        1000,
        'with 1, each full deletes the previous chain right after its upload, so a few runs of `run --full` in a row leave one chain and no history',
      ),
      '4',
      'Full chains kept on the target (at least 2); older chains are removed after a full only once the new full is verified complete on the target.',
    ),
    staging_dir: key(
      absolutePath,
      '/var/lib/backup-agent/staging',
      'Where dumps are written before upload; one subdirectory per source.',
    ),
    staging_reserve: key(
      spaceReserve,
      '10%',
      "Free space a dump must leave on the staging filesystem (often the database's own), as a share (10%) or a size (20G); the last dump's size is the estimate, and a dump that runs below it is stopped.",
    ),
    cache_dir: key(
      absolutePath,
      '/var/cache/backup-agent',
      "duplicity's --archive-dir (signatures of the chain) and the run lock.",
    ),
    restore_dir: key(
      absolutePath,
      '/var/lib/backup-agent-restore',
      "root's restore area: downloads of restore and verify --import, and the safety dumps; created by root, and every parent must be root's.",
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
  deadlines: {
    dump: key(
      duration,
      '6h',
      "Longest a source's dump may take; then it is stopped and the run fails naming the source and the step.",
    ),
    upload: key(
      duration,
      '1h',
      'Longest an upload may take, plus the dump size at `upload_rate`; then duplicity and its rsync and ssh are stopped (the next run resumes the upload).',
    ),
    upload_rate: key(
      size,
      '1M',
      'Slowest upload speed (bytes per second) the upload deadline allows for, e.g. 1M for 1 MiB/s.',
    ),
    target: key(
      duration,
      '15m',
      'Longest each call on the target may take that moves no dump: reading the chain, listing, creating the directory, retention.',
    ),
    restore: key(
      duration,
      '12h',
      'Longest each step of a restore or verify may take: the download, the safety dump, the import.',
    ),
  },
  target: {
    url: key(
      rsyncUrl,
      null,
      'Backup target; each source goes to <url>/<source>. `//` after the host means an absolute path.',
      { example: 'rsync://backup@backup.example.org/backups', secret: true },
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
    sign_key: key(
      // duplicity's --sign-key takes only these lengths (any other is its rc 10 at the first upload).
      gpgKeyId.refine(
        (text) => text === '' || /^(0x)?([0-9A-Fa-f]{8}|[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$/.test(text),
        'duplicity takes a key id of 8 or 16 hex digits or a 40-digit fingerprint',
      ),
      '',
      'symmetric or pubkey: fingerprint of a secret key without passphrase in `gnupg_home` that signs every volume; restore and verify then refuse volumes not signed by it. Empty: no signing.',
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
    volume_size: key(
      integer(1, 10_000),
      '50',
      "duplicity's --volsize in MB: the size of each uploaded volume. While one uploads, the next is compressed and encrypted, so smaller volumes overlap more: on a 100 Mbit/s link a 507 MiB full took 25 s with 50 against 30 s with 200.",
    ),
    full_compress_level: key(
      integer(0, 9),
      '4',
      "gpg's compression level for the volumes of a full backup: 1 fastest, 9 smallest, 0 none. On SQL dumps 4 took 16 % less CPU than gpg's default 6 for 1 % more bytes; 1 to 3 cost 8 % more bytes. Incrementals keep 6; unencrypted volumes are gzipped by duplicity and ignore it.",
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
      'Mail server: smtp://host[:port] (STARTTLS when offered) or smtps://user@host:465. With a user (a login), TLS is required: smtps, or STARTTLS on smtp; a certificate from a private CA needs `Environment=NODE_EXTRA_CA_CERTS=/path/ca.pem` in the unit.',
      { secret: true },
    ),
    smtp_password_file: key(
      optionalAbsolutePath,
      '',
      'File holding the SMTP password for the user in smtp_url; owned by the agent user, not readable by others.',
    ),
    smtp_cleartext_login: key(
      boolean,
      'false',
      'true: log in to an smtp:// server that offers no STARTTLS, sending the password unencrypted (warned on every mail and by `check`); only for a relay on a trusted network.',
    ),
    on: key(
      oneOf(['failure', 'always'] as const),
      'failure',
      'failure: mail failures and recoveries; always: also every successful run.',
    ),
    ping_url: key(
      pingUrl,
      '',
      "Dead-man's switch: pinged when a backup run (scheduled or `backup-agent run`) starts, succeeds or fails; 5 s timeout, never fails a backup. A healthchecks.io check (https://hc-ping.com/<uuid>, or self-hosted) gets <url>/start, <url>, and <url>/fail with the last log lines; an Uptime Kuma push URL (path …/api/push/<token>) gets, at the end only, status=up, or status=down with msg=<cause>. A private CA: as for smtp_url. Empty: no pings.",
      { secret: true },
    ),
  },
  metrics: {
    textfile: key(
      optionalAbsolutePath,
      '',
      "node_exporter textfile collector file written after each run, e.g. /var/lib/prometheus/node-exporter/backup_agent.prom (Debian's directory: the unit may write it and the package gives the backup user write access there); elsewhere the directory needs ReadWritePaths= in the unit and write access for the backup user (`backup-agent check` names both). Empty: none.",
    ),
  },
} as const;

type Keys = typeof CONFIG_KEYS;
export type SectionName = keyof Keys;
type SectionValues<S extends SectionName> = {
  readonly [K in keyof Keys[S]]: Keys[S][K] extends KeySpec<infer T> ? T : never;
};

/** The two keys every source section has; the loader checks them the same way for every engine. */
export interface EngineSection {
  readonly enabled: boolean;
  readonly databases: readonly string[];
}

/** A source's ini section: its keys, parsers, defaults and docs, owned by its engine in sources/. */
export type SectionKeys = {
  readonly enabled: KeySpec<boolean>;
  readonly databases: KeySpec<readonly string[]>;
} & { readonly [key: string]: KeySpec<unknown> };

/** The values of a source section, typed from its key table. */
export type EngineValues<K extends SectionKeys> = {
  readonly [P in keyof K]: K[P] extends KeySpec<infer T> ? T : never;
};

/** What the loader needs of an engine: the section's name and its keys. */
export interface SourceSection {
  readonly kind: string;
  readonly keys: SectionKeys;
}

/**
 * The validated configuration: one object per ini section, values parsed to their types. The
 * sources' sections are under `sources`, by engine name, in the order of sources/registry.ts.
 */
export type Config = { readonly [S in SectionName]: SectionValues<S> } & {
  readonly sources: Readonly<Record<string, EngineSection>>;
  readonly file: string;
};

export function sectionNames(): SectionName[] {
  return Object.keys(CONFIG_KEYS) as SectionName[];
}

export function keySpecs(keys: Readonly<Record<string, KeySpec<unknown>>>): [string, KeySpec<unknown>][] {
  return Object.entries(keys);
}

/** The sources a run, status, the schedule and metrics cover: every enabled one, in registry order. */
export function enabledSourceKinds(config: Config): string[] {
  return Object.entries(config.sources)
    .filter(([, section]) => section.enabled)
    .map(([kind]) => kind);
}
