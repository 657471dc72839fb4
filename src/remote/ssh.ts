// How the agent reaches the target over ssh, for duplicity and for its own rsync calls alike.
import type { RsyncUrl } from './rsync-url.js';

export interface SshAccess {
  readonly sshKey: string;
  readonly knownHosts: string;
  /** Directory for the shared connection's socket (ssh's ControlPath). */
  readonly controlDir: string;
}

export function sshOptions(access: SshAccess): string[] {
  return [
    `-oIdentityFile=${access.sshKey}`,
    `-oUserKnownHostsFile=${access.knownHosts}`,
    // A changed or unknown host key is an attack or a misconfiguration: refuse, never prompt.
    '-oStrictHostKeyChecking=yes',
    '-oIdentitiesOnly=yes',
    '-oConnectTimeout=20',
    '-oServerAliveInterval=30',
    '-oServerAliveCountMax=4',
    ...sharedConnection(access.controlDir),
  ];
}

// A unix socket path holds at most 107 bytes, and ssh adds a 17-byte suffix while it creates the
// master socket; %C expands to 40 hex digits.
const SOCKET_PATH_MAX = 107;
const CONTROL_PATH_OVERHEAD = '/ssh-'.length + 40 + 17;

/**
 * duplicity starts one rsync+ssh per file and per listing: one shared connection saves a key
 * exchange each time, and the master closes itself 30 s after its last use. A cache_dir too long
 * for the socket would make every upload fail, so such hosts just do without the sharing.
 */
function sharedConnection(controlDir: string): string[] {
  if (Buffer.byteLength(controlDir) + CONTROL_PATH_OVERHEAD > SOCKET_PATH_MAX) return [];
  return ['-oControlMaster=auto', `-oControlPath=${controlDir}/ssh-%C`, '-oControlPersist=30'];
}

/** Whether ssh shares one connection per target at all (see sharedConnection). */
export function sharesConnection(access: SshAccess): boolean {
  return sharedConnection(access.controlDir).length > 0;
}

/**
 * ssh as duplicity's rsync backend starts it (`ssh -p PORT -oBatchMode=yes <ssh options>`):
 * whatever else talks to the connection master must hash to the same %C (host, port, user).
 */
export function sshCommand(url: RsyncUrl, access: SshAccess): [string, ...string[]] {
  return ['ssh', ...(url.port === null ? [] : ['-p', String(url.port)]), '-oBatchMode=yes', ...sshOptions(access)];
}

/** rsync's -e value. rsync splits it on spaces itself (no shell), so paths must not contain spaces. */
export function rsyncShell(url: RsyncUrl, access: SshAccess): string {
  return sshCommand(url, access).join(' ');
}
