// A herd of agents against one backup server: N daemons on this machine, each with its own config,
// state, staging, cache, gnupg home, database and target directory, all scheduled in the same
// minute, upload to one sshd with Debian's default MaxStartups (10:30:100). Run once with
// agent.spread = 0 and once with a spread; for each it counts the connections sshd refused, the
// failures and retries the agents logged, the peak of concurrent ssh connections on the server, and
// every agent's result. See bench/README.md ("Herd").
//
//   node --import tsx bench/herd.ts [--agents 20] [--spread 3m] [--rows 10000] [--tmp /var/tmp]
//                                   [--timeout-min 15]
//
// Runs as root, as the harness's daemons do (they drop to backup themselves). Prints figures and
// asserts nothing. Daemons get SIGTERM, servers are stopped and the temp root is removed at the end,
// also on failure and on SIGINT/SIGTERM.
import { chmod, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { cpus, hostname, release } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { type AgentHost, type LogLine, MYSQL_PASSWORD, makeAgentHost } from '../test/harness/agent.js';
import {
  type DaemonFiles,
  type RunningDaemon,
  type StateOnDisk,
  killLeftoverDaemons,
  prepareDaemonFiles,
  readStateFile,
  slotIn,
  startDaemon,
  writeDaemonConfig,
} from '../test/harness/daemon.js';
import { type MariaDb, seedDatabase, startMariaDb } from '../test/harness/mariadb.js';
import { type SshTarget, startSshTarget } from '../test/harness/ssh-target.js';
import { removeDir } from '../test/harness/temp-dir.js';
import { log, onCleanup, runBenchmark } from './cleanup.js';
import { closeSshMasters } from './workflows.js';
import { childrenOf, descendantsOf, firstLine, loadAverage, median, mib, secs } from './measure.js';
import { table } from './report.js';
import { exitWithUsage, positiveInt } from './options.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const USAGE =
  'usage: node --import tsx bench/herd.ts [--agents 20] [--spread 3m] [--rows 10000] [--tmp /var/tmp] [--timeout-min 15]';
const SAMPLE_MS = 200;
/** A slot that never comes during the benchmark: the daemons wait on it until the real slot is set. */
const FAR_SCHEDULE = '0 3 1 1 *';
/** Time between the last daemon taking the real slot and the slot itself. */
const SLOT_LEAD_S = 15;
const STOP_TIMEOUT_MS = 60_000;

interface Options {
  readonly agents: number;
  /** agent.spread of the second scenario, in the agent's own syntax; the daemon reports it in ms. */
  readonly spread: string;
  readonly rows: number;
  readonly tmp: string;
  readonly timeoutMs: number;
}

function usage(message: string): never {
  return exitWithUsage(USAGE, message);
}

function parseOptions(): Options {
  let values;
  try {
    values = parseArgs({
      options: {
        agents: { type: 'string', default: '20' },
        spread: { type: 'string', default: '3m' },
        rows: { type: 'string', default: '10000' },
        tmp: { type: 'string', default: '/var/tmp' },
        'timeout-min': { type: 'string', default: '15' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
  if (values.help) usage('a herd of backup-agent daemons against one sshd, without and with agent.spread');
  if (/^0+[a-z]*$/.test(values.spread)) usage('--spread must be more than 0: the first scenario is spread = 0');
  return {
    agents: positiveInt(USAGE, values.agents, '--agents'),
    spread: values.spread,
    rows: positiveInt(USAGE, values.rows, '--rows'),
    tmp: resolve(values.tmp),
    timeoutMs: positiveInt(USAGE, values['timeout-min'], '--timeout-min') * 60_000,
  };
}

// ---------------------------------------------------------------- the server side

interface ServerPeaks {
  /** Direct children of sshd's listener: one per TCP connection, authenticated or not. */
  readonly connections: number;
  /** What MaxStartups counts: connections not yet authenticated, as the listener's title shows it. */
  readonly startups: number;
  /** rsync --server processes: the sessions the connections carry. */
  readonly rsyncs: number;
  /** Time with at least MaxStartups' first figure (10) unauthenticated: sshd refuses a share then. */
  readonly throttledMs: number;
}

const THROTTLE_FROM = 10;

async function listenerPid(target: SshTarget): Promise<number> {
  return Number((await readFile(join(target.dir, 'sshd.pid'), 'utf8')).trim());
}

/** sshd sets its listener's title to "... [listener] N of 10-100 startups". */
async function startupsNow(listener: number): Promise<number> {
  const title = await readFile(`/proc/${listener}/cmdline`, 'utf8').catch(() => '');
  return Number(/\[listener\] (\d+) of /.exec(title)?.[1] ?? 0);
}

async function rsyncsUnder(listener: number): Promise<number> {
  let count = 0;
  for (const pid of await descendantsOf(listener)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'rsync') count++;
  }
  return count;
}

function sampleServer(listener: number): { stop(): Promise<ServerPeaks> } {
  let peaks: ServerPeaks = { connections: 0, startups: 0, rsyncs: 0, throttledMs: 0 };
  let running = true;
  const loop = (async () => {
    let last = Date.now();
    while (running) {
      const [connections, startups, rsyncs] = await Promise.all([
        childrenOf(listener).then((children) => children.length),
        startupsNow(listener),
        rsyncsUnder(listener),
      ]);
      peaks = {
        connections: Math.max(peaks.connections, connections),
        startups: Math.max(peaks.startups, startups),
        rsyncs: Math.max(peaks.rsyncs, rsyncs),
        // The time since the last sample, not SAMPLE_MS: reading /proc takes a while on a busy machine.
        throttledMs: peaks.throttledMs + (startups >= THROTTLE_FROM ? Date.now() - last : 0),
      };
      last = Date.now();
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peaks;
    },
  };
}

interface SshdLog {
  /** "drop connection #N from ... past MaxStartups": refused before any key exchange. */
  readonly dropped: number;
  /** "Connection from": connections sshd took (forked a child for). */
  readonly taken: number;
  readonly authenticated: number;
  /** Taken but closed before authenticating (the client gave up or was reset). */
  readonly closedPreauth: number;
}

async function sshdLogSize(target: SshTarget): Promise<number> {
  return (await stat(join(target.dir, 'sshd.log'))).size;
}

async function readSshdLog(target: SshTarget, from: number): Promise<SshdLog> {
  const lines = (await readFile(join(target.dir, 'sshd.log'))).subarray(from).toString('utf8').split('\n');
  const count = (pattern: RegExp): number => lines.filter((line) => pattern.test(line)).length;
  return {
    dropped: count(/^drop connection #\d+ from .* past MaxStartups/),
    taken: count(/^Connection from /),
    authenticated: count(/^Accepted publickey for /),
    closedPreauth: count(/^Connection (closed|reset) by .*\[preauth\]/),
  };
}

// ---------------------------------------------------------------- the agents

interface Agent {
  readonly name: string;
  readonly host: AgentHost;
  readonly files: DaemonFiles;
  readonly database: string;
  readonly url: string;
}

interface AgentOutcome {
  readonly name: string;
  readonly offsetMs: number;
  /** From the slot to the daemon starting the run; null when it never ran. */
  readonly startMs: number | null;
  /** From the run's start to the end of its MariaDB source. */
  readonly runMs: number | null;
  readonly endsAt: number | null;
  readonly result: string;
  readonly kind: string;
  readonly bytesDumped: number | null;
  readonly error: string;
  /** Commands (duplicity, rsync, ssh, ...) the agent logged as failed or timed out. */
  readonly failedCommands: number;
  /** Those of them whose stderr has ssh's own words for a refused or cut connection. */
  readonly refusals: number;
  /** duplicity's "Attempt N failed" in those commands' output. */
  readonly retries: number;
  readonly sharedConnection: boolean;
}

const REFUSAL = /kex_exchange_identification|Connection closed by|Connection reset by|connection unexpectedly closed/;
const RETRY = /^Attempt \d+ failed/;
/** A first run reads the chain of a directory that is not there yet; the agent takes that as "no chain". */
const FIRST_RUN = /change_dir .* failed: No such file or directory/;

function stderrOf(line: LogLine): string[] {
  const stderr = line['stderr'];
  return Array.isArray(stderr) ? stderr.filter((entry): entry is string => typeof entry === 'string') : [];
}

/** The daemon's run for this slot (the offset puts it after the slot), or null while there is none. */
function runOfSlot(state: StateOnDisk | null, slotAt: number): StateOnDisk['lastRun'] {
  const run = state?.lastRun ?? null;
  return run !== null && run.slot !== null && Date.parse(run.startedAt) >= slotAt ? run : null;
}

async function outcomeOf(agent: Agent, daemon: RunningDaemon, offsetMs: number, slotAt: number): Promise<AgentOutcome> {
  const state = await readStateFile(agent.files).catch(() => null);
  const ran = runOfSlot(state, slotAt);
  const source = ran === null ? null : (state?.sources['mysql']?.lastRun ?? null);
  const text = (name: string): string | null => {
    const value = source?.[name];
    return typeof value === 'string' ? value : null;
  };
  const startedAt = ran === null ? null : Date.parse(ran.startedAt);
  const finished = text('finishedAt');
  const endsAt = finished === null ? null : Date.parse(finished);
  const bytesDumped = source?.['bytesDumped'];
  const failed = daemon.logs.filter(
    (line) => line.level >= 40 && Array.isArray(line['argv']) && !stderrOf(line).some((text) => FIRST_RUN.test(text)),
  );
  const exited = daemon.exited.exitCode;
  const result = source !== null ? (text('result') ?? '?') : exited !== null ? `daemon exited (${exited})` : 'no run';
  return {
    name: agent.name,
    offsetMs,
    startMs: startedAt === null ? null : startedAt - slotAt,
    runMs: startedAt === null || endsAt === null ? null : endsAt - startedAt,
    endsAt,
    result,
    kind: text('kind') ?? '-',
    bytesDumped: typeof bytesDumped === 'number' ? bytesDumped : null,
    // The URL is long and the same for every agent but its name: the cause after it is what differs.
    error: (text('error') ?? ran?.reason ?? '').split(agent.url).join('<url>'),
    failedCommands: failed.length,
    refusals: failed.filter((line) => stderrOf(line).some((text) => REFUSAL.test(text))).length,
    retries: failed.flatMap(stderrOf).filter((text) => RETRY.test(text)).length,
    sharedConnection: daemon.logs.some(
      (line) =>
        Array.isArray(line['argv']) &&
        (line['argv'] as unknown[]).some((arg) => String(arg).includes('ControlMaster=auto')),
    ),
  };
}

/** Most runs in progress at one time, from each run's start and end. */
function peakOverlap(outcomes: readonly AgentOutcome[]): number {
  const edges: [number, number][] = [];
  for (const outcome of outcomes) {
    if (outcome.startMs === null || outcome.runMs === null) continue;
    edges.push([outcome.startMs, 1], [outcome.startMs + outcome.runMs, -1]);
  }
  // An end before a start at the same instant: back-to-back runs do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, step] of edges) peak = Math.max(peak, (now += step));
  return peak;
}

async function stopDaemons(daemons: readonly RunningDaemon[]): Promise<void> {
  // SIGTERM as systemd stops the unit: a daemon still in a run ends it and records that.
  for (const daemon of daemons) if (daemon.exited.exitCode === null) daemon.signal('SIGTERM');
  const allExited = Promise.all(daemons.map((daemon) => daemon.exited)).then(() => false);
  if (await Promise.race([allExited, sleep(STOP_TIMEOUT_MS, true, { ref: false })])) {
    log(`some daemons did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: killing them`);
    await killLeftoverDaemons();
  }
}

async function removeAgents(agents: readonly Agent[]): Promise<void> {
  for (const agent of agents) {
    await closeSshMasters(agent.host.cacheDir);
    await agent.host.remove();
  }
}

// ---------------------------------------------------------------- one scenario

interface Scenario {
  /** "spread = 0", "spread = 3m": as in the agents' config. */
  readonly label: string;
  readonly spreadMs: number;
  readonly outcomes: readonly AgentOutcome[];
  readonly server: ServerPeaks;
  readonly sshd: SshdLog;
  readonly slotAt: number;
  readonly timedOut: boolean;
  readonly load: { readonly start: string; readonly end: string };
}

interface Services {
  readonly mariadb: MariaDb;
  readonly target: SshTarget;
}

function agentName(index: number): string {
  return `herd${String(index + 1).padStart(2, '0')}`;
}

async function makeAgents(services: Services, options: Options, dir: string): Promise<Agent[]> {
  const agents: Agent[] = [];
  onCleanup(() => removeAgents(agents));
  for (let i = 0; i < options.agents; i++) {
    const name = agentName(i);
    const host = await makeAgentHost(services);
    // Its own account, as each host of a fleet has on its own database server.
    await services.mariadb.writeMyCnf(host.myCnf, { user: name, password: MYSQL_PASSWORD, socket: true });
    const files = await prepareDaemonFiles(host);
    // A directory per host on the one server, as a fleet's hosts are kept apart (rrsync per key).
    // The URL is part of the spread's hash, so it also gives each agent of this one machine its own slot.
    const path = join(dir, name);
    await mkdir(join(services.target.targetDir, path), { recursive: true, mode: 0o755 });
    agents.push({ name, host, files, database: name, url: `${services.target.url}/${path}` });
  }
  return agents;
}

async function configure(agents: readonly Agent[], schedule: string, spread: string): Promise<void> {
  for (const agent of agents) {
    await writeDaemonConfig(agent.host, agent.files, {
      // No catch-up: without a state file the daemon would run 30 s after its start, not at the slot.
      agent: { schedule, spread, catch_up: 'false' },
      target: { url: agent.url },
      mysql: { databases: agent.database },
    });
  }
}

function logLine(daemon: RunningDaemon, what: string, prefix: string): Promise<LogLine> {
  return daemon.waitForLog(what, (line) => line.msg.startsWith(prefix), 300_000);
}

async function runScenario(services: Services, options: Options, spread: string): Promise<Scenario> {
  const label = `spread = ${spread}`;
  const dir = `spread-${spread}`;
  const { target } = services;
  log(`${label}: setting up ${options.agents} agents`);
  const agents = await makeAgents(services, options, dir);
  await configure(agents, FAR_SCHEDULE, spread);

  log(`${label}: starting ${options.agents} daemons`);
  const daemons: RunningDaemon[] = [];
  onCleanup(() => stopDaemons(daemons));
  daemons.push(...agents.map((agent) => startDaemon(agent.host, { BACKUP_AGENT_LOG_LEVEL: 'info' })));
  let sampler: { stop(): Promise<ServerPeaks> } | undefined;
  try {
    const ready = await Promise.all(daemons.map((daemon) => logLine(daemon, 'daemon ready', 'daemon ready')));
    const spreadMs = Number(ready[0]?.['spreadMs'] ?? 0);
    const offsets = ready.map((line) => Number(line['offsetMs'] ?? 0));

    // The slot is set only now, through SIGHUP: however long 20 node start-ups take on a busy
    // machine, every daemon already waits when it comes.
    const slot = slotIn(SLOT_LEAD_S);
    await configure(agents, slot.cron, spread);
    for (const daemon of daemons) daemon.signal('SIGHUP');
    await Promise.all(daemons.map((daemon) => logLine(daemon, 'the reload', 'configuration reloaded')));
    if (Date.now() >= slot.at.getTime()) throw new Error(`the daemons took the slot only after it had passed`);

    const logFrom = await sshdLogSize(target);
    const loadStart = await loadAverage();
    sampler = sampleServer(await listenerPid(target));
    log(`${label}: slot ${slot.at.toISOString()}, spread ${secs(spreadMs)}; waiting for every run to end`);
    const slotAt = slot.at.getTime();
    const deadline = slotAt + spreadMs + options.timeoutMs;
    let timedOut = false;
    for (let done = 0; done < agents.length;) {
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      await sleep(1000);
      const finished = await Promise.all(
        agents.map(async (agent, i) => {
          if (daemons[i]?.exited.exitCode !== null) return true;
          return runOfSlot(await readStateFile(agent.files).catch(() => null), slotAt) !== null;
        }),
      );
      const now = finished.filter(Boolean).length;
      if (now !== done) log(`${label}: ${now} of ${agents.length} runs ended`);
      done = now;
    }
    const server = await sampler.stop();
    const loadEnd = await loadAverage();
    await stopDaemons(daemons);
    const outcomes = await Promise.all(
      agents.map((agent, i) => {
        const daemon = daemons[i];
        if (daemon === undefined) throw new Error(`no daemon for ${agent.name}`);
        return outcomeOf(agent, daemon, offsets[i] ?? 0, slotAt);
      }),
    );
    const sshd = await readSshdLog(target, logFrom);
    return { label, spreadMs, outcomes, server, sshd, slotAt, timedOut, load: { start: loadStart, end: loadEnd } };
  } finally {
    await sampler?.stop();
    await stopDaemons(daemons);
    await removeAgents(agents);
    await removeDir(join(target.targetDir, dir));
  }
}

// ---------------------------------------------------------------- report

/**
 * The peak the offsets alone predict: most agents whose slot falls within one median run time. The
 * mean of ceil(agents x run / spread) is not the peak: hashed offsets fall like random ones, in clusters.
 */
function peakByOffsets(scenario: Scenario): number {
  const run = median(scenario.outcomes.flatMap((outcome) => (outcome.runMs === null ? [] : [outcome.runMs])));
  const offsets = scenario.outcomes.map((outcome) => outcome.offsetMs);
  return Math.max(0, ...offsets.map((from) => offsets.filter((at) => at >= from && at < from + run).length));
}

function expectedPeak(scenario: Scenario, agents: number): string {
  if (scenario.spreadMs === 0) return `${agents} (all at once)`;
  const run = median(scenario.outcomes.flatMap((outcome) => (outcome.runMs === null ? [] : [outcome.runMs])));
  if (Number.isNaN(run)) return '-';
  const peak = Math.min(agents, Math.ceil((agents * run) / scenario.spreadMs));
  return `${peak} (${agents} x ${secs(run)} / ${secs(scenario.spreadMs)})`;
}

function sum(outcomes: readonly AgentOutcome[], pick: (outcome: AgentOutcome) => number): number {
  return outcomes.reduce((total, outcome) => total + pick(outcome), 0);
}

function formatSummary(scenarios: readonly Scenario[], agents: number): string {
  const connections: string[][] = [
    [
      'scenario',
      'ok',
      'failed',
      'sshd dropped',
      'taken',
      'authenticated',
      'attempts per agent',
      'failed commands',
      'ssh refusals',
      'duplicity retries',
    ],
  ];
  const load: string[][] = [
    [
      'scenario',
      'peak connections',
      'expected peak',
      'peak by offsets',
      'peak runs',
      'peak pre-auth',
      'throttled',
      'peak rsync',
      'run median / max',
      'slot -> last end',
    ],
  ];
  for (const s of scenarios) {
    const runs = s.outcomes.flatMap((outcome) => (outcome.runMs === null ? [] : [outcome.runMs]));
    const ends = s.outcomes.flatMap((outcome) => (outcome.endsAt === null ? [] : [outcome.endsAt]));
    const ok = s.outcomes.filter((outcome) => outcome.result === 'ok').length;
    connections.push([
      s.label,
      String(ok),
      String(s.outcomes.length - ok),
      String(s.sshd.dropped),
      String(s.sshd.taken),
      String(s.sshd.authenticated),
      ((s.sshd.taken + s.sshd.dropped) / s.outcomes.length).toFixed(2),
      String(sum(s.outcomes, (outcome) => outcome.failedCommands)),
      String(sum(s.outcomes, (outcome) => outcome.refusals)),
      String(sum(s.outcomes, (outcome) => outcome.retries)),
    ]);
    load.push([
      s.label,
      String(s.server.connections),
      expectedPeak(s, agents),
      String(peakByOffsets(s)),
      String(peakOverlap(s.outcomes)),
      String(s.server.startups),
      secs(s.server.throttledMs),
      String(s.server.rsyncs),
      runs.length === 0 ? '-' : `${secs(median(runs))} / ${secs(Math.max(...runs))}`,
      ends.length === 0 ? '-' : `${secs(Math.max(...ends) - s.slotAt)}${s.timedOut ? ' (timed out)' : ''}`,
    ]);
  }
  return [
    table(connections, new Set([1, 2, 3, 4, 5, 6, 7, 8, 9])),
    '',
    table(load, new Set([1, 3, 4, 5, 6, 7, 8, 9])),
  ].join('\n');
}

function formatAgents(scenario: Scenario): string {
  const rows: string[][] = [['agent', 'offset', 'start', 'run', 'kind', 'result', 'dumped', 'failed cmds', 'error']];
  const optional = (ms: number | null): string => (ms === null ? '-' : secs(ms));
  for (const outcome of [...scenario.outcomes].sort((a, b) => (a.startMs ?? Infinity) - (b.startMs ?? Infinity))) {
    rows.push([
      outcome.name,
      secs(outcome.offsetMs),
      optional(outcome.startMs),
      optional(outcome.runMs),
      outcome.kind,
      outcome.result,
      outcome.bytesDumped === null ? '-' : mib(outcome.bytesDumped, 2),
      String(outcome.failedCommands),
      outcome.error.length > 160 ? `${outcome.error.slice(0, 157)}...` : outcome.error,
    ]);
  }
  return [
    `== ${scenario.label}: every agent (start = from the slot to the run's start; load ${scenario.load.start} -> ${scenario.load.end}) ==`,
    table(rows, new Set([1, 2, 3, 6, 7])),
  ].join('\n');
}

async function header(options: Options, services: Services, root: string): Promise<string> {
  // What sshd itself makes of its config: the harness leaves MaxStartups out, so this is the default.
  const effective = await execa('/usr/sbin/sshd', ['-T', '-f', join(services.target.dir, 'sshd_config')], {
    reject: false,
    stdin: 'ignore',
  });
  const sshd = effective.stdout
    .split('\n')
    .filter((line) => /^(maxstartups|loglevel|logingracetime) /.test(line))
    .join(', ');
  const cpu = cpus();
  const debian = (await readFile('/etc/debian_version', 'utf8').catch(() => '?')).trim();
  const head = await firstLine('git', ['-C', REPO, 'log', '-1', '--format=%h %s']);
  return [
    `herd: ${options.agents} backup-agent daemons, one MariaDB (a database of ${options.rows.toLocaleString('en')} rows per agent), one sshd`,
    `date: ${new Date().toISOString()}; HEAD ${head}`,
    `machine: ${hostname()}, ${cpu.length} x ${cpu[0]?.model ?? '?'}, Debian ${debian}, kernel ${release()}`,
    `tools: node ${process.version}; ${await firstLine('duplicity', ['--version'])}; ${await firstLine('ssh', ['-V'])}; ` +
      `server ${await services.mariadb.sql('SELECT VERSION()')}`,
    `sshd (sshd -T): ${sshd}`,
    `temp: ${root}; load average at start: ${await loadAverage()}`,
    'each agent: the daemon (dist/main.js daemon, as root, dropping to backup), symmetric gpg (the default),',
    '  its own target directory <target>/<scenario>/<agent> (part of the spread hash: one machine, many slots).',
    `sampling: sshd's listener every ${SAMPLE_MS} ms (children = connections; title = unauthenticated "startups")`,
  ].join('\n');
}

const LEGEND = [
  'sshd dropped: "drop connection ... past MaxStartups" in its log (refused before the key exchange);',
  '  taken: connections sshd forked for; authenticated: "Accepted publickey";',
  '  attempts per agent: (taken + dropped) / agents; a run without retries needs 1 (one shared connection).',
  "failed commands, ssh refusals, duplicity retries: from the agents' logs: commands logged as failed or timed",
  '  out, those of them with ssh\'s refusal in their stderr, and duplicity\'s "Attempt N failed" lines (the first',
  '  run\'s expected "no such directory" is left out; a retry that then succeeded is not logged: see attempts).',
  'peak connections / pre-auth / rsync: sampled on the server every 200 ms; pre-auth is what MaxStartups counts;',
  '  throttled: time with 10 or more unauthenticated connections, when sshd refuses a share of new ones.',
  'expected peak: ceil(agents x median run / spread), the mean; peak by offsets: most agents whose offsets lie',
  '  within one median run time (hashed offsets cluster like random ones); peak runs: most runs in progress at',
  '  once (state files); start, run and offset per agent are in the tables above.',
].join('\n');

async function main(options: Options): Promise<void> {
  if (process.getuid?.() !== 0) usage('run it as root: the daemons drop to backup themselves, as under systemd');
  if ((await stat(join(REPO, 'dist', 'main.js')).catch(() => undefined)) === undefined)
    usage('dist/main.js does not exist: run npm run build first');

  // Under /var/tmp this prefix leaves each agent's cache dir at 44 bytes, within the 45 that leave
  // room for ssh's ControlPath socket: longer, the agents would run without their shared connection.
  const root = await mkdtemp(join(options.tmp, 'herd-'));
  onCleanup(() => removeDir(root));
  await chmod(root, 0o755);
  process.env['TMPDIR'] = root;

  log('starting MariaDB and sshd');
  const [mariadbStarted, targetStarted] = await Promise.allSettled([startMariaDb(), startSshTarget()]);
  if (mariadbStarted.status === 'fulfilled') onCleanup(() => mariadbStarted.value.stop());
  if (targetStarted.status === 'fulfilled') onCleanup(() => targetStarted.value.stop());
  if (mariadbStarted.status === 'rejected') throw mariadbStarted.reason;
  if (targetStarted.status === 'rejected') throw targetStarted.reason;
  const services: Services = { mariadb: mariadbStarted.value, target: targetStarted.value };

  log(`seeding ${options.agents} databases`);
  for (let i = 0; i < options.agents; i++) {
    const name = agentName(i);
    await seedDatabase(services.mariadb, name, options.rows);
    await services.mariadb.createBackupUser(name, MYSQL_PASSWORD, [name]);
  }
  process.stdout.write(`${await header(options, services, root)}\n\n`);

  const scenarios: Scenario[] = [];
  for (const spread of ['0', options.spread]) {
    const scenario = await runScenario(services, options, spread);
    scenarios.push(scenario);
    process.stdout.write(`${formatAgents(scenario)}\n\n`);
  }
  const shared = scenarios.every((s) => s.outcomes.every((outcome) => outcome.sharedConnection));
  process.stdout.write(
    [
      `== summary: ${options.agents} agents, one sshd (MaxStartups 10:30:100) ==`,
      formatSummary(scenarios, options.agents),
      LEGEND,
      ...(shared
        ? []
        : ['NOTE: some agents ran without their shared ssh connection (cache dir too long for the ControlPath).']),
      `load average at end: ${await loadAverage()}`,
    ].join('\n') + '\n',
  );
}

const options = parseOptions();
await runBenchmark(() => main(options));
