// A shaped link to a test target: a network namespace of the benchmark's own, joined to the host by
// a veth pair, with the rate limited by tbf on both ends and the round trip added by a delaying relay
// (bench/delay-relay.ts) because this kernel has no netem qdisc. The target's sshd runs inside the
// namespace (`ip netns exec`); clients reach it at 10.213.0.2 through the shaped veth and the relay.
//
// It is the bench-local variant of test/harness/ssh-target.ts (which binds 127.0.0.1 of the host's
// namespace): the same sshd configuration, but listening inside the namespace, with its own host key,
// and authorising the client key of the loopback target, so that both links use one client key.
//
// Every step registers its undoing with onCleanup as soon as it is done, so a failure or Ctrl-C at
// any point leaves no namespace, veth, qdisc or process behind. Only the addresses of 10.213.0.0/30
// are used.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { freePort } from '../test/harness/ports.js';
import { asBackupUser, backupUser } from '../test/harness/temp-dir.js';
import { log, onCleanup } from './cleanup.js';
import { descendantsOf } from './measure.js';
import { sshdConfig } from '../test/harness/ssh-target.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);
export const HOST_ADDRESS = '10.213.0.1';
export const TARGET_ADDRESS = '10.213.0.2';
const PREFIX = 30;

export interface LinkShape {
  readonly rateMbit: number;
  /** Round trip added by the relay: half of it each way. */
  readonly rttMs: number;
}

export interface ShapedTarget {
  readonly targetDir: string;
  /** duplicity URL of targetDir (absolute path: `//` after the port). */
  readonly url: string;
  readonly knownHosts: string;
  readonly clientKey: string;
  /** What the link is, for the header: qdiscs, relay, and whether netem was there. */
  readonly description: string;
}

async function ip(args: readonly string[]): Promise<void> {
  await execa('ip', args, { stdin: 'ignore' });
}

async function inNamespace(namespace: string, argv: readonly string[]): Promise<string> {
  return (await execa('ip', ['netns', 'exec', namespace, ...argv], { stdin: 'ignore' })).stdout;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Stops a process started in the namespace and everything it started (sshd's sessions). */
async function stopTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('close', () => done()));
  const tree = await descendantsOf(child.pid);
  for (const pid of tree) signal(pid, 'SIGTERM');
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(10_000, true, { ref: false })]);
  for (const pid of tree) signal(pid, 'SIGKILL');
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Resolves once `host:port` answers with an SSH banner (through the relay: sshd is up behind it). */
async function waitForBanner(host: string, port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited during start-up`);
    const ok = await new Promise<boolean>((done) => {
      const socket = connect({ host, port });
      socket.setTimeout(2000);
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        done(chunk.toString('latin1').startsWith('SSH-'));
      });
      socket.once('error', () => done(false));
      socket.once('timeout', () => {
        socket.destroy();
        done(false);
      });
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`no SSH banner from ${host}:${port} within 30 s`);
}

/** Whether this kernel has netem (it is checked in the namespace, on its loopback, and removed again). */
async function netemAvailable(namespace: string): Promise<boolean> {
  const tried = await execa('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem'], {
    stdin: 'ignore',
    reject: false,
  });
  if (tried.exitCode === 0) {
    await execa('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'del', 'dev', 'lo', 'root'], { reject: false });
    return true;
  }
  return false;
}

/**
 * Makes the namespace, the veth pair and the qdiscs, starts sshd and the relay inside, and checks a
 * login as backup. `dir` is made here (the target and sshd's files); `clientKey` is an existing key
 * whose `.pub` is authorised.
 */
export async function startShapedTarget(dir: string, clientKey: string, shape: LinkShape): Promise<ShapedTarget> {
  const existing = await execa('ip', ['-o', 'addr', 'show', 'to', `10.213.0.0/${PREFIX}`], { stdin: 'ignore' });
  if (existing.stdout.trim() !== '') {
    throw new Error(`10.213.0.0/${PREFIX} is already in use on this machine:\n${existing.stdout}`);
  }
  const tag = `bab${process.pid}`;
  const namespace = tag;
  const [hostEnd, targetEnd] = [`${tag}h`, `${tag}n`];

  await ip(['netns', 'add', namespace]);
  // Deleting the namespace deletes its end of the veth, and with it the pair and both qdiscs.
  onCleanup(async () => {
    // Anything still inside (it should all have been stopped by then) is ours: stop it by its pid.
    const left = await execa('ip', ['netns', 'pids', namespace], { reject: false });
    for (const word of left.stdout.split(/\s+/)) if (/^\d+$/.test(word)) signal(Number(word), 'SIGKILL');
    await execa('ip', ['link', 'del', hostEnd], { reject: false });
    await execa('ip', ['netns', 'del', namespace], { reject: false });
  });
  await ip(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', targetEnd]);
  await ip(['link', 'set', targetEnd, 'netns', namespace]);
  await ip(['addr', 'add', `${HOST_ADDRESS}/${PREFIX}`, 'dev', hostEnd]);
  await ip(['link', 'set', hostEnd, 'up']);
  await inNamespace(namespace, ['ip', 'addr', 'add', `${TARGET_ADDRESS}/${PREFIX}`, 'dev', targetEnd]);
  await inNamespace(namespace, ['ip', 'link', 'set', targetEnd, 'up']);
  await inNamespace(namespace, ['ip', 'link', 'set', 'lo', 'up']);
  const tbf = ['root', 'tbf', 'rate', `${shape.rateMbit}mbit`, 'burst', '256kb', 'latency', '100ms'];
  await execa('tc', ['qdisc', 'add', 'dev', hostEnd, ...tbf], { stdin: 'ignore' });
  await inNamespace(namespace, ['tc', 'qdisc', 'add', 'dev', targetEnd, ...tbf]);
  const netem = await netemAvailable(namespace);

  // sshd inside the namespace, on its own loopback; the relay in front of it on the veth address.
  await mkdir(dir, { mode: 0o755 });
  const targetDir = join(dir, 'target');
  await mkdir(targetDir, { mode: 0o755 });
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'backup-agent-bench-shaped', '-f', hostKey], {
    stdin: 'ignore',
  });
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o600 });
  const [sshdPort, relayPort] = [await freePort(), await freePort()];
  const configPath = join(dir, 'sshd_config');
  await writeFile(configPath, sshdConfig(dir, sshdPort, null));
  const knownHosts = join(dir, 'known_hosts');
  const hostPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ');
  await writeFile(knownHosts, `[${TARGET_ADDRESS}]:${relayPort} ${hostPub[0] ?? ''} ${hostPub[1] ?? ''}\n`);
  const { uid, gid } = await backupUser();
  await chown(knownHosts, uid, gid);
  await chmod(knownHosts, 0o644);

  const sshdLog = join(dir, 'sshd.log');
  const sshdOut = openSync(sshdLog, 'a');
  const sshd = spawn('ip', ['netns', 'exec', namespace, '/usr/sbin/sshd', '-D', '-e', '-f', configPath], {
    stdio: ['ignore', sshdOut, sshdOut],
  });
  closeSync(sshdOut);
  onCleanup(() => stopTree(sshd));

  const relay = spawn(
    'ip',
    [
      'netns',
      'exec',
      namespace,
      process.execPath,
      '--import',
      'tsx',
      join(REPO, 'bench', 'delay-relay.ts'),
      `${TARGET_ADDRESS}:${relayPort}`,
      `127.0.0.1:${sshdPort}`,
      String(shape.rttMs / 2),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: REPO },
  );
  // `ip netns exec` execs the command, so the child's pid is the relay's (and sshd's above).
  onCleanup(() => stopTree(relay));
  await new Promise<void>((ready, failed) => {
    relay.once('close', (code) => failed(new Error(`the delay relay exited (${String(code)}) before listening`)));
    createInterface({ input: relay.stdout }).once('line', () => ready());
  });
  await waitForBanner(TARGET_ADDRESS, relayPort, sshd, 'sshd in the namespace');

  // The whole chain the agent relies on: uid 34 reads the key and known_hosts, the server takes the key.
  const sshArgs = [
    '-p',
    String(relayPort),
    '-i',
    clientKey,
    `-oUserKnownHostsFile=${knownHosts}`,
    '-oStrictHostKeyChecking=yes',
    '-oBatchMode=yes',
  ];
  await execa('setpriv', await asBackupUser(['ssh', ...sshArgs, `root@${TARGET_ADDRESS}`, 'true']), {
    stdin: 'ignore',
    timeout: 20_000,
  }).catch(async (error: unknown) => {
    throw new Error(
      `ssh as backup into the shaped target failed: ${String(error)}\n${await readFile(sshdLog, 'utf8')}`,
    );
  });
  log(`shaped link up: namespace ${namespace}, ${hostEnd} ${HOST_ADDRESS} <-> ${targetEnd} ${TARGET_ADDRESS}`);

  return {
    targetDir,
    url: `rsync://root@${TARGET_ADDRESS}:${relayPort}/${targetDir}`,
    knownHosts,
    clientKey,
    description:
      `veth ${hostEnd} (${HOST_ADDRESS}) <-> ${targetEnd} (${TARGET_ADDRESS}) in netns ${namespace}; ` +
      `tbf rate ${shape.rateMbit}mbit burst 256kb latency 100ms on both ends; ` +
      `${shape.rttMs} ms round trip added by bench/delay-relay.ts (${shape.rttMs / 2} ms each way, per chunk) ` +
      `in front of sshd (127.0.0.1:${sshdPort} inside the namespace); netem ${netem ? 'is available (not used)' : 'is not available on this kernel'}`,
  };
}
