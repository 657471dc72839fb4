import { chmod, chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, ExecaError } from 'execa';
import type { ResultPromise } from 'execa';
import { freePort } from './ports.js';
import { backupUser, makeTempDir, removeDir } from './temp-dir.js';

export interface RemoteFile {
  name: string;
  size: number;
}

export interface SshTarget {
  readonly dir: string;
  readonly port: number;
  /** Absolute, exists, empty when returned; backups land here (owned by root). */
  readonly targetDir: string;
  /** duplicity URL; `//` after the port marks an absolute path. */
  readonly url: string;
  /** Private key without passphrase, owned by backup, mode 0600. */
  readonly clientKey: string;
  /** `[127.0.0.1]:PORT <host key>`, owned by backup, mode 0644. */
  readonly knownHosts: string;
  /** The ssh options the agent needs, e.g. for `rsync -e "ssh ..."`. */
  readonly sshArgs: readonly string[];
  listFiles(sub: string): Promise<RemoteFile[]>;
  /**
   * Only with { stallable: true }: while on, every upload into the target (rsync's receiving side)
   * hangs with the connection open, like a link that stopped moving data; listings still work.
   */
  stallUploads(on: boolean): Promise<void>;
  /** How many uploads hang right now. */
  stalledUploads(): Promise<number>;
  /** The server goes away as in a crash: sshd and every session are killed; connections are refused. */
  vanish(): Promise<void>;
  /** sshd starts again on the same port with the same keys. */
  comeBack(): Promise<void>;
  stop(): Promise<void>;
}

export interface SshTargetOptions {
  readonly stallable?: boolean;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

async function tail(path: string, bytes = 4000): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.slice(-bytes);
}

/** The test sshd's configuration: key login as root only, on 127.0.0.1 (of its network namespace). */
export function sshdConfig(dir: string, port: number, forceCommand: string | null): string {
  return `${forceCommand === null ? '' : `ForceCommand ${forceCommand}\n`}Port ${port}
ListenAddress 127.0.0.1
HostKey ${join(dir, 'ssh_host_ed25519_key')}
PidFile ${join(dir, 'sshd.pid')}
AuthorizedKeysFile ${join(dir, 'authorized_keys')}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers root
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
Subsystem sftp internal-sftp
LogLevel VERBOSE
`;
}

async function keygen(path: string, comment: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { stdin: 'ignore' });
  return (await readFile(`${path}.pub`, 'utf8')).trim();
}

// Resolves once something on the port speaks SSH, so "connection refused"
// races cannot reach the first ssh/rsync call.
function readBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000);
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString('latin1').startsWith('SSH-'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

// sshd runs each command through this instead of the login shell. A pull (--sender) and anything
// else pass; an upload hangs while the flag file exists (see stallCommand); its timeout names the
// target, so a test can see its own stalled uploads.
function stallingWrapper(flag: string, port: number): string {
  return `#!/bin/sh
if [ -e '${flag}' ]; then
  case "$SSH_ORIGINAL_COMMAND" in
    "rsync --server --sender"*) ;;
    "rsync --server"*) exec ${stallCommand(port)} >/dev/null ;;
  esac
fi
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
`;
}

/**
 * A stalled upload reads the client's data and never answers; it ends when the session does (its
 * stdin closes), so a stall the agent gave up on does not linger into the next test.
 */
function stallCommand(port: number): string {
  return `timeout 600.${port} cat`;
}

export async function startSshTarget(options: SshTargetOptions = {}): Promise<SshTarget> {
  const dir = await makeTempDir('ssh-target');
  const configPath = join(dir, 'sshd_config');
  const logPath = join(dir, 'sshd.log');
  const targetDir = join(dir, 'target');
  const clientKey = join(dir, 'client', 'id_ed25519');
  const knownHosts = join(dir, 'client', 'known_hosts');
  let server: ResultPromise | undefined;
  try {
    const port = await freePort();
    // Privilege separation directory; normally created by the sshd service unit.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await mkdir(targetDir, { mode: 0o755 });
    await mkdir(join(dir, 'client'), { mode: 0o755 });

    const hostPub = await keygen(join(dir, 'ssh_host_ed25519_key'), 'backup-agent-test-host');
    const clientPub = await keygen(clientKey, 'backup-agent-test-client');
    await writeFile(join(dir, 'authorized_keys'), `${clientPub}\n`, { mode: 0o600 });
    const hostKeyFields = hostPub.split(' ');
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKeyFields[0] ?? ''} ${hostKeyFields[1] ?? ''}\n`);
    const { uid, gid } = await backupUser();
    for (const [path, mode] of [
      [clientKey, 0o600],
      [`${clientKey}.pub`, 0o644],
      [knownHosts, 0o644],
    ] as const) {
      await chown(path, uid, gid);
      await chmod(path, mode);
    }
    const wrapper = options.stallable === true ? join(dir, 'force-command') : null;
    if (wrapper !== null) await writeFile(wrapper, stallingWrapper(join(dir, 'stall-uploads'), port), { mode: 0o755 });
    await writeFile(configPath, sshdConfig(dir, port, wrapper));

    server = startSshd(configPath, logPath);

    const sshArgs = [
      '-p',
      String(port),
      '-i',
      clientKey,
      `-oUserKnownHostsFile=${knownHosts}`,
      '-oStrictHostKeyChecking=yes',
      '-oBatchMode=yes',
    ];
    await waitForBanner(port, server, logPath);
    await checkLoginAsBackup(sshArgs, logPath);

    const target = makeHandle({
      dir,
      port,
      targetDir,
      clientKey,
      knownHosts,
      sshArgs,
      configPath,
      server,
      stallable: wrapper !== null,
    });
    return target;
  } catch (err) {
    if (server !== undefined) await stopSshd(server, configPath);
    await removeDir(dir);
    throw err;
  }
}

function startSshd(configPath: string, logPath: string): ResultPromise {
  // Absolute path: sshd refuses to re-exec itself otherwise.
  return execa('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], {
    stdin: 'ignore',
    stdout: { file: logPath, append: true },
    stderr: { file: logPath, append: true },
    reject: false,
  });
}

async function waitForBanner(port: number, server: ResultPromise, logPath: string): Promise<void> {
  let exited = false;
  void server.finally(() => {
    exited = true;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`sshd exited during startup:\n${await tail(logPath)}`);
    if (await readBanner(port)) return;
    await sleep(100);
  }
  throw new Error(
    `sshd did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s:\n${await tail(logPath)}`,
  );
}

// Proves the whole chain the agent relies on: uid 34 can read the key and the
// known_hosts file and the server accepts the key for root.
async function checkLoginAsBackup(sshArgs: string[], logPath: string): Promise<void> {
  try {
    await execa('runuser', ['-u', 'backup', '--', 'ssh', ...sshArgs, 'root@127.0.0.1', 'true'], {
      stdin: 'ignore',
      timeout: 20_000,
    });
  } catch (err) {
    const detail = err instanceof ExecaError ? `${err.shortMessage}\n${String(err.stderr ?? '')}` : String(err);
    throw new Error(`ssh as backup into the test target failed: ${detail}\nsshd log:\n${await tail(logPath)}`);
  }
}

async function childPids(pid: number): Promise<number[]> {
  const result = await execa('pgrep', ['-P', String(pid)], { reject: false });
  return result.stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

async function descendants(pid: number): Promise<number[]> {
  const direct = await childPids(pid);
  const nested = await Promise.all(direct.map(descendants));
  return [...direct, ...nested.flat()];
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Session processes outlive the listener, so they are collected first and
// killed explicitly; pkill on the config path catches re-exec'd children that
// were forked between the scan and the kill.
async function stopSshd(server: ResultPromise, configPath: string): Promise<void> {
  const listener = server.pid;
  const sessions = listener === undefined ? [] : await descendants(listener);
  for (const pid of sessions) signal(pid, 'SIGTERM');
  server.kill('SIGTERM');
  await execa('pkill', ['-TERM', '-f', configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')], { reject: false });
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline && sessions.some(alive)) await sleep(50);
  for (const pid of sessions) signal(pid, 'SIGKILL');
  const timedOut = await Promise.race([server.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
  if (timedOut) {
    server.kill('SIGKILL');
    await server;
  }
}

interface HandleParts {
  dir: string;
  port: number;
  targetDir: string;
  clientKey: string;
  knownHosts: string;
  sshArgs: string[];
  configPath: string;
  server: ResultPromise;
  stallable: boolean;
}

function whenMissing<T>(fallback: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT') return fallback;
    throw err;
  };
}

function makeHandle(parts: HandleParts): SshTarget {
  const { dir, port, targetDir, clientKey, knownHosts, sshArgs, configPath, stallable } = parts;
  let server = parts.server;

  const listFiles = async (sub: string): Promise<RemoteFile[]> => {
    const base = join(targetDir, sub);
    const entries = await readdir(base, { withFileTypes: true }).catch(whenMissing([]));
    const files: RemoteFile[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      // rsync writes each volume to a hidden temporary name and renames it when complete, so an
      // entry can vanish between readdir and stat while an upload is running: it is not on the
      // target yet.
      const info = await stat(join(base, entry.name)).catch(whenMissing(undefined));
      if (info) files.push({ name: entry.name, size: info.size });
    }
    return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  };

  const stallUploads = async (on: boolean): Promise<void> => {
    if (!stallable) throw new Error('stallUploads needs startSshTarget({ stallable: true })');
    const flag = join(dir, 'stall-uploads');
    if (on) await writeFile(flag, '');
    else await rm(flag, { force: true });
  };

  const stalledUploads = async (): Promise<number> => {
    const found = await execa('pgrep', ['-fx', stallCommand(port)], { reject: false });
    return found.stdout.split('\n').filter((line) => line.trim() !== '').length;
  };
  const vanish = (): Promise<void> => stopSshd(server, configPath);
  const comeBack = async (): Promise<void> => {
    const logPath = join(dir, 'sshd.log');
    server = startSshd(configPath, logPath);
    await waitForBanner(port, server, logPath);
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= stopSshd(server, configPath).finally(() => removeDir(dir));
    return stopped;
  };

  return {
    dir,
    port,
    targetDir,
    url: `rsync://root@127.0.0.1:${port}/${targetDir}`,
    clientKey,
    knownHosts,
    sshArgs,
    listFiles,
    stallUploads,
    stalledUploads,
    vanish,
    comeBack,
    stop,
  };
}
