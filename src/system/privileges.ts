// The agent works as Debian's `backup` user so that nothing it writes (staging, cache) is owned by
// root. Started as root, it becomes `backup` for good before touching any file.
import { readFile } from 'node:fs/promises';
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

/** Root becomes the backup user; anyone else stays who they are. */
export async function becomeAgentUser(): Promise<void> {
  if (!isRoot()) return;
  const user = await agentUser();
  // Node has process.initgroups on POSIX; @types/node does not declare it.
  const { initgroups, setgid, setuid } = process as NodeJS.Process & {
    initgroups?: (user: string, group: number) => void;
  };
  if (!initgroups || !setgid || !setuid) throw new MissingUserError('this platform cannot change the process user');
  // Groups first, while still root: the groups of `backup` replace every group root had.
  initgroups(user.name, user.gid);
  setgid(user.gid);
  setuid(user.uid);
  process.env['HOME'] = user.home;
  process.env['USER'] = user.name;
  process.env['LOGNAME'] = user.name;
}

export function requireRoot(command: string): void {
  if (!isRoot())
    throw new NotRootError(`${command} must run as root`, `run it with sudo: sudo backup-agent ${command}`);
}
