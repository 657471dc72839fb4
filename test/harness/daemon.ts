// Runs `backup-agent daemon` (the built dist/main.js, as root, dropping to backup like under
// systemd) against an AgentHost, with its state file, metrics file and alert settings in the
// host's temp dir, and follows its JSON log lines while it runs.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { AGENT, type AgentHost, NODE_FLAG, type IniOverrides, type LogLine } from './agent.js';
import type { SmtpSink } from './smtp.js';
import { chownToBackup } from './temp-dir.js';

export interface DaemonFiles {
  readonly stateFile: string;
  readonly metricsFile: string;
  readonly smtpPasswordFile: string;
}

/** The metrics directory (node_exporter's, writable by backup) and the SMTP password; the host has the state file. */
export async function prepareDaemonFiles(host: AgentHost, smtp?: SmtpSink): Promise<DaemonFiles> {
  const metricsDir = join(host.dir, 'metrics');
  const smtpPasswordFile = join(host.dir, 'etc', 'smtp-password');
  await mkdir(metricsDir, { mode: 0o755 });
  await chownToBackup(metricsDir);
  await writeFile(smtpPasswordFile, `${smtp?.password ?? ''}\n`, { mode: 0o600 });
  await chownToBackup(smtpPasswordFile);
  return {
    stateFile: host.stateFile,
    metricsFile: join(metricsDir, 'backup_agent.prom'),
    smtpPasswordFile,
  };
}

/** The host's config plus the daemon's metrics file. */
export async function writeDaemonConfig(
  host: AgentHost,
  files: DaemonFiles,
  overrides: IniOverrides = {},
): Promise<void> {
  await host.writeConfig({
    ...overrides,
    metrics: { textfile: files.metricsFile, ...overrides.metrics },
  });
}

/** [notify] settings that send to the sink with its login. */
export function notifyVia(
  smtp: SmtpSink,
  files: DaemonFiles,
  on: 'failure' | 'always' = 'failure',
): Record<string, string> {
  return {
    email_to: 'ops@example.org',
    email_from: 'backup-agent@%H',
    smtp_url: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
    smtp_password_file: files.smtpPasswordFile,
    on,
  };
}

/** A daily schedule (with seconds) that fires once, `seconds` from now, in UTC. */
export function slotIn(seconds: number): { cron: string; at: Date } {
  const at = new Date(Math.ceil((Date.now() + seconds * 1000) / 1000) * 1000);
  return { cron: `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`, at };
}

export interface RunningDaemon {
  readonly pid: number;
  readonly logs: readonly LogLine[];
  waitForLog(what: string, predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  readonly exited: ResultPromise<{ reject: false; stdin: 'ignore'; all: true }>;
  /** Everything it printed, for assertion messages. */
  output(): string;
}

const started = new Set<RunningDaemon>();

/** For afterEach: a test that failed half-way must not leave its daemon firing into the next test. */
export async function killLeftoverDaemons(): Promise<number> {
  const left = [...started].filter((daemon) => daemon.exited.exitCode === null);
  for (const daemon of left) daemon.signal('SIGKILL');
  await Promise.all(left.map((daemon) => daemon.exited));
  started.clear();
  return left.length;
}

export function startDaemon(host: AgentHost, env: Record<string, string> = {}): RunningDaemon {
  const child = execa(process.execPath, [NODE_FLAG, AGENT, '--config', host.configFile, 'daemon'], {
    reject: false,
    stdin: 'ignore',
    all: true,
    env: { BACKUP_AGENT_LOG_LEVEL: 'debug', ...env },
  });
  const logs: LogLine[] = [];
  const printed: string[] = [];
  createInterface({ input: child.all }).on('line', (line) => {
    printed.push(line);
    if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
  });
  const waitForLog = async (what: string, predicate: (line: LogLine) => boolean, timeoutMs = 180_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = logs.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; daemon printed:\n${printed.join('\n')}`);
      if (child.exitCode !== null)
        throw new Error(`the daemon exited (${child.exitCode}) before ${what}:\n${printed.join('\n')}`);
      await sleep(50);
    }
  };
  if (child.pid === undefined) throw new Error('the daemon did not start');
  const daemon: RunningDaemon = {
    pid: child.pid,
    logs,
    waitForLog,
    signal: (signal) => child.kill(signal),
    exited: child,
    output: () => printed.join('\n'),
  };
  started.add(daemon);
  return daemon;
}

export interface StateOnDisk {
  readonly createdAt: string;
  readonly lastRun: {
    startedAt: string;
    trigger: string;
    result: string;
    reason: string | null;
    slot: string | null;
  } | null;
  readonly catchUp: { slot: string; startedAt: string } | null;
  readonly sources: Record<
    string,
    {
      lastRun: Record<string, unknown> | null;
      lastSuccess: Record<string, unknown> | null;
      lastFull: string | null;
      chainLength: number | null;
      failingSince: string | null;
    }
  >;
  readonly slaBreaches: Record<string, unknown>;
}

export async function readStateFile(files: DaemonFiles): Promise<StateOnDisk> {
  return JSON.parse(await readFile(files.stateFile, 'utf8')) as StateOnDisk;
}

/** Writes state.json as a daemon of an earlier boot would have left it. */
export async function writeStateFile(files: DaemonFiles, state: unknown): Promise<void> {
  await writeFile(files.stateFile, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await chownToBackup(files.stateFile);
}

/** Parses node_exporter's text format into "name{labels}" → value. */
export function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}
