// backup-agent vs the plain lab workflow (mysqldump > file; duplicity full|incremental) on the same
// MariaDB database and the same rsync+ssh target, over loopback and over a shaped link (100 Mbit/s,
// 20 ms round trip, in a network namespace), encrypted (symmetric gpg) and not, with a probe of the
// live database's latency. The `two` scenario adds a PostgreSQL database of the same size as the
// MariaDB one (half the total each): plain dumps and uploads one source after the other, as a cron
// script would; the agent backs both up in one run. At the end it times the bundle's start-up.
// See bench/README.md.
//
//   node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3]
//        [--links loopback,shaped] [--encryption gpg,none] [--scenarios single,two]
//        [--agent-set section.key=value ...] [--agent-env NAME=value ...] [--agent deb|dist] [--deb FILE]
//        [--probe-rate 50] [--idle-s 4] [--tmp /var/tmp] [--json FILE]
//
// Runs as root, like the agent in production (it drops to `backup` itself); the plain workflow runs
// as `backup` through setpriv, like the lab's cron job. Everything it starts (mariadbd, postgres,
// sshds, the namespace and its veth, the relay, the probe's client, ssh masters, gpg-agents) is
// stopped and its temp dir removed at the end, also on failure and on SIGINT/SIGTERM.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { type IniOverrides, PASSPHRASE, PG_DATABASE, makeAgentHost } from '../test/harness/agent.js';
import { type MariaDb, startMariaDb } from '../test/harness/mariadb.js';
import { type Postgres, startPostgres } from '../test/harness/postgres.js';
import { startSshTarget } from '../test/harness/ssh-target.js';
import { asBackupUser, chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';
import { log, onCleanup, runBenchmark, startBoth } from './cleanup.js';
import { DATABASE, type DatasetShape, applyChange, checksum, generate, revertChange, shapeFor } from './dataset.js';
import { applyPgChange, generatePg, revertPgChange } from './pg-dataset.js';
import { type Artefact, distAgent, shippedAgent } from './artefact.js';
import { MiB, addedBytes, firstLine, listTree, loadAverage, median } from './measure.js';
import { type ShapedTarget, startShapedTarget } from './netns-link.js';
import { type Probe, startProbe } from './probe.js';
import {
  type RoundResult,
  type SizeResult,
  formatOptionDiff,
  formatPerSource,
  formatProbe,
  formatSize,
  formatSummary,
} from './report.js';
import { formatStartup } from './startup.js';
import {
  type AgentResult,
  type Kind,
  type PlainSetup,
  closeSshMasters,
  plainCommands,
  plainDumpFile,
  runAgent,
  runPlain,
  runPlainSequence,
  stopRunningChildren,
} from './workflows.js';
import { exitWithUsage, positiveInt } from './options.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const USAGE =
  'usage: node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3] ' +
  '[--links loopback,shaped] [--encryption gpg,none] [--scenarios single,two] [--agent-set section.key=value ...] ' +
  '[--agent-env NAME=value ...] [--agent deb|dist] [--deb FILE] [--probe-rate 50] [--idle-s 4] ' +
  '[--tmp /var/tmp] [--json FILE]';
const LINKS = ['loopback', 'shaped'] as const;
type LinkName = (typeof LINKS)[number];
const ENCRYPTIONS = ['gpg', 'none'] as const;
type Encryption = (typeof ENCRYPTIONS)[number];
const SCENARIOS = ['single', 'two'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** The sources of each scenario's host, in the order its plain cron script runs them. */
const SOURCES_OF: Readonly<Record<Scenario, readonly ('mysql' | 'postgresql')[]>> = {
  single: ['mysql'],
  two: ['mysql', 'postgresql'],
};
/** Sections --agent-set may name: the agent's own (no [influxdb]: no scenario has InfluxDB). */
const INI_SECTIONS = ['agent', 'deadlines', 'target', 'mysql', 'postgresql', 'notify', 'metrics'] as const;
type IniSection = (typeof INI_SECTIONS)[number] & keyof IniOverrides;
/** Keys the benchmark sets for each setting: overriding them would measure another target or profile. */
const OWN_KEYS: ReadonlySet<string> = new Set([
  'target.url',
  'target.known_hosts',
  'target.ssh_key',
  'target.encryption',
]);
/** Timed starts of each start-up command. */
const STARTS = 10;
/** The shaped link: the rate and round trip of issue 14. */
const SHAPE = { rateMbit: 100, rttMs: 20 } as const;
/**
 * Disk per MiB of dump, an estimate with room to spare: the InnoDB files, the plain staged dump, the
 * agent's staged dump and the next one beside it, both targets (0.35 each, measured), volumes in flight.
 */
const DISK_PER_DUMP_MIB = 7;

interface Options {
  readonly sizes: readonly number[];
  readonly rounds: number;
  readonly links: readonly LinkName[];
  readonly encryptions: readonly Encryption[];
  readonly scenarios: readonly Scenario[];
  /** --agent-set: keys written into the agent's ini for the whole run, after the benchmark's own. */
  readonly agentSet: readonly AgentSetting[];
  /** --agent-env: added to the agent's environment for every start. */
  readonly agentEnv: Readonly<Record<string, string>>;
  readonly agent: 'deb' | 'dist';
  readonly deb: string | undefined;
  readonly probeRate: number;
  readonly idleMs: number;
  readonly tmp: string;
  readonly json: string | undefined;
}

interface AgentSetting {
  readonly section: IniSection;
  readonly key: string;
  readonly value: string;
}

/** `section.key=value`: a section of the agent's ini, a key of the agent's spelling, a one-line value. */
function agentSetting(text: string, scenarios: readonly Scenario[]): AgentSetting {
  const match = /^([a-z_]+)\.([a-z0-9_]+)=(.*)$/.exec(text);
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined)
    usage(`--agent-set: "${text}" is not section.key=value (e.g. target.volume_size=25)`);
  const [section, key, value] = [match[1], match[2], match[3]];
  if (!(INI_SECTIONS as readonly string[]).includes(section))
    usage(`--agent-set: "${section}" is not one of the sections ${INI_SECTIONS.join(', ')}`);
  if (OWN_KEYS.has(`${section}.${key}`))
    usage(
      `--agent-set: ${section}.${key} is set by the benchmark for each link and profile (see --links, --encryption)`,
    );
  if (section === 'postgresql' && !scenarios.includes('two'))
    usage('--agent-set: only the two scenario has a [postgresql] section (--scenarios two)');
  return { section: section as IniSection, key, value };
}

/** `NAME=value`, NAME as a shell would accept it. */
function agentEnvironment(texts: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const text of texts) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(text);
    if (match?.[1] === undefined || match[2] === undefined)
      usage(`--agent-env: "${text}" is not NAME=value (e.g. NODE_COMPILE_CACHE=/var/cache/backup-agent/node)`);
    env[match[1]] = match[2];
  }
  return env;
}

function listOption<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const values = text.split(',').map((part) => part.trim());
  for (const value of values) {
    if (!(allowed as readonly string[]).includes(value))
      usage(`${what}: "${value}" is not one of ${allowed.join(', ')}`);
  }
  return [...new Set(values as T[])];
}

function usage(message: string): never {
  return exitWithUsage(USAGE, message);
}

function parseOptions(): Options {
  let values;
  try {
    values = parseArgs({
      options: {
        'size-mb': { type: 'string' },
        sizes: { type: 'string' },
        rounds: { type: 'string', default: '3' },
        links: { type: 'string', default: LINKS.join(',') },
        encryption: { type: 'string', default: ENCRYPTIONS.join(',') },
        scenarios: { type: 'string', default: 'single' },
        'agent-set': { type: 'string', multiple: true, default: [] },
        'agent-env': { type: 'string', multiple: true, default: [] },
        agent: { type: 'string', default: 'deb' },
        deb: { type: 'string' },
        'probe-rate': { type: 'string', default: '50' },
        'idle-s': { type: 'string', default: '4' },
        tmp: { type: 'string', default: '/var/tmp' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
  if (values.help) usage('backup-agent vs plain mysqldump + duplicity');
  if (values['size-mb'] !== undefined && values.sizes !== undefined) usage('give either --size-mb or --sizes');
  const sizes = (values.sizes ?? values['size-mb'] ?? '50,500')
    .split(',')
    .map((part) => positiveInt(USAGE, part.trim(), '--sizes/--size-mb'));
  if (values.agent !== 'deb' && values.agent !== 'dist') usage('--agent is deb or dist');
  if (values.deb !== undefined && values.agent !== 'deb') usage('--deb goes with --agent deb');
  const scenarios = listOption(values.scenarios, SCENARIOS, '--scenarios');
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    rounds: positiveInt(USAGE, values.rounds, '--rounds'),
    links: listOption(values.links, LINKS, '--links'),
    encryptions: listOption(values.encryption, ENCRYPTIONS, '--encryption'),
    scenarios,
    agentSet: values['agent-set'].map((text) => agentSetting(text, scenarios)),
    agentEnv: agentEnvironment(values['agent-env']),
    agent: values.agent,
    deb: values.deb === undefined ? undefined : resolve(values.deb),
    probeRate: positiveInt(USAGE, values['probe-rate'], '--probe-rate'),
    idleMs: positiveInt(USAGE, values['idle-s'], '--idle-s') * 1000,
    tmp: resolve(values.tmp),
    json: values.json === undefined ? undefined : resolve(values.json),
  };
}

// ---------------------------------------------------------------- set-up

/** One link's target, as both sides reach it. */
interface Link {
  readonly name: LinkName;
  /** For the tables. */
  readonly label: string;
  /** Where the target keeps its files on this machine. */
  readonly targetDir: string;
  /** duplicity URL of targetDir. */
  readonly url: string;
  readonly knownHosts: string;
  readonly clientKey: string;
}

/** What one measured configuration (scenario × encryption × link) uses. */
interface Setting {
  readonly scenario: Scenario;
  readonly link: Link;
  readonly encryption: Encryption;
  /** The plain workflow of each source, in the order the cron script runs them. */
  readonly plain: Readonly<Record<string, PlainSetup>>;
  /** Each plain source's directory on the target. */
  readonly plainTargets: readonly string[];
  /** Each source's directory under the agent's target, made beforehand as an operator does. */
  readonly agentTargets: readonly string[];
}

interface Bench {
  readonly mariadb: MariaDb;
  readonly probe: Probe;
  readonly agent: Artefact;
  readonly agentEnv: Readonly<Record<string, string>>;
  readonly configFile: string;
  readonly agentCache: string;
  readonly agentStaging: string;
  readonly plainArchiveDir: string;
  readonly plainStagingDir: string;
  readonly rounds: number;
  readonly idleMs: number;
  /** Rewrites the agent's config for this setting. */
  configure(setting: Setting): Promise<void>;
}

/** A scenario's generated data: every round restores it exactly before its full. */
interface Data {
  /** For the progress lines: the size asked, and how it is split. */
  readonly label: string;
  readonly shape: DatasetShape;
  readonly generateMs: number;
  /** What proves the data is the generated one (CHECKSUM TABLE; PostgreSQL's rows hashed). */
  fingerprint(): Promise<string>;
  /** The change before the incremental: 1 % updated, 0.5 % added, in every database. */
  change(): Promise<void>;
  revert(): Promise<void>;
}

async function sourcesNewerThan(dir: string, than: number): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await stat(path)).mtimeMs > than) found.push(path.slice(REPO.length + 1));
  }
  return found;
}

async function header(
  options: Options,
  mariadb: MariaDb,
  pg: Postgres | undefined,
  root: string,
  freeBytes: number,
  agent: Artefact,
  links: readonly Link[],
  linkNotes: readonly string[],
): Promise<string> {
  const built = await stat(join(REPO, 'dist', 'main.js'));
  const head = await firstLine('git', ['-C', REPO, 'log', '-1', '--format=%h %s']);
  const dirty =
    (await firstLine('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'])) === ''
      ? 'clean'
      : 'uncommitted changes';
  const newer = await sourcesNewerThan(join(REPO, 'src'), built.mtimeMs);
  const cpu = cpus();
  const debian = (await readFile('/etc/debian_version', 'utf8').catch(() => '?')).trim();
  const twoNote = [
    `two: MariaDB ${DATABASE} and PostgreSQL ${PG_DATABASE}, each generated at half the size. plain, as a cron`,
    `  script, one after the other: mysqldump > staging/mysql/${DATABASE}.sql, duplicity staging/mysql <target>/plain-mysql,`,
    `  pg_dump --format=custom --compress=0 --create > staging/postgresql/${PG_DATABASE}.dump (the agent's format; no`,
    '  globals), duplicity staging/postgresql <target>/plain-postgresql; the agent: one run with [mysql] and',
    '  [postgresql], its sources side by side, to <target>/agent/{mysql,postgresql}. The probe stays on MariaDB.',
  ];
  const lines = [
    `backup-agent vs plain lab workflow (mysqldump > file; duplicity full|incremental); scenarios ${options.scenarios.join(', ')}`,
    `date: ${new Date().toISOString()}`,
    `machine: ${hostname()}, ${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `Debian ${debian}, kernel ${release()}`,
    `tools: node ${process.version}; ${await firstLine('duplicity', ['--version'])}; ${await firstLine('mariadb-dump', ['--version'])}; ` +
      `server ${await mariadb.sql('SELECT VERSION()')}` +
      (pg === undefined
        ? ''
        : `; ${await firstLine('pg_dump', ['--version'])}; PostgreSQL server ${await pg.sql('SHOW server_version')}`),
    `agent: HEAD ${head}, src/ ${dirty}; runs ${agent.description}`,
    `temp: ${root} (${(freeBytes / 1024 ** 3).toFixed(0)} GiB free at start)`,
    `load average at start: ${await loadAverage()} (${cpu.length} cores; on a shared machine see the load per round)`,
    `encryption: ${options.encryptions.join(', ')}. gpg = symmetric gpg, the default of both: plain without`,
    '  --no-encryption, PASSPHRASE and GNUPGHOME in its environment (as the lab exports them); the agent with',
    '  target.encryption = symmetric and its passphrase_file. none = plain --no-encryption, agent encryption = none.',
    ...links.map((link) => `link ${link.label}: ${link.url.replace(/^(rsync:\/\/[^/]+).*$/, '$1')}`),
    ...linkNotes.map((note) => `  ${note}`),
    ...(options.scenarios.includes('single')
      ? ["single: MariaDB only; <target>/plain and <target>/agent/mysql on the link's sshd."]
      : []),
    ...(options.scenarios.includes('two') ? twoNote : []),
    'every round starts from empty targets, archive dirs and staging dirs, then full, 1 % change, incremental.',
    `agent ini set by --agent-set (after the benchmark's own keys${options.scenarios.includes('single') ? '; postgresql.* in two only' : ''}): ` +
      (options.agentSet.length === 0
        ? 'none'
        : options.agentSet.map(({ section, key, value }) => `${section}.${key} = ${value}`).join(', ')),
    `agent environment added by --agent-env: ${
      Object.keys(options.agentEnv).length === 0
        ? 'none'
        : Object.entries(options.agentEnv)
            .map(([name, value]) => `${name}=${value}`)
            .join(' ')
    }`,
    `probe: ${options.probeRate}/s primary-key reads and updates on probe.accounts over one client connection;`,
    `  idle = the ${options.idleMs / 1000} s before each pair of runs, with nothing else running.`,
    `rounds: ${options.rounds} per size; order alternates (odd rounds plain first, even rounds agent first);`,
    '  wall = the whole workflow; stored = bytes of the files the backup added on its target.',
  ];
  if (newer.length > 0 && options.agent === 'dist') {
    lines.push(
      `WARNING: ${newer.length} file(s) in src/ are newer than dist/ (${newer.slice(0, 3).join(', ')}): run npm run build`,
    );
  }
  return lines.join('\n');
}

async function emptyDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}

/** Empty targets (their directories present, as after setting the host up), archive dirs and staging. */
async function resetForFull(bench: Bench, setting: Setting): Promise<void> {
  await closeSshMasters(bench.agentCache);
  for (const dir of setting.plainTargets) await rm(dir, { recursive: true, force: true });
  await rm(join(setting.link.targetDir, 'agent'), { recursive: true, force: true });
  for (const dir of [...setting.plainTargets, ...setting.agentTargets])
    await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const dir of [bench.plainArchiveDir, bench.plainStagingDir, bench.agentCache, bench.agentStaging]) {
    await emptyDirectory(dir);
  }
  // The two-source script's per-source staging dirs, inside the plain staging dir just emptied.
  for (const { stagingDir } of Object.values(setting.plain)) {
    if (stagingDir === bench.plainStagingDir) continue;
    await mkdir(stagingDir, { mode: 0o700 });
    await chownToBackup(stagingDir);
  }
}

/** The files under several target directories, keyed by their full path: one listing for addedBytes. */
async function listTrees(dirs: readonly string[]): Promise<Map<string, number>> {
  const all = new Map<string, number>();
  for (const dir of dirs) for (const [name, size] of await listTree(dir)) all.set(join(dir, name), size);
  return all;
}

/** The probe's latencies in a quiet window: nothing of the benchmark runs meanwhile. */
async function idleWindow(bench: Bench): Promise<number[]> {
  await execa('sync', [], { stdin: 'ignore' });
  const from = performance.now();
  await new Promise((done) => setTimeout(done, bench.idleMs));
  return bench.probe.between(from, performance.now()).map((sample) => sample.ms);
}

async function measurePlain(
  bench: Bench,
  setting: Setting,
  kind: Kind,
): Promise<{ measured: RoundResult['plain']; bySource?: RoundResult['plainBySource'] }> {
  // Dirty pages of the previous run must not be written back during this one.
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTrees(setting.plainTargets);
  const from = performance.now();
  const setups = Object.values(setting.plain);
  // One source: the workflow exactly as before issue 14's two-source host, timed by runPlain itself.
  const { total: result, bySource } =
    setups.length === 1 && setups[0] !== undefined
      ? { total: await runPlain(setups[0], kind), bySource: undefined }
      : await runPlainSequence(setting.plain, kind);
  const probeMs = bench.probe.between(from, performance.now()).map((sample) => sample.ms);
  const added = addedBytes(before, await listTrees(setting.plainTargets));
  return { measured: { result, stored: added.bytes, storedFiles: added.files, load, probeMs }, bySource };
}

async function measureAgent(bench: Bench, setting: Setting, kind: Kind): Promise<RoundResult['agent']> {
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTrees(setting.agentTargets);
  const from = performance.now();
  const result = await runAgent(bench.agent.main, bench.configFile, kind, {
    node: bench.agent.node,
    nodeArgs: bench.agent.nodeArgs,
    env: bench.agentEnv,
  });
  const probeMs = bench.probe.between(from, performance.now()).map((sample) => sample.ms);
  await closeSshMasters(bench.agentCache);
  if (result.exitCode !== 0) throw agentFailure(kind, result);
  for (const source of SOURCES_OF[setting.scenario]) {
    const summary = result.summaries[source];
    if (summary?.['kind'] !== kind) {
      throw new Error(
        `expected a ${kind} backup of ${source}, the agent's summary says ${String(summary?.['kind'])}:\n${JSON.stringify(summary)}`,
      );
    }
  }
  const added = addedBytes(before, await listTrees(setting.agentTargets));
  return { result, stored: added.bytes, storedFiles: added.files, load, probeMs };
}

function agentFailure(kind: Kind, result: AgentResult): Error {
  const problems = result.logs.filter((line) => line.level >= 40).map((line) => JSON.stringify(line));
  return new Error(
    `backup-agent run (${kind}) failed with exit code ${result.exitCode}\n--- stderr ---\n${result.stderr}\n` +
      `--- warnings/errors logged ---\n${problems.join('\n')}`,
  );
}

/** The rounds of one setting on the scenario's generated data. */
async function runSetting(bench: Bench, setting: Setting, data: Data, baseline: string): Promise<SizeResult> {
  await bench.configure(setting);
  const what = `${setting.scenario}/${setting.encryption}/${setting.link.name}/${data.label}`;
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= bench.rounds; round++) {
    const plainFirst = round % 2 === 1;
    await data.revert();
    const now = await data.fingerprint();
    if (now !== baseline) {
      throw new Error(`round ${round} would not start from the generated data: ${now} vs ${baseline}`);
    }
    await resetForFull(bench, setting);

    for (const kind of ['full', 'incremental'] as const) {
      if (kind === 'incremental') await data.change();
      const idleProbeMs = await idleWindow(bench);
      let plain: Awaited<ReturnType<typeof measurePlain>> | undefined;
      let agent: RoundResult['agent'] | undefined;
      for (const which of plainFirst ? (['plain', 'agent'] as const) : (['agent', 'plain'] as const)) {
        log(`${what} round ${round}/${bench.rounds} ${kind}: ${which}`);
        const done =
          which === 'plain'
            ? (plain = await measurePlain(bench, setting, kind)).measured
            : (agent = await measureAgent(bench, setting, kind));
        log(`  ${(done.result.wallMs / 1000).toFixed(1)} s, stored ${(done.stored / MiB).toFixed(2)} MiB`);
      }
      if (plain === undefined || agent === undefined) throw new Error('both workflows run in every round');
      rounds.push({
        round,
        kind,
        order: plainFirst ? 'plain first' : 'agent first',
        plain: plain.measured,
        agent,
        idleProbeMs,
        ...(plain.bySource === undefined ? {} : { plainBySource: plain.bySource }),
      });
    }
  }
  const dumpBytes = median(rounds.filter((r) => r.kind === 'full').map((r) => r.plain.result.dumpBytes));
  return {
    scenario: setting.scenario,
    sources: SOURCES_OF[setting.scenario],
    link: setting.link.label,
    encryption: setting.encryption,
    shape: data.shape,
    generateMs: data.generateMs,
    dumpBytes,
    rounds,
  };
}

/** Generates the scenario's databases: agama alone at the size, or agama and shop at half of it each. */
async function generateData(mariadb: MariaDb, pg: Postgres | undefined, scenario: Scenario, sizeMiB: number) {
  const shape = shapeFor(scenario === 'two' ? sizeMiB / 2 : sizeMiB);
  const both = scenario === 'two' ? pg : undefined;
  if (scenario === 'two' && both === undefined) throw new Error('the two scenario needs PostgreSQL');
  log(
    `generating ${[DATABASE, ...(both ? [PG_DATABASE] : [])].join(' and ')} for ${sizeMiB} MiB: ` +
      `${shape.documents} documents, ${shape.events} events${both ? ' in each' : ''}`,
  );
  const started = performance.now();
  await generate(mariadb, shape);
  if (both) await generatePg(both, PG_DATABASE, shape);
  const data: Data = {
    label: both ? `${sizeMiB} MiB (${shape.sizeMiB} + ${shape.sizeMiB})` : `${sizeMiB} MiB`,
    shape,
    generateMs: performance.now() - started,
    fingerprint: async () =>
      [await checksum(mariadb), ...(both ? [await both.fingerprint(PG_DATABASE)] : [])].join(' / '),
    change: async () => {
      await applyChange(mariadb, shape);
      if (both) await applyPgChange(both, PG_DATABASE, shape);
    },
    revert: async () => {
      await revertChange(mariadb, shape);
      if (both) await revertPgChange(both, PG_DATABASE, shape);
    },
  };
  log(`generated in ${(data.generateMs / 1000).toFixed(1)} s`);
  return data;
}

async function runSize(
  bench: Bench,
  pg: Postgres | undefined,
  settings: readonly Setting[],
  sizeMiB: number,
): Promise<SizeResult[]> {
  const results: SizeResult[] = [];
  for (const scenario of SCENARIOS) {
    const mine = settings.filter((setting) => setting.scenario === scenario);
    if (mine.length === 0) continue;
    const data = await generateData(bench.mariadb, pg, scenario, sizeMiB);
    const baseline = await data.fingerprint();
    for (const setting of mine) {
      const result = await runSetting(bench, setting, data, baseline);
      results.push(result);
      process.stdout.write(`${formatSize(result)}\n\n`);
    }
  }
  return results;
}

/**
 * The cron script's PostgreSQL dump: the agent's archive format (pg_dump --format=custom --compress=0
 * --create, src/sources/postgresql/commands.ts) so that both sides store the same kind of file; as the
 * backup user, peer login as the role `backup` through the server's socket dir. No globals.sql: a
 * hand-written script rarely has it.
 */
function plainPgDump(pg: Postgres): { argv: string[]; file: string } {
  return {
    argv: [
      'pg_dump',
      `--host=${pg.socketDir}`,
      `--port=${pg.port}`,
      '--format=custom',
      '--compress=0',
      '--create',
      `--dbname=${PG_DATABASE}`,
    ],
    file: `${PG_DATABASE}.dump`,
  };
}

/**
 * The agent's ini for a setting: the link's target and the profile, the scenario's sources, then
 * --agent-set. makeAgentHost writes [postgresql] when it was given the server; the single host has
 * MariaDB only, so there the section goes, and so do --agent-set's postgresql keys.
 */
function agentIni(setting: Setting, agentSet: readonly AgentSetting[]): IniOverrides {
  const ini: IniOverrides = {
    target: {
      url: `${setting.link.url}/agent`,
      known_hosts: setting.link.knownHosts,
      ssh_key: setting.link.clientKey,
      encryption: setting.encryption === 'gpg' ? 'symmetric' : 'none',
    },
    postgresql: SOURCES_OF[setting.scenario].includes('postgresql') ? {} : null,
  };
  for (const { section, key, value } of agentSet) {
    const current = ini[section];
    if (current === null) continue;
    ini[section] = { ...current, [key]: value };
  }
  return ini;
}

/** setpriv's arguments for `ssh <target> <command>` as the backup user, with the link's key and host key. */
async function sshAsBackup(link: Link, command: string): Promise<string[]> {
  const match = /^rsync:\/\/root@([^:]+):(\d+)\//.exec(link.url);
  if (match?.[1] === undefined || match[2] === undefined) throw new Error(`unexpected target URL ${link.url}`);
  return asBackupUser([
    'ssh',
    '-p',
    match[2],
    '-i',
    link.clientKey,
    `-oUserKnownHostsFile=${link.knownHosts}`,
    '-oStrictHostKeyChecking=yes',
    '-oBatchMode=yes',
    `root@${match[1]}`,
    command,
  ]);
}

/** Wall time of `ssh target true` as backup, median of 5: what one new connection costs on the link. */
async function sshLoginMs(link: Link): Promise<number> {
  const args = await sshAsBackup(link, 'true');
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await execa('setpriv', args, { stdin: 'ignore', timeout: 20_000 });
    times.push(performance.now() - started);
  }
  return median(times);
}

/** MiB/s of 32 MiB of random bytes piped through ssh into /dev/null on the target: the link's rate. */
async function sshThroughput(link: Link, root: string): Promise<number> {
  const file = join(root, 'random-32m');
  await execa('head', ['-c', String(32 * MiB), '/dev/urandom'], { stdout: { file } });
  await chmod(file, 0o644);
  const args = await sshAsBackup(link, 'cat > /dev/null');
  const started = performance.now();
  await execa('setpriv', args, { stdin: { file }, timeout: 120_000 });
  const seconds = (performance.now() - started) / 1000;
  await rm(file, { force: true });
  return 32 / seconds;
}

async function main(options: Options): Promise<void> {
  if (process.getuid?.() !== 0)
    usage('run it as root: the agent drops to backup itself, the plain workflow runs as backup');
  if (options.agent === 'dist') {
    const built = await stat(join(REPO, 'dist', 'main.js')).catch(() => undefined);
    if (built === undefined) usage('dist/main.js does not exist: run npm run build first (npm run bench does)');
  }

  const root = await mkdtemp(join(options.tmp, 'bab-'));
  onCleanup(() => removeDir(root));
  // The backup user must reach its files inside, and the harness's temp dirs go here through TMPDIR.
  await chmod(root, 0o755);
  process.env['TMPDIR'] = root;
  const fs = await statfs(root);
  const freeBytes = fs.bavail * fs.bsize;
  const neededBytes = Math.max(...options.sizes) * MiB * DISK_PER_DUMP_MIB;
  if (freeBytes < neededBytes) {
    throw new Error(
      `${options.tmp} has ${(freeBytes / MiB).toFixed(0)} MiB free, the run needs about ${(neededBytes / MiB).toFixed(0)} MiB`,
    );
  }
  const agent = options.agent === 'deb' ? await shippedAgent(root, options.deb) : await distAgent(root);
  log(`agent: ${agent.description}`);

  log('starting MariaDB and sshd');
  const [mariadb, target] = await startBoth(startMariaDb(), startSshTarget());
  let pg: Postgres | undefined;
  if (options.scenarios.includes('two')) {
    log('starting PostgreSQL');
    // startPostgres removes its own dir when it fails; once started, the cleanup stops it.
    const started = await startPostgres();
    onCleanup(() => started.stop());
    pg = started;
  }

  const links: Link[] = [];
  const linkNotes: string[] = [];
  for (const name of options.links) {
    if (name === 'loopback') {
      links.push({
        name,
        label: 'loopback',
        targetDir: target.targetDir,
        url: target.url,
        knownHosts: target.knownHosts,
        clientKey: target.clientKey,
      });
    } else {
      log(`making the shaped link (${SHAPE.rateMbit} Mbit/s, ${SHAPE.rttMs} ms round trip)`);
      const shaped: ShapedTarget = await startShapedTarget(join(root, 'shaped-target'), target.clientKey, SHAPE);
      linkNotes.push(shaped.description);
      links.push({
        name,
        label: `${SHAPE.rateMbit} Mbit/s ${SHAPE.rttMs} ms`,
        targetDir: shaped.targetDir,
        url: shaped.url,
        knownHosts: shaped.knownHosts,
        clientKey: shaped.clientKey,
      });
    }
  }
  for (const link of links) {
    const [loginMs, rate] = [await sshLoginMs(link), await sshThroughput(link, root)];
    linkNotes.push(
      `${link.label}: a new ssh login takes ${loginMs.toFixed(0)} ms (median of 5); ssh carries ${rate.toFixed(1)} MiB/s ` +
        `(${((rate * 8 * MiB) / 1e6).toFixed(0)} Mbit/s, 32 MiB of random bytes into /dev/null)`,
    );
    log(linkNotes.at(-1) ?? '');
  }

  // With the server, the host's ini has a [postgresql] section (the role `backup`, peer login through
  // the server's socket dir, database shop); the single scenario's configure removes it.
  const host = await makeAgentHost({ mariadb, target, ...(pg === undefined ? {} : { postgres: pg }) });
  onCleanup(() => host.remove());
  onCleanup(() => closeSshMasters(host.cacheDir));

  const plainDir = await makeTempDir('plain');
  const plainStagingDir = join(plainDir, 'staging');
  const plainArchiveDir = join(plainDir, 'archive');
  const plainGnupg = join(plainDir, 'gnupg');
  for (const dir of [plainStagingDir, plainArchiveDir, plainGnupg]) await mkdir(dir, { mode: 0o700 });
  await chownToBackup(plainDir);
  onCleanup(() =>
    execa('setpriv', ['--reuid=backup', '--regid=backup', '--init-groups', '--', 'gpgconf', '--kill', 'all'], {
      env: { ...process.env, GNUPGHOME: plainGnupg },
      reject: false,
    }),
  );
  // Registered last, so it runs first: the rounds' children are stopped before their files go.
  onCleanup(stopRunningChildren);

  log(`starting the probe (${options.probeRate} queries/s)`);
  const probe = await startProbe(mariadb, options.probeRate);
  onCleanup(() => probe.stop());

  const settings: Setting[] = [];
  for (const scenario of SCENARIOS.filter((name) => options.scenarios.includes(name))) {
    for (const encryption of options.encryptions) {
      for (const link of links) {
        const common = {
          myCnf: host.myCnf,
          archiveDir: plainArchiveDir,
          sshKey: link.clientKey,
          knownHosts: link.knownHosts,
          database: DATABASE,
          ...(encryption === 'gpg' ? { encryption: { passphrase: PASSPHRASE, gnupgHome: plainGnupg } } : {}),
        };
        // single: the lab's workflow as before (staging/agama.sql to <target>/plain). two: each source
        // its own staging dir, duplicity name and target dir, as a cron script would keep them apart.
        const plain: Record<string, PlainSetup> =
          scenario === 'single'
            ? { mysql: { ...common, stagingDir: plainStagingDir, url: `${link.url}/plain` } }
            : Object.fromEntries(
                SOURCES_OF.two.map((source) => [
                  source,
                  {
                    ...common,
                    stagingDir: join(plainStagingDir, source),
                    url: `${link.url}/plain-${source}`,
                    name: `plain-${source}`,
                    ...(source === 'postgresql' && pg !== undefined ? { dump: plainPgDump(pg) } : {}),
                  },
                ]),
              );
        settings.push({
          scenario,
          link,
          encryption,
          plain,
          plainTargets:
            scenario === 'single'
              ? [join(link.targetDir, 'plain')]
              : SOURCES_OF.two.map((source) => join(link.targetDir, `plain-${source}`)),
          agentTargets: SOURCES_OF[scenario].map((source) => join(link.targetDir, 'agent', source)),
        });
      }
    }
  }

  const bench: Bench = {
    mariadb,
    probe,
    agent,
    agentEnv: options.agentEnv,
    configFile: host.configFile,
    agentCache: host.cacheDir,
    agentStaging: host.stagingDir,
    plainArchiveDir,
    plainStagingDir,
    rounds: options.rounds,
    idleMs: options.idleMs,
    configure: (setting) => host.writeConfig(agentIni(setting, options.agentSet)),
  };

  const top = await header(options, mariadb, pg, root, freeBytes, agent, links, linkNotes);
  process.stdout.write(`${top}\n\n`);

  const sizes: SizeResult[] = [];
  for (const sizeMiB of options.sizes) sizes.push(...(await runSize(bench, pg, settings, sizeMiB)));

  // After the rounds: the state file then holds runs, as on a host where an operator asks for status.
  log(`timing the start-up: ${STARTS} starts each of --help, --version and status`);
  const startup = await formatStartup(agent, host.configFile, options.agentEnv, STARTS);

  const lastFull = sizes
    .at(-1)
    ?.rounds.filter((r) => r.kind === 'full')
    .at(-1);
  const lastSetting = settings.at(-1);
  const agentArgv = (label: string, source = 'mysql'): readonly string[] =>
    lastFull?.agent.result.commands.find((command) => command.label === label && command.source === source)?.argv ?? [];
  const plainLines = Object.entries(lastSetting?.plain ?? {}).flatMap(([source, setup]) => {
    const commands = plainCommands(setup, 'full');
    return [
      `  plain ${source}: ${commands.dump.join(' ')} > ${plainDumpFile(setup)}`,
      `         ${commands.duplicity.map((arg) => (arg.includes(' ') ? `'${arg}'` : arg)).join(' ')}` +
        (setup.encryption === undefined ? '' : '  (PASSPHRASE=… GNUPGHOME=… in its environment)'),
    ];
  });
  const diffLines = Object.entries(lastSetting?.plain ?? {}).flatMap(([source, setup]) => {
    const commands = plainCommands(setup, 'full');
    // mysqldump names the database as its last word; pg_dump here and in the agent with --dbname.
    const [client, positionals] = source === 'postgresql' ? ['pg_dump', 0] : ['mariadb-dump', 1];
    return [
      formatOptionDiff(`${source} dump options`, commands.dump, agentArgv(client, source), positionals),
      formatOptionDiff(`${source} duplicity full options`, commands.duplicity, agentArgv('duplicity full', source), 2),
    ];
  });
  const perSource = formatPerSource(sizes);
  process.stdout.write(
    [
      '== summary (medians over rounds; ratios agent / plain) ==',
      formatSummary(sizes),
      '',
      ...(perSource === '' ? [] : [perSource, '']),
      formatProbe(sizes, options.probeRate),
      ...(probe.late > 0 ? [`probe: ${probe.late} ticks found a query still unanswered after 1 s`] : []),
      '',
      startup,
      '',
      `what each side ran (the last setting, full; the incremental is the same with \`incremental\`, and \`run\``,
      'without --full):',
      ...plainLines,
      `  agent: ${agent.node} ${agent.nodeArgs.join(' ')} ${agent.main} --config ${host.configFile} run --full, which ran:`,
      ...(lastFull?.agent.result.commands ?? []).map((command) => `         ${command.argv.join(' ')}`),
      ...diffLines,
      ...(agentArgv('duplicity full').some((arg) => arg.includes('-oControlMaster=auto'))
        ? []
        : [
            "NOTE: the agent ran without its shared ssh connection: its cache dir is too long for ssh's",
            '  ControlPath socket (107 bytes), so it dropped ControlMaster. A shorter --tmp measures the default.',
          ]),
      '',
      `load average at end: ${await loadAverage()}`,
    ].join('\n') + '\n',
  );

  if (options.json !== undefined) {
    await writeFile(options.json, `${JSON.stringify({ header: top, sizes }, null, 2)}\n`);
    log(`raw results written to ${options.json}`);
  }
}

const options = parseOptions();
await runBenchmark(() => main(options));
