// The agent works as Debian's `backup` user so that nothing it writes (staging, cache) is owned by
// root. Started as root, it runs itself again as `backup` before touching any file.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { AgentError, NotRootError } from '../errors.js';

export const AGENT_USER = 'backup';

export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export async function lookupUser(name: string): Promise<SystemUser | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid, , home] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined && home !== undefined) {
      return { name, uid: Number(uid), gid: Number(gid), home };
    }
  }
  return undefined;
}

class MissingUserError extends AgentError {
  readonly exitCode = 1;
}

export async function agentUser(): Promise<SystemUser> {
  const user = await lookupUser(AGENT_USER);
  if (!user) {
    throw new MissingUserError(
      `the system user ${AGENT_USER} does not exist`,
      `create it with: adduser --system --group --home /var/backups ${AGENT_USER}`,
    );
  }
  return user;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;

/**
 * Root runs this very command again as the backup user and returns its exit status; anyone else
 * gets null and goes on as themselves. A fresh process is needed: node refuses setuid() and
 * initgroups() when libuv uses io_uring (CVE-2024-22017), which Debian 13's node does. setpriv,
 * which already starts every child, sets uid, gid and the backup user's groups before node starts.
 */
export async function rerunAsAgentUser(): Promise<number | null> {
  if (!isRoot()) return null;
  const user = await agentUser();
  const child = spawn(
    'setpriv',
    [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      '--init-groups',
      // The agent under root must not outlive it, like every other child.
      '--pdeathsig',
      'TERM',
      '--',
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, HOME: user.home, USER: user.name, LOGNAME: user.name } },
  );
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const forwarders = FORWARDED_SIGNALS.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of forwarders) process.on(signal, handler);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return code ?? 128 + (signal === null ? 0 : constants.signals[signal]);
  } finally {
    for (const [signal, handler] of forwarders) process.off(signal, handler);
  }
}

export function requireRoot(command: string): void {
  if (!isRoot())
    throw new NotRootError(`${command} must run as root`, `run it with sudo: sudo backup-agent ${command}`);
}
