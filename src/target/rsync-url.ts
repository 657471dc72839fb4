// duplicity's rsync-over-ssh URL: rsync://user@host[:port]/relative/path or rsync://user@host[:port]//absolute/path.

export interface RsyncUrl {
  readonly user: string;
  readonly host: string;
  readonly port: number | null;
  /** Path as the remote side sees it: relative to the login's home, or absolute when it starts with '/'. */
  readonly path: string;
}

const RSYNC_URL =
  /^rsync:\/\/([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?\/(\/?[A-Za-z0-9._~/-]+?)\/*$/;

/** Returns the parsed URL, or null when it is not of the one form duplicity's rsync backend uses over ssh. */
export function parseRsyncUrl(url: string): RsyncUrl | null {
  const match = RSYNC_URL.exec(url);
  if (!match) return null;
  const [, user, host, port, path] = match;
  if (user === undefined || host === undefined || path === undefined) return null;
  const portNumber = port === undefined ? null : Number(port);
  if (portNumber !== null && (portNumber < 1 || portNumber > 65535)) return null;
  return { user, host, port: portNumber, path };
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
