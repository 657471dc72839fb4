// The agent works as Debian's `backup` user so that nothing it writes (staging, cache) is owned by
// root. Started as root, it runs itself again as `backup` before touching any file.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { AgentError, NotRootError } from '../errors.js';
import { CHILD_PATH } from './child-path.js';
import { unreadableBy } from './readable-by.js';

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
  await requireAgentReadable(user);
  // Root's cwd is often one backup cannot enter (/root, where sudo -i and Ansible's ssh start):
  // every spawn of the agent would then fail to chdir there. Relative paths in argv could not be
  // read from there by backup anyway.
  const cwd = (await unreadableBy(user, process.cwd())) === undefined ? process.cwd() : '/';
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
    {
      // Not root's terminal as a controlling one: in a session of its own, a process of the backup
      // uid cannot push keystrokes into root's shell with TIOCSTI. It never reads stdin.
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: agentEnvironment(user),
      cwd,
    },
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

/** The agent's code is not readable by the user it must run as (EX_CONFIG: fixed by where it lies). */
class UnreadableAgentError extends AgentError {
  readonly exitCode = 78;
}

/** Root's commands that run again as backup call this before any other work, so it is the first word. */
export async function requireAgentReadable(user?: SystemUser): Promise<void> {
  const agent = user ?? (await agentUser());
  const script = process.argv[1] ?? '';
  const blocker = await unreadableBy(agent, script);
  if (blocker === undefined) return;
  const mode = blocker.mode.toString(8).padStart(4, '0');
  throw new UnreadableAgentError(
    `${script} cannot be read by the ${agent.name} user, which this command runs as (${blocker.path} is mode ${mode}, owner uid ${blocker.uid}); fix: put the clone where ${agent.name} can read it (e.g. /opt or /srv), install the .deb, or use scripts/demo.sh and scripts/test.sh, which run a readable copy`,
  );
}

/**
 * What of root's environment the agent needs as backup; HOME, PATH and the rest are built here.
 * systemd's notify variables stay: a daemon root started under a unit still reports to it.
 */
const KEPT_VARIABLES =
  /^(BACKUP_AGENT_[A-Z_]+|LANG|LC_[A-Z]+|TZ|TERM|NO_COLOR|NODE_EXTRA_CA_CERTS|JOURNAL_STREAM|NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)$/;

function agentEnvironment(user: SystemUser): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(([name]) => KEPT_VARIABLES.test(name));
  return { ...Object.fromEntries(kept), PATH: CHILD_PATH, HOME: user.home, USER: user.name, LOGNAME: user.name };
}

export function requireRoot(command: string): void {
  if (!isRoot())
    throw new NotRootError(`${command} must run as root`, `run it with sudo: sudo backup-agent ${command}`);
}
