// A throwaway Debian 13 machine booted with systemd as PID 1, for the end-to-end tests of the .deb.
//
// How, and why this way (measured on the Debian 12 host, whose PID 1 is not systemd):
// - The clean root is debootstrapped once into BUILD_CACHE/trixie-boot (minbase + systemd-sysv + dbus)
//   and never changed afterwards.
// - Each container gets an overlayfs over it (upper dir in the cache): mounting takes milliseconds,
//   where a full copy of the root (`cp -a`, no reflinks on ext4) takes seconds, and
//   `systemd-nspawn --ephemeral` needs btrfs or copies the whole tree too.
// - `systemd-nspawn --boot --register=no --keep-unit`: there is no systemd-machined on the host,
//   so no machinectl, no `systemd-run --machine`; commands run with `nsenter` into the namespaces
//   of the container's PID 1, as root, with a clean environment.
// - The host network is shared (no --private-network): apt in the container reaches the Debian
//   mirror. Downloaded .debs are shared with the build through BUILD_CACHE/apt-archives.
import { findProgram } from '../../src/system/find-program.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

const REPO = new URL('../../', import.meta.url).pathname;

/** The package under test: built from this tree (a .deb left in build/ may be older), or BACKUP_AGENT_DEB. */
export async function packageUnderTest(version: string): Promise<string> {
  const given = process.env['BACKUP_AGENT_DEB'];
  if (given !== undefined) return given;
  const arch = (await execa('dpkg', ['--print-architecture'])).stdout.trim();
  await execa(join(REPO, 'scripts', 'build-deb.sh'), [], { stdio: 'inherit' });
  return join(REPO, 'build', `backup-agent_${version}_${arch}.deb`);
}

export const BUILD_CACHE = process.env['BACKUP_AGENT_BUILD_CACHE'] ?? '/var/cache/backup-agent-build';
const MIRROR = process.env['DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const BOOT_ROOT = join(BUILD_CACHE, 'trixie-boot');
const LAYERS = join(BUILD_CACHE, 'layers');
const BOOT_PACKAGES = ['systemd-sysv', 'dbus'];
const MARKER = '.backup-agent-boot-root';
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Exit codes that do not throw (default [0]). */
  readonly okExitCodes?: readonly number[];
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: string;
  readonly timeoutMs?: number;
}

export interface Container {
  readonly name: string;
  /** The container's / as seen from the host (the overlay mount). */
  readonly rootDir: string;
  /** Milliseconds from starting nspawn to `is-system-running` answering running or degraded. */
  readonly bootMs: number;
  /** What `systemctl is-system-running` said after boot. */
  readonly systemState: string;
  /** Runs argv inside the container as root (no shell). Throws on an exit code outside okExitCodes. */
  run(argv: readonly [string, ...string[]], options?: RunOptions): Promise<RunResult>;
  /**
   * Starts argv inside the container as root and returns at once, for a command the test talks to
   * while it runs: stdin, stdout and stderr are pipes. nsenter is killed after timeoutMs (default
   * 10 min); what it started inside may outlive it, so a test stops that by its pid.
   */
  start(argv: readonly [string, ...string[]], options?: { readonly timeoutMs?: number }): ChildProcess;
  /**
   * `systemctl reboot` inside; systemd-nspawn then exits with 133 ("reboot requested") and, like
   * systemd-nspawn@.service does, the harness starts it again on the same root, not before offUntil
   * (the machine stays off until then). Resolves when the new boot has finished.
   */
  reboot(options?: { readonly offUntil?: Date }): Promise<void>;
  /** Copies a host file into the container. */
  copyIn(hostFile: string, containerPath: string): Promise<void>;
  /** Powers off, unmounts, removes the overlay. Safe to call twice. */
  destroy(): Promise<void>;
}

export class ContainerCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(
      `in container: ${argv.join(' ')} exited ${result.exitCode}\n${result.stderr.slice(-2000)}\n${result.stdout.slice(-2000)}`,
    );
    this.name = 'ContainerCommandError';
  }
}

/**
 * apt-get in the container, waiting while another container holds the download cache's lock:
 * BUILD_CACHE/apt-archives is shared by every container (and test file) running at the time.
 */
export async function aptGet(
  container: Container,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const ok = options.okExitCodes ?? [0];
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const result = await container.run(['apt-get', ...args], {
      ...options,
      okExitCodes: [...ok, 100],
      env: { DEBIAN_FRONTEND: 'noninteractive', ...options.env },
    });
    const locked =
      result.exitCode === 100 && /Could not get lock \/var\/cache\/apt\/archives\/lock/.test(result.stderr);
    if (locked && Date.now() < deadline) {
      await sleep(2000);
      continue;
    }
    if (!ok.includes(result.exitCode)) throw new ContainerCommandError(['apt-get', ...args], result);
    return result;
  }
}

/** Why the e2e tests cannot run here, or undefined when they can. */
export async function missingPrerequisite(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, mount, systemd-nspawn)';
  for (const tool of ['debootstrap', 'systemd-nspawn', 'nsenter']) {
    if ((await findProgram(tool)) === undefined) {
      return `${tool} is not installed (apt-get install debootstrap systemd-container)`;
    }
  }
  return undefined;
}

/** Creates the clean booting root once (about 2 minutes); later calls reuse it. */
export async function ensureBootRoot(): Promise<string> {
  const marker = join(BOOT_ROOT, MARKER);
  const wanted = `trixie minbase ${BOOT_PACKAGES.join(' ')}`;
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return BOOT_ROOT;
  await withLock('boot-root', async () => {
    if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return;
    const temporary = `${BOOT_ROOT}.tmp`;
    await rm(temporary, { recursive: true, force: true });
    await rm(BOOT_ROOT, { recursive: true, force: true });
    await mkdir(join(BUILD_CACHE, 'apt-archives', 'partial'), { recursive: true });
    await execa(
      'debootstrap',
      [
        '--variant=minbase',
        `--include=${BOOT_PACKAGES.join(',')}`,
        `--cache-dir=${join(BUILD_CACHE, 'apt-archives')}`,
        'trixie',
        temporary,
        MIRROR,
      ],
      { all: true },
    );
    // No hostname of the build machine, no machine-id shared between containers: systemd makes
    // a new one at each boot when the file is empty.
    await writeFile(join(temporary, 'etc', 'machine-id'), '');
    await writeFile(join(temporary, MARKER), wanted);
    await rename(temporary, BOOT_ROOT);
  });
  return BOOT_ROOT;
}

function aptArchivesBind(): string {
  return `--bind=${join(BUILD_CACHE, 'apt-archives')}:/var/cache/apt/archives`;
}

export interface LayerSpec {
  /** Names the layer's directory; a change of anything else in the spec rebuilds it. */
  readonly name: string;
  readonly packages: readonly string[];
  /** A Depends field for `apt-get satisfy`, e.g. a package's own, to have its dependencies in the layer. */
  readonly satisfy?: string;
  /** Units the packages enable that must not start at boot (nothing may take a default port). */
  readonly disable: readonly string[];
  /** Files written into the layer: path in the container to content. */
  readonly files?: Readonly<Record<string, string>>;
}

/**
 * Packages installed once over the clean root and kept as an overlay layer in BUILD_CACHE/layers, for
 * tests that boot several machines alike: each then boots in seconds instead of running apt. Made by
 * apt-get in a container that is not booted (nothing starts), then cleaned of what must differ between
 * machines: the ssh host keys (each container makes its own with `ssh-keygen -A`) and the machine id.
 */
export async function ensureLayer(spec: LayerSpec): Promise<string> {
  const lower = await ensureBootRoot();
  const dir = join(LAYERS, spec.name);
  const marker = join(dir, MARKER);
  const wanted = JSON.stringify(spec);
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return dir;
  await withLock(`layer-${spec.name}`, async () => {
    if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return;
    const base = `${dir}.build`;
    await rm(base, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    const { upper, root } = await mountOverlay(base, lower);
    try {
      const nspawn = (argv: readonly string[]) =>
        execa(
          'systemd-nspawn',
          [
            '--quiet',
            '--register=no',
            '--keep-unit',
            `--directory=${root}`,
            '--resolv-conf=copy-host',
            aptArchivesBind(),
            '--setenv=DEBIAN_FRONTEND=noninteractive',
            '--',
            ...argv,
          ],
          { all: true, timeout: 30 * 60_000 },
        );
      // Debian's container convention: no service starts during apt.
      await writeFile(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
      await nspawn(['apt-get', 'update', '-q']);
      await nspawn(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...spec.packages]);
      if (spec.satisfy !== undefined) await nspawn(['apt-get', 'satisfy', '-y', '-q', spec.satisfy]);
      if (spec.disable.length > 0) await nspawn(['systemctl', 'disable', ...spec.disable]);
      for (const [path, content] of Object.entries(spec.files ?? {})) {
        await mkdir(join(root, dirname(path)), { recursive: true });
        await writeFile(join(root, path), content);
      }
      await rm(join(root, 'usr/sbin/policy-rc.d'));
      for (const name of await readdir(join(root, 'etc/ssh')).catch(() => [])) {
        if (name.startsWith('ssh_host_')) await rm(join(root, 'etc/ssh', name));
      }
      await writeFile(join(root, 'etc/machine-id'), '');
    } finally {
      await unmount(root);
    }
    await writeFile(join(upper, MARKER), wanted);
    await rename(upper, dir);
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

/** An overlay of `lower` (colon-separated layers, top first) at <base>/root, its changes in <base>/upper. */
async function mountOverlay(base: string, lower: string): Promise<{ upper: string; work: string; root: string }> {
  const [upper, work, root] = ['upper', 'work', 'root'].map((part) => join(base, part)) as [string, string, string];
  for (const path of [upper, work, root]) await mkdir(path, { recursive: true });
  await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, root]);
  return { upper, work, root };
}

let sequence = 0;

/** Boots a throwaway copy of the clean root and waits until systemd has finished starting. */
export async function bootContainer(
  options: {
    readonly label?: string;
    readonly bootTimeoutMs?: number;
    /** A layer from ensureLayer, under the container's own changes and over the clean root. */
    readonly layer?: string;
    /**
     * Bind the shared download cache (default true). Containers whose packages come from a layer
     * and that run apt-get at the same time (e.g. Ansible's apt module, which does not wait for
     * another apt's lock) keep their own instead.
     */
    readonly sharedAptArchives?: boolean;
  } = {},
): Promise<Container> {
  const lower = [...(options.layer === undefined ? [] : [options.layer]), await ensureBootRoot()].join(':');
  const name = `ba-${options.label ?? 'e2e'}-${process.pid}-${++sequence}`;
  const base = join(BUILD_CACHE, 'containers', name);
  const { upper, work, root: rootDir } = await mountOverlay(base, lower);

  const console = createWriteStream(join(base, 'console.log'));
  const bootTimeoutMs = options.bootTimeoutMs ?? 120_000;
  let nspawn: ChildProcess;
  const boot = async (): Promise<{ initPid: number; systemState: string; bootMs: number }> => {
    const started = Date.now();
    nspawn = spawn(
      'systemd-nspawn',
      [
        '--quiet',
        '--boot',
        '--register=no',
        '--keep-unit',
        `--machine=${name}`,
        `--directory=${rootDir}`,
        '--console=read-only',
        '--resolv-conf=copy-host',
        ...(options.sharedAptArchives === false ? [] : [aptArchivesBind()]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    nspawn.stdout?.pipe(console, { end: false });
    nspawn.stderr?.pipe(console, { end: false });
    const initPid = await findInit(nspawn, started + bootTimeoutMs);
    const systemState = await waitForBoot(initPid, started + bootTimeoutMs);
    return { initPid, systemState, bootMs: Date.now() - started };
  };

  let destroyed = false;
  const container: Container & { bootMs: number; systemState: string; initPid: number } = {
    name,
    rootDir,
    bootMs: 0,
    systemState: '',
    initPid: 0,
    run: (argv, runOptions) => runIn(container.initPid, argv, runOptions),
    start: (argv, startOptions) => {
      if (container.initPid <= 0) throw new Error('the container is not running');
      return spawn('nsenter', nsenterArgs(container.initPid, argv, {}), {
        stdio: 'pipe',
        timeout: startOptions?.timeoutMs ?? 600_000,
      });
    },
    reboot: async (rebootOptions) => {
      const exited = exitOf(nspawn);
      // The reboot request may end the nsenter'd systemctl before it answers.
      await runIn(container.initPid, ['systemctl', 'reboot'], { okExitCodes: [0, 1, 255] });
      const code = await exited;
      if (code !== 133) throw new Error(`systemd-nspawn exited ${code} on reboot, not 133 (reboot requested)`);
      container.initPid = 0;
      const offFor = (rebootOptions?.offUntil?.getTime() ?? 0) - Date.now();
      if (offFor > 0) await sleep(offFor);
      Object.assign(container, await boot());
    },
    copyIn: async (hostFile, containerPath) => {
      await copyFile(hostFile, join(rootDir, containerPath));
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await powerOff(nspawn);
      console.end();
      await unmount(rootDir);
      await rm(upper, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
      // rmdir, not rm -r: should the overlay still be mounted, nothing below it is touched.
      await rmdir(rootDir);
      await rm(join(base, 'console.log'), { force: true });
      await rmdir(base);
    },
  };

  try {
    Object.assign(container, await boot());
    return container;
  } catch (error) {
    const log = await readFile(join(base, 'console.log'), 'utf8').catch(() => '');
    await container.destroy();
    throw new Error(`container ${name} did not boot: ${String(error)}\n--- console (tail) ---\n${log.slice(-3000)}`);
  }
}

/** How a child ended, once it has: its exit code, or the signal that killed it. */
function exitOf(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode ?? child.signalCode ?? 'SIGKILL');
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'SIGKILL')));
}

/** The host pid of the container's PID 1: the descendant of nspawn whose innermost pid is 1. */
async function findInit(nspawn: ChildProcess, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}`);
    for (const pid of await descendants(nspawn.pid ?? -1)) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (nspid !== undefined && nspid.length > 1 && nspid.at(-1) === '1') return pid;
    }
    await sleep(100);
  }
  throw new Error('no init process appeared');
}

async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const current = queue.shift() ?? -1;
    const tasks = await readdir(`/proc/${current}/task`).catch(() => []);
    for (const task of tasks) {
      const children = await readFile(`/proc/${current}/task/${task}/children`, 'utf8').catch(() => '');
      for (const child of children.split(' ').filter((word) => word !== '')) {
        found.push(Number(child));
        queue.push(Number(child));
      }
    }
  }
  return found;
}

/** Waits for `systemctl is-system-running --wait`: "running", or "degraded" (some unit failed). */
async function waitForBoot(initPid: number, deadline: number): Promise<string> {
  let last = '';
  while (Date.now() < deadline) {
    const result = await runIn(initPid, ['systemctl', 'is-system-running', '--wait'], {
      okExitCodes: [0, 1],
      timeoutMs: Math.max(1000, deadline - Date.now()),
    }).catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: String(error) }));
    last = `${result.stdout.trim()} ${result.stderr.trim()}`.trim();
    const state = result.stdout.trim();
    if (state === 'running' || state === 'degraded') return state;
    await sleep(250);
  }
  throw new Error(`systemd did not finish booting; last answer: ${last}`);
}

async function runIn(
  initPid: number,
  argv: readonly [string, ...string[]],
  options: RunOptions = {},
): Promise<RunResult> {
  if (initPid <= 0) throw new Error('the container is not running');
  const result = await execa('nsenter', nsenterArgs(initPid, argv, options.env ?? {}), {
    reject: false,
    input: options.input ?? '',
    timeout: options.timeoutMs ?? 600_000,
    stripFinalNewline: false,
  });
  const outcome: RunResult = {
    exitCode: result.exitCode ?? 128,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
  };
  if (!(options.okExitCodes ?? [0]).includes(outcome.exitCode)) throw new ContainerCommandError(argv, outcome);
  return outcome;
}

function nsenterArgs(initPid: number, argv: readonly string[], env: Readonly<Record<string, string>>): string[] {
  // --all: every namespace of the container's init; --root/--wd: its / and cwd. env -i: nothing
  // of the test process's environment leaks in.
  const environment = Object.entries({
    PATH: CONTAINER_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    ...env,
  }).map(([key, value]) => `${key}=${value}`);
  return [`--target=${initPid}`, '--all', '--root', '--wd', '--', '/usr/bin/env', '-i', ...environment, ...argv];
}

/** SIGTERM makes nspawn ask the container's systemd to power off; SIGKILL after 30 s. */
async function powerOff(nspawn: ChildProcess): Promise<void> {
  if (nspawn.exitCode !== null || nspawn.signalCode !== null) return;
  const exited = exitOf(nspawn);
  nspawn.kill('SIGTERM');
  const timer = new AbortController();
  const clean = await Promise.race([
    exited.then(() => true),
    sleep(30_000, false, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  if (!clean) {
    nspawn.kill('SIGKILL');
    await exited;
  }
}

async function unmount(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const result = await execa('umount', [dir], { reject: false });
    if (result.exitCode === 0 || /not mounted/.test(String(result.stderr))) return;
    await sleep(250);
  }
  await execa('umount', ['--lazy', dir]);
}

/** A lock directory (mkdir is atomic) so that two test runs do not debootstrap at once. */
async function withLock(name: string, body: () => Promise<void>): Promise<void> {
  const lock = join(BUILD_CACHE, `${name}.lock`);
  await mkdir(BUILD_CACHE, { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw error;
      await sleep(1000);
    }
  }
  try {
    await body();
  } finally {
    await rmdir(lock);
  }
}

/**
 * The README's target steps inside one container: the account `target` on the container's own
 * sshd, with a backups directory and the backup user's key (/etc/backup-agent/id_ed25519.pub)
 * authorised. The key must exist already.
 */
export async function authorizeOnTarget(container: Container): Promise<void> {
  const run = (argv: readonly [string, ...string[]]) => container.run(argv, { timeoutMs: 60_000 });
  const owned = ['-o', 'target', '-g', 'target'] as const;
  await run(['install', '-d', '-m', '0700', ...owned, '/home/target/.ssh', '/home/target/backups']);
  await run([
    'install',
    '-m',
    '0600',
    ...owned,
    '/etc/backup-agent/id_ed25519.pub',
    '/home/target/.ssh/authorized_keys',
  ]);
}

/**
 * InfluxDB on the given loopback ports (it reads INFLUXDB_<SECTION>_<KEY> from its environment) and
 * `unit`, a stand-in for telegraf that only sleeps: what influxdb.stop_services stops. Both are
 * written, not started; the caller reloads systemd.
 */
export async function writeInfluxUnits(
  container: Container,
  ports: { readonly rpc: number; readonly http: number },
  unit: string,
): Promise<void> {
  const write = (path: string, lines: readonly string[]) =>
    container.run(['tee', path], { input: `${lines.join('\n')}\n`, timeoutMs: 60_000 });
  await container.run(['mkdir', '-p', '/etc/systemd/system/influxdb.service.d'], { timeoutMs: 60_000 });
  await write('/etc/systemd/system/influxdb.service.d/e2e.conf', [
    '[Service]',
    `Environment=INFLUXDB_BIND_ADDRESS=127.0.0.1:${ports.rpc}`,
    `Environment=INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:${ports.http}`,
    'Environment=INFLUXDB_REPORTING_DISABLED=true',
  ]);
  await write(`/etc/systemd/system/${unit}`, [
    '[Unit]',
    'Description=stand-in for telegraf (e2e)',
    '[Service]',
    'ExecStart=/bin/sleep infinity',
    '[Install]',
    'WantedBy=multi-user.target',
  ]);
}

/** Writes line-protocol points (seconds) into `db` over InfluxDB's HTTP API, from inside the container. */
export async function influxWrite(
  container: Container,
  url: string,
  db: string,
  lines: readonly string[],
): Promise<void> {
  await container.run(
    ['curl', '-sS', '--fail-with-body', '-XPOST', `${url}/write?db=${db}&precision=s`, '--data-binary', '@-'],
    { input: `${lines.join('\n')}\n`, timeoutMs: 5 * 60_000 },
  );
}

/** An InfluxQL statement against `db` over the HTTP API, from inside the container; returns the JSON text. */
export async function influxQuery(
  container: Container,
  url: string,
  db: string,
  q: string,
  method: 'GET' | 'POST' = 'GET',
): Promise<string> {
  const result = await container.run(
    [
      'curl',
      '-sS',
      '--fail-with-body',
      ...(method === 'GET' ? ['-G'] : ['-XPOST']),
      `${url}/query`,
      '--data-urlencode',
      `db=${db}`,
      '--data-urlencode',
      `q=${q}`,
    ],
    { timeoutMs: 5 * 60_000 },
  );
  return result.stdout;
}
