// The two workflows under test, each timed as a whole (first process start to last exit):
//   plain: the lab's `mysqldump ... agama > staging/agama.sql` then `duplicity full|incremental`, both
//          as the backup user, as its cron job would run them (another source: its own dump command
//          into its own staging dir, then its own duplicity);
//   agent: `node dist/main.js --config FILE run [--full]` started as root, as an operator would; it
//          drops to backup by itself.
import { spawn } from 'node:child_process';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { type LogLine, NODE_FLAG, parseLogs } from '../test/harness/agent.js';
import { asBackupUser, backupUser } from '../test/harness/temp-dir.js';
import { type RssPeaks, sampleRss } from './measure.js';

export type Kind = 'full' | 'incremental';

const NO_RSS: RssPeaks = { selfKiB: 0, descendantsKiB: {}, treeKiB: 0 };

interface Running {
  kill(signal: NodeJS.Signals): void;
  readonly done: Promise<unknown>;
}

/** Children currently running, so that a signal can stop them before the cleanup removes their files. */
const running = new Set<Running>();

function track<T>(kill: (signal: NodeJS.Signals) => void, done: Promise<T>): Promise<T> {
  const entry: Running = { kill, done: done.catch(() => undefined) };
  running.add(entry);
  void entry.done.finally(() => running.delete(entry));
  return done;
}

export async function stopRunningChildren(): Promise<void> {
  for (const child of running) child.kill('SIGTERM');
  await Promise.all([...running].map((child) => child.done));
}

/** What cron gives the backup user (its passwd home is /var/backups). */
export const BACKUP_ENV = { HOME: '/var/backups', USER: 'backup', LOGNAME: 'backup' } as const;

export interface PlainSetup {
  readonly myCnf: string;
  /** Holds agama.sql; owned by backup. */
  readonly stagingDir: string;
  /** duplicity --archive-dir; owned by backup. */
  readonly archiveDir: string;
  readonly url: string;
  readonly sshKey: string;
  readonly knownHosts: string;
  readonly database: string;
  /**
   * Symmetric gpg, duplicity's default: the passphrase goes in PASSPHRASE, as the lab's cron script
   * exports it, and gpg's home is GNUPGHOME (the lab's ~/.gnupg). Absent: --no-encryption.
   */
  readonly encryption?: { readonly passphrase: string; readonly gnupgHome: string };
  /** duplicity --name, the archive dir's subdirectory; one per target. Default: plain. */
  readonly name?: string;
  /** Another dump than `mysqldump database`: its argv and the file it writes in stagingDir. */
  readonly dump?: { readonly argv: readonly string[]; readonly file: string };
}

export interface PlainResult {
  readonly wallMs: number;
  readonly dumpMs: number;
  readonly duplicityMs: number;
  readonly dumpBytes: number;
  /** Peak RSS of duplicity itself and of its children (rsync, ssh, gpg). */
  readonly duplicityRss: RssPeaks;
  /** Peak RSS of mysqldump. */
  readonly dumpRss: RssPeaks;
}

export function plainCommands(setup: PlainSetup, kind: Kind): { dump: string[]; duplicity: string[] } {
  return {
    // The lab's command; --defaults-file stands for the backup user's ~/.my.cnf.
    dump: [
      ...(setup.dump?.argv ?? ['mysqldump', `--defaults-file=${setup.myCnf}`, '--single-transaction', setup.database]),
    ],
    duplicity: [
      'duplicity',
      kind,
      ...(setup.encryption === undefined ? ['--no-encryption'] : []),
      // The lab relies on ~/.cache/duplicity; /var/backups is not writable by backup, so name one.
      '--archive-dir',
      setup.archiveDir,
      '--name',
      setup.name ?? 'plain',
      // The lab's target listens on port 22 with the key in ~/.ssh; this one needs both named.
      `--ssh-options=-oIdentityFile=${setup.sshKey} -oUserKnownHostsFile=${setup.knownHosts}`,
      setup.stagingDir,
      setup.url,
    ],
  };
}

/** Where the plain workflow's dump goes: `staging/agama.sql`, or the file its own dump command names. */
export function plainDumpFile(setup: PlainSetup): string {
  return join(setup.stagingDir, setup.dump?.file ?? `${setup.database}.sql`);
}

/** Like the shell's `argv > file`: the child gets the file's descriptor, nothing passes through node. */
export async function runToFile(argv: readonly string[], file: string): Promise<RssPeaks> {
  const { uid, gid } = await backupUser();
  const handle = await open(file, 'w', 0o600);
  try {
    await handle.chown(uid, gid);
    const child = spawn('setpriv', await asBackupUser(argv), {
      stdio: ['ignore', handle.fd, 'pipe'],
      env: { ...process.env, ...BACKUP_ENV },
    });
    const sampler = child.pid === undefined ? undefined : sampleRss(child.pid);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    const { code, signal } = await track((sig) => child.kill(sig), exit);
    const rss = (await sampler?.stop()) ?? NO_RSS;
    if (code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${code ?? signal}):\n${stderr}`);
    return rss;
  } finally {
    await handle.close();
  }
}

export async function runPlain(setup: PlainSetup, kind: Kind): Promise<PlainResult> {
  const commands = plainCommands(setup, kind);
  const dumpFile = plainDumpFile(setup);
  const started = performance.now();
  const dumpRss = await runToFile(commands.dump, dumpFile);
  const dumped = performance.now();
  const child = execa('setpriv', await asBackupUser(commands.duplicity), {
    stdin: 'ignore',
    env:
      setup.encryption === undefined
        ? BACKUP_ENV
        : { ...BACKUP_ENV, PASSPHRASE: setup.encryption.passphrase, GNUPGHOME: setup.encryption.gnupgHome },
    reject: false,
  });
  const sampler = child.pid === undefined ? undefined : sampleRss(child.pid);
  const result = await track((signal) => child.kill(signal), child);
  const ended = performance.now();
  const duplicityRss = (await sampler?.stop()) ?? NO_RSS;
  if (result.exitCode !== 0) {
    throw new Error(
      `plain duplicity ${kind} failed (exit ${result.exitCode ?? result.signal}):\n${result.stderr}\n${result.stdout}`,
    );
  }
  return {
    wallMs: ended - started,
    dumpMs: dumped - started,
    duplicityMs: ended - dumped,
    dumpBytes: (await stat(dumpFile)).size,
    duplicityRss,
    dumpRss,
  };
}

function mergePeaks(peaks: readonly RssPeaks[]): RssPeaks {
  const descendantsKiB: Record<string, number> = {};
  for (const peak of peaks) {
    for (const [name, kib] of Object.entries(peak.descendantsKiB))
      descendantsKiB[name] = Math.max(descendantsKiB[name] ?? 0, kib);
  }
  return {
    selfKiB: Math.max(0, ...peaks.map((peak) => peak.selfKiB)),
    descendantsKiB,
    treeKiB: Math.max(0, ...peaks.map((peak) => peak.treeKiB)),
  };
}

/**
 * A cron script with several sources: each one's dump and duplicity, strictly one after the other.
 * The whole is timed from the first start to the last exit; its peaks are the largest of any step.
 */
export async function runPlainSequence(
  setups: Readonly<Record<string, PlainSetup>>,
  kind: Kind,
): Promise<{ total: PlainResult; bySource: Record<string, PlainResult> }> {
  const bySource: Record<string, PlainResult> = {};
  const started = performance.now();
  for (const [source, setup] of Object.entries(setups)) bySource[source] = await runPlain(setup, kind);
  const wallMs = performance.now() - started;
  const parts = Object.values(bySource);
  const sum = (pick: (part: PlainResult) => number) => parts.reduce((total, part) => total + pick(part), 0);
  return {
    total: {
      wallMs,
      dumpMs: sum((part) => part.dumpMs),
      duplicityMs: sum((part) => part.duplicityMs),
      dumpBytes: sum((part) => part.dumpBytes),
      duplicityRss: mergePeaks(parts.map((part) => part.duplicityRss)),
      dumpRss: mergePeaks(parts.map((part) => part.dumpRss)),
    },
    bySource,
  };
}

export interface AgentCommand {
  /** e.g. "duplicity full", "mariadb-dump", "rsync" */
  readonly label: string;
  readonly argv: readonly string[];
  readonly durationMs: number;
  /** When the agent logged it as finished, ms after node was spawned (ms resolution of the log's time). */
  readonly endMs: number;
  /** The source it worked for, when its argv tells (the client, or a path under staging/<source> or <target>/<source>). */
  readonly source: string | undefined;
}

export interface AgentResult {
  readonly wallMs: number;
  readonly exitCode: number;
  readonly rss: RssPeaks;
  readonly logs: readonly LogLine[];
  /** Every command the agent logged as finished, in order. */
  readonly commands: readonly AgentCommand[];
  readonly summary: LogLine | undefined;
  /** Every source's summary line, by source (mysql, postgresql). */
  readonly summaries: Readonly<Record<string, LogLine>>;
  /** From spawning node to its first log line: start-up, config, privileges. */
  readonly firstLogMs: number | null;
  readonly stderr: string;
}

function commandLabel(argv: readonly string[]): string {
  const program = (argv[0] ?? '?').split('/').at(-1) ?? '?';
  if (argv.includes('--version')) return `${program} --version`;
  if (program === 'duplicity') return `duplicity ${argv[1] ?? ''}`;
  if (program.endsWith('dump') && argv.includes('--no-data')) return `${program} --no-data (access check)`;
  if (program === 'pg_dump' && argv.includes('--schema-only')) return `${program} --schema-only (access check)`;
  if (program === 'pg_dumpall' && argv.includes('--file=/dev/null')) return `${program} (probe)`;
  return program;
}

const SOURCES = ['mysql', 'postgresql'] as const;

/** The agent logs commands without their source: a dump client names it, and so do the agent's paths. */
function commandSource(argv: readonly string[]): string | undefined {
  const program = (argv[0] ?? '').split('/').at(-1) ?? '';
  if (/^(mariadb|mysql)/.test(program)) return 'mysql';
  if (/^(pg_|psql)/.test(program)) return 'postgresql';
  return SOURCES.find((source) => argv.some((arg) => new RegExp(`/${source}(/|$)`).test(arg)));
}

/** How node starts the agent: the flags before the entry point, as its #! line or the harness gives them. */
export interface AgentLaunch {
  /** Default: [NODE_FLAG] of package.json, what the .deb's #! line carries. */
  readonly nodeArgs?: readonly string[];
  /** Default: this node (process.execPath). The .deb's #! line names /usr/bin/node. */
  readonly node?: string;
  /** Added to the agent's environment last (--agent-env): a lever under test may override the defaults. */
  readonly env?: Readonly<Record<string, string>>;
}

/** `run --full`, or a plain `run` that the agent itself decides is incremental (it is checked). */
export async function runAgent(
  agentMain: string,
  configFile: string,
  kind: Kind,
  launch: AgentLaunch = {},
): Promise<AgentResult> {
  const startedAt = Date.now();
  const started = performance.now();
  // As the backup user, as the daemon runs under systemd's User=backup. Started as root, `run` would
  // re-run itself as backup through setpriv and wait, and the sampled process would be that idle parent.
  const child = execa(
    'setpriv',
    await asBackupUser([
      launch.node ?? process.execPath,
      ...(launch.nodeArgs ?? [NODE_FLAG]),
      agentMain,
      '--config',
      configFile,
      'run',
      ...(kind === 'full' ? ['--full'] : []),
    ]),
    // info is what an operator gets; debug would add log lines and their cost.
    { stdin: 'ignore', reject: false, env: { ...BACKUP_ENV, BACKUP_AGENT_LOG_LEVEL: 'info', ...launch.env } },
  );
  const sampler = child.pid === undefined ? undefined : sampleRss(child.pid);
  const result = await track((signal) => child.kill(signal), child);
  const wallMs = performance.now() - started;
  const rss = (await sampler?.stop()) ?? NO_RSS;
  const logs = parseLogs(result.stdout);
  const commands: AgentCommand[] = [];
  for (const line of logs) {
    const argv = line['argv'];
    const durationMs = line['durationMs'];
    if (!Array.isArray(argv) || typeof durationMs !== 'number') continue;
    commands.push({
      label: commandLabel(argv as string[]),
      argv: argv as string[],
      durationMs,
      endMs: Date.parse(String(line['time'])) - startedAt,
      source: commandSource(argv as string[]),
    });
  }
  const first = logs[0];
  const summaries: Record<string, LogLine> = {};
  for (const line of logs) if (line['summary'] === true) summaries[String(line['source'])] = line;
  return {
    wallMs,
    exitCode: result.exitCode ?? -1,
    rss,
    logs,
    commands,
    summary: summaries['mysql'],
    summaries,
    firstLogMs: first === undefined ? null : Date.parse(String(first['time'])) - startedAt,
    stderr: result.stderr,
  };
}

/**
 * The agent's shared ssh connection (ControlPersist=30) outlives the run. Closing it after each run
 * keeps runs independent (a daily run never finds a live master) and leaves no process behind.
 */
export async function closeSshMasters(controlDir: string): Promise<void> {
  const names = await readdir(controlDir).catch(() => [] as string[]);
  for (const name of names.filter((entry) => entry.startsWith('ssh-'))) {
    const args = await asBackupUser(['ssh', `-oControlPath=${join(controlDir, name)}`, '-O', 'exit', 'bench']);
    await execa('setpriv', args, { stdin: 'ignore', reject: false, timeout: 10_000 });
  }
}
