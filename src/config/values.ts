// Parsers for the value types of backup-agent.ini. Each takes the raw string from the file and
// says, when it fails, what is allowed: the loader prefixes the file, section.key and (unless the
// key can hold a secret) the value.
import { Cron } from 'croner';
import { z } from 'zod';
import type { SpaceReserve } from '../system/free-space.js';
import { readRsyncUrl } from '../remote/rsync-url.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

function durationMs(text: string): number {
  return Number(text.slice(0, -1)) * UNIT_MS[text.slice(-1) as keyof typeof UNIT_MS];
}

export const duration = z
  .string()
  .regex(/^\d+[smhdw]$/, 'expected a whole number and a unit (s, m, h, d or w), e.g. 8d or 36h')
  .transform(durationMs);

/** A duration where 0 needs no unit: "spread = 0" reads as "none". */
export const durationOrZero = z
  .string()
  .regex(/^(0|\d+[smhdw])$/, 'expected 0, or a whole number and a unit (s, m, h, d or w), e.g. 2h or 90m')
  .transform((text) => (text === '0' ? 0 : durationMs(text)));

const SIZE_UNITS = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 } as const;
const SIZE = /^(\d+)([KMGT]?)$/;

function bytesOf(match: RegExpExecArray): number {
  return Number(match[1]) * SIZE_UNITS[(match[2] ?? '') as keyof typeof SIZE_UNITS];
}

/** A size in bytes with an optional binary unit: 512K, 1M, 20G. */
export const size = z
  .string()
  .regex(SIZE, 'expected a whole number with an optional unit (K, M, G or T, powers of 1024), e.g. 1M or 20G')
  .transform((text) => bytesOf(SIZE.exec(text) as RegExpExecArray));

/** Free space to keep: an absolute size (20G) or a share of the filesystem (10%). */
export const spaceReserve = z.string().transform((text, context): SpaceReserve => {
  const share = /^(\d{1,2})%$/.exec(text);
  if (share) return { percent: Number(share[1]) };
  const absolute = SIZE.exec(text);
  if (absolute) return { bytes: bytesOf(absolute) };
  context.addIssue({
    code: 'custom',
    message: 'expected a share of the filesystem (0% to 99%) or a size, e.g. 10% or 20G',
  });
  return z.NEVER;
});

export const boolean = z
  .string()
  .refine((text) => /^(true|false|yes|no|on|off|1|0)$/i.test(text), 'expected true or false')
  .transform((text) => /^(true|yes|on|1)$/i.test(text));

/** `why` explains a bound that is there for safety, so the operator does not just lower it. */
export function integer(min: number, max: number, why?: string) {
  const allowed = `expected a whole number from ${min} to ${max}${why === undefined ? '' : `: ${why}`}`;
  return z
    .string()
    .regex(/^\d+$/, allowed)
    .transform(Number)
    .refine((n) => n >= min && n <= max, allowed);
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string()
    .refine((text) => values.includes(text), `must be one of: ${values.join(', ')}`)
    .transform((text) => text as T[number]);
}

export const absolutePath = z
  .string()
  .refine((text) => text.startsWith('/') && !/\s/.test(text), 'expected an absolute path without spaces');

/** Empty means "use the built-in default location", decided where the value is used. */
export const optionalAbsolutePath = z
  .string()
  .refine((text) => text === '' || (text.startsWith('/') && !/\s/.test(text)), 'expected empty or an absolute path');

/** Why a value that becomes a command-line argument may not start with "-". */
const NOT_AN_OPTION = 'must not start with "-": the program it is passed to would read it as an option';

/** Database and service names become arguments of mariadb-dump, influxd and systemctl. */
export function nameList(what: string) {
  return z
    .string()
    .transform((text) => text.split(/[\s,]+/).filter((name) => name !== ''))
    .refine(
      (names) => names.every((name) => /^[A-Za-z0-9_$-]{1,64}$/.test(name)),
      `expected ${what} names separated by commas or spaces (letters, digits, _ $ -)`,
    )
    .superRefine((names, context) => {
      for (const name of names.filter((candidate) => candidate.startsWith('-'))) {
        context.addIssue({ code: 'custom', message: `${what} name ${name} ${NOT_AN_OPTION}` });
      }
    });
}

/** croner's own default also accepts a 7th (year) field; the daemon's schedule and this check must agree. */
export const CRON_MODE = '5-or-6-parts';

export const cronExpression = z.string().refine((text) => {
  try {
    new Cron(text, { paused: true, mode: CRON_MODE });
    return true;
  } catch {
    return false;
  }
}, 'expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. 15 23 * * *, optionally preceded by a seconds field');

export const timeZone = z.string().refine((text) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: text });
    return true;
  } catch {
    return false;
  }
}, 'expected an IANA time zone such as UTC or Europe/Tallinn');

export const rsyncUrl = z.string().transform((text, context) => {
  const reading = readRsyncUrl(text);
  if ('problem' in reading) {
    context.addIssue({ code: 'custom', message: reading.problem });
    return z.NEVER;
  }
  return reading.url;
});

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
/** agent.full_day: a weekday, or auto for one chosen per host from its identity (history/spread.ts). */
export const FULL_DAYS = [...WEEKDAYS, 'auto'] as const;

/** influxd's -host argument. */
export const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8088')
  .refine((text) => !text.startsWith('-'), `the host ${NOT_AN_OPTION}`);

export const httpUrl = z
  .string()
  .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/?$/, 'expected http://host:port, e.g. http://127.0.0.1:8086')
  // Not an argument today (node's fetch reads it), but a host name never starts with "-" and a
  // later tool (curl, influx) would take it as one.
  .refine((text) => !/^https?:\/\/-/.test(text), `the host ${NOT_AN_OPTION}`)
  .transform((text) => text.replace(/\/$/, ''));

export const gpgKeyId = z
  .string()
  .refine((text) => text === '' || /^(0x)?[0-9A-Fa-f]{8,40}$/.test(text), 'expected a key id or fingerprint in hex');

/** HH:MM on the 24-hour clock, or empty for "not set". */
export const optionalTimeOfDay = z
  .string()
  .regex(/^(|([01]\d|2[0-3]):[0-5]\d)$/, 'expected a time of day as HH:MM (24-hour clock), or empty')
  .transform((text) => (text === '' ? null : text));

/** Comma- or space-separated mail addresses; empty means no mail. */
export const emailList = z
  .string()
  .transform((text) => text.split(/[\s,]+/).filter((address) => address !== ''))
  .refine(
    (addresses) => addresses.every((address) => /^[^\s@<>]+@[^\s@<>]+$/.test(address)),
    'expected mail addresses (user@host) separated by commas or spaces',
  );

/** One sender address; %H stands for the host name. */
export const emailAddress = z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, 'expected a mail address, e.g. backup-agent@%H');

export interface SmtpUrl {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** Login name; the password comes from a file, never from the URL. */
  readonly user: string | null;
}

export const smtpUrl = z.string().transform((text, context) => {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url !== undefined && url.password !== '') {
    // The config file is readable by more people and tools than a 0600 secret file.
    context.addIssue({
      code: 'custom',
      message: 'a password in the URL is not allowed: put the password in notify.smtp_password_file',
    });
    return z.NEVER;
  }
  if (
    url === undefined ||
    !['smtp:', 'smtps:'].includes(url.protocol) ||
    url.hostname === '' ||
    !/^\/?$/.test(url.pathname)
  ) {
    context.addIssue({ code: 'custom', message: 'expected smtp://host[:port] or smtps://user@host[:port]' });
    return z.NEVER;
  }
  const secure = url.protocol === 'smtps:';
  return {
    secure,
    host: url.hostname,
    port: url.port === '' ? (secure ? 465 : 25) : Number(url.port),
    user: url.username === '' ? null : decodeURIComponent(url.username),
  } satisfies SmtpUrl;
});

/** notify.ping_url: where the dead-man's pings go, and which of the two protocols they speak. */
export interface PingUrl {
  readonly href: string;
  /** An Uptime Kuma push monitor (its path ends in /api/push/<token>); anything else is a healthchecks check. */
  readonly service: 'healthchecks' | 'uptime-kuma';
}

const UPTIME_KUMA_PUSH_PATH = /\/api\/push\/[^/]+$/;

/** Empty means no pings. */
export const pingUrl = z.string().transform((text, context): PingUrl | null => {
  if (text === '') return null;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || !['http:', 'https:'].includes(url.protocol) || url.hostname === '' || url.pathname === '/') {
    context.addIssue({
      code: 'custom',
      message:
        'expected the http(s) URL of one check: https://hc-ping.com/<uuid> (healthchecks) or https://<host>/api/push/<token> (Uptime Kuma push monitor)',
    });
    return z.NEVER;
  }
  if (url.username !== '' || url.password !== '') {
    // node's fetch refuses such a URL; the check's own token is the secret that identifies it.
    context.addIssue({ code: 'custom', message: 'a user or password in the URL is not allowed' });
    return z.NEVER;
  }
  url.hash = '';
  return { href: url.href, service: UPTIME_KUMA_PUSH_PATH.test(url.pathname) ? 'uptime-kuma' : 'healthchecks' };
});
