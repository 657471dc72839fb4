// duplicity's rsync-over-ssh URL: rsync://user@host[:port]/relative/path or rsync://user@host[:port]//absolute/path.

export interface RsyncUrl {
  readonly user: string;
  readonly host: string;
  readonly port: number | null;
  /** Path as the remote side sees it: relative to the login's home, or absolute when it starts with '/'. */
  readonly path: string;
}

export type RsyncUrlReading = { readonly url: RsyncUrl } | { readonly problem: string };

const FORM =
  'expected rsync://user@host[:port]/path (relative to the login home) or rsync://user@host[:port]//absolute/path';

const RSYNC_URL =
  /^rsync:\/\/([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?\/(\/?[A-Za-z0-9._~/-]+?)\/*$/;

/**
 * The user and host end up as arguments of ssh and rsync (duplicity builds `rsync -e ssh user@host:path`):
 * one starting with "-" would be read as an option there, e.g. -oProxyCommand runs a command.
 */
export function readRsyncUrl(text: string): RsyncUrlReading {
  const match = RSYNC_URL.exec(text);
  if (!match) return { problem: FORM };
  const [, user, host, port, path] = match;
  if (user === undefined || host === undefined || path === undefined) return { problem: FORM };
  for (const [part, value] of [
    ['user', user],
    ['host', host],
    ['path', path],
  ] as const) {
    if (value.startsWith('-')) {
      return { problem: `the ${part} must not start with "-": ssh and rsync would read it as an option` };
    }
  }
  const portNumber = port === undefined ? null : Number(port);
  if (portNumber !== null && (portNumber < 1 || portNumber > 65535)) return { problem: FORM };
  return { url: { user, host, port: portNumber, path } };
}

/** Returns the parsed URL, or null when it is not of the one form duplicity's rsync backend uses over ssh. */
export function parseRsyncUrl(text: string): RsyncUrl | null {
  const reading = readRsyncUrl(text);
  return 'url' in reading ? reading.url : null;
}

/** The URL of one source's directory on the target: <url>/<source>. */
export function childUrl(url: RsyncUrl, child: string): RsyncUrl {
  return { ...url, path: `${url.path}/${child}` };
}

export function formatRsyncUrl(url: RsyncUrl): string {
  const port = url.port === null ? '' : `:${url.port}`;
  return `rsync://${url.user}@${url.host}${port}/${url.path}`;
}

/** rsync's own remote spec (user@host:path), used when the agent talks to the target without duplicity. */
export function rsyncRemoteSpec(url: RsyncUrl, trailingSlash: boolean): string {
  return `${url.user}@${url.host}:${url.path}${trailingSlash ? '/' : ''}`;
}
