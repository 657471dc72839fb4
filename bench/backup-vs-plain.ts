// backup-agent vs the plain lab workflow (mysqldump > file; duplicity full|incremental) on the same
// MariaDB database and the same rsync+ssh target, over loopback and over a shaped link (100 Mbit/s,
// 20 ms round trip, in a network namespace), encrypted (symmetric gpg) and not, with a probe of the
// live database's latency. See bench/README.md.
//
//   node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3]
//        [--links loopback,shaped] [--encryption gpg,none] [--agent deb|dist] [--deb FILE]
//        [--probe-rate 50] [--idle-s 4] [--tmp /var/tmp] [--json FILE]
//
// Runs as root, like the agent in production (it drops to `backup` itself); the plain workflow runs
// as `backup` through setpriv, like the lab's cron job. Everything it starts (mariadbd, sshds, the
// namespace and its veth, the relay, the probe's client, ssh masters, gpg-agents) is stopped and its
// temp dir removed at the end, also on failure and on SIGINT/SIGTERM.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { PASSPHRASE, makeAgentHost } from '../test/harness/agent.js';
import { type MariaDb, startMariaDb } from '../test/harness/mariadb.js';
import { startSshTarget } from '../test/harness/ssh-target.js';
import { asBackupUser, chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';
import { log, onCleanup, runBenchmark, startBoth } from './cleanup.js';
import { DATABASE, applyChange, checksum, generate, revertChange, shapeFor } from './dataset.js';
import { type Artefact, distAgent, shippedAgent } from './artefact.js';
import { MiB, addedBytes, firstLine, listTree, loadAverage, median } from './measure.js';
import { type ShapedTarget, startShapedTarget } from './netns-link.js';
import { type Probe, startProbe } from './probe.js';
import {
  type RoundResult,
  type SizeResult,
  formatOptionDiff,
  formatProbe,
  formatSize,
  formatSummary,
} from './report.js';
import {
  type AgentResult,
  type Kind,
  type PlainSetup,
  closeSshMasters,
  plainCommands,
  runAgent,
  runPlain,
  stopRunningChildren,
} from './workflows.js';
import { exitWithUsage, positiveInt } from './options.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const USAGE =
  'usage: node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3] ' +
  '[--links loopback,shaped] [--encryption gpg,none] [--agent deb|dist] [--deb FILE] [--probe-rate 50] [--idle-s 4] ' +
  '[--tmp /var/tmp] [--json FILE]';
const LINKS = ['loopback', 'shaped'] as const;
type LinkName = (typeof LINKS)[number];
const ENCRYPTIONS = ['gpg', 'none'] as const;
type Encryption = (typeof ENCRYPTIONS)[number];
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
  readonly agent: 'deb' | 'dist';
  readonly deb: string | undefined;
  readonly probeRate: number;
  readonly idleMs: number;
  readonly tmp: string;
  readonly json: string | undefined;
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
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    rounds: positiveInt(USAGE, values.rounds, '--rounds'),
    links: listOption(values.links, LINKS, '--links'),
    encryptions: listOption(values.encryption, ENCRYPTIONS, '--encryption'),
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

/** What one measured configuration (encryption × link) uses. */
interface Setting {
  readonly link: Link;
  readonly encryption: Encryption;
  readonly plain: PlainSetup;
  readonly plainTarget: string;
  readonly agentTarget: string;
}

interface Bench {
  readonly mariadb: MariaDb;
  readonly probe: Probe;
  readonly agent: Artefact;
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
  const lines = [
    'backup-agent vs plain lab workflow (mysqldump > file; duplicity full|incremental), MariaDB source only',
    `date: ${new Date().toISOString()}`,
    `machine: ${hostname()}, ${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `Debian ${debian}, kernel ${release()}`,
    `tools: node ${process.version}; ${await firstLine('duplicity', ['--version'])}; ${await firstLine('mariadb-dump', ['--version'])}; ` +
      `server ${await mariadb.sql('SELECT VERSION()')}`,
    `agent: HEAD ${head}, src/ ${dirty}; runs ${agent.description}`,
    `temp: ${root} (${(freeBytes / 1024 ** 3).toFixed(0)} GiB free at start)`,
    `load average at start: ${await loadAverage()} (${cpu.length} cores; on a shared machine see the load per round)`,
    `encryption: ${options.encryptions.join(', ')}. gpg = symmetric gpg, the default of both: plain without`,
    '  --no-encryption, PASSPHRASE and GNUPGHOME in its environment (as the lab exports them); the agent with',
    '  target.encryption = symmetric and its passphrase_file. none = plain --no-encryption, agent encryption = none.',
    ...links.map((link) => `link ${link.label}: ${link.url.replace(/^(rsync:\/\/[^/]+).*$/, '$1')}`),
    ...linkNotes.map((note) => `  ${note}`),
    "target: <target>/plain and <target>/agent/mysql on the link's sshd; one MariaDB; every round starts from",
    '  empty targets, archive dirs and staging dirs, then full, 1 % change, incremental.',
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
  await rm(setting.plainTarget, { recursive: true, force: true });
  await rm(join(setting.link.targetDir, 'agent'), { recursive: true, force: true });
  await mkdir(setting.plainTarget, { recursive: true, mode: 0o755 });
  await mkdir(setting.agentTarget, { recursive: true, mode: 0o755 });
  for (const dir of [bench.plainArchiveDir, bench.plainStagingDir, bench.agentCache, bench.agentStaging]) {
    await emptyDirectory(dir);
  }
}

/** The probe's latencies in a quiet window: nothing of the benchmark runs meanwhile. */
async function idleWindow(bench: Bench): Promise<number[]> {
  await execa('sync', [], { stdin: 'ignore' });
  const from = performance.now();
  await new Promise((done) => setTimeout(done, bench.idleMs));
  return bench.probe.between(from, performance.now()).map((sample) => sample.ms);
}

async function measurePlain(bench: Bench, setting: Setting, kind: Kind): Promise<RoundResult['plain']> {
  // Dirty pages of the previous run must not be written back during this one.
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTree(setting.plainTarget);
  const from = performance.now();
  const result = await runPlain(setting.plain, kind);
  const probeMs = bench.probe.between(from, performance.now()).map((sample) => sample.ms);
  const added = addedBytes(before, await listTree(setting.plainTarget));
  return { result, stored: added.bytes, storedFiles: added.files, load, probeMs };
}

async function measureAgent(bench: Bench, setting: Setting, kind: Kind): Promise<RoundResult['agent']> {
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTree(setting.agentTarget);
  const from = performance.now();
  const result = await runAgent(bench.agent.main, bench.configFile, kind, {
    node: bench.agent.node,
    nodeArgs: bench.agent.nodeArgs,
  });
  const probeMs = bench.probe.between(from, performance.now()).map((sample) => sample.ms);
  await closeSshMasters(bench.agentCache);
  if (result.exitCode !== 0) throw agentFailure(kind, result);
  const reported = result.summary?.['kind'];
  if (reported !== kind) {
    throw new Error(
      `expected a ${kind} backup, the agent's summary says ${String(reported)}:\n${JSON.stringify(result.summary)}`,
    );
  }
  const added = addedBytes(before, await listTree(setting.agentTarget));
  return { result, stored: added.bytes, storedFiles: added.files, load, probeMs };
}

function agentFailure(kind: Kind, result: AgentResult): Error {
  const problems = result.logs.filter((line) => line.level >= 40).map((line) => JSON.stringify(line));
  return new Error(
    `backup-agent run (${kind}) failed with exit code ${result.exitCode}\n--- stderr ---\n${result.stderr}\n` +
      `--- warnings/errors logged ---\n${problems.join('\n')}`,
  );
}

/** The rounds of one setting on the data generated for `shape`. */
async function runSetting(
  bench: Bench,
  setting: Setting,
  shape: ReturnType<typeof shapeFor>,
  baseline: string,
  generateMs: number,
): Promise<SizeResult> {
  await bench.configure(setting);
  const what = `${setting.encryption}/${setting.link.name}/${shape.sizeMiB} MiB`;
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= bench.rounds; round++) {
    const plainFirst = round % 2 === 1;
    await revertChange(bench.mariadb, shape);
    const now = await checksum(bench.mariadb);
    if (now !== baseline) {
      throw new Error(`round ${round} would not start from the generated data: ${now} vs ${baseline}`);
    }
    await resetForFull(bench, setting);

    for (const kind of ['full', 'incremental'] as const) {
      if (kind === 'incremental') await applyChange(bench.mariadb, shape);
      const idleProbeMs = await idleWindow(bench);
      let plain: RoundResult['plain'] | undefined;
      let agent: RoundResult['agent'] | undefined;
      for (const which of plainFirst ? (['plain', 'agent'] as const) : (['agent', 'plain'] as const)) {
        log(`${what} round ${round}/${bench.rounds} ${kind}: ${which}`);
        const done =
          which === 'plain'
            ? (plain = await measurePlain(bench, setting, kind))
            : (agent = await measureAgent(bench, setting, kind));
        log(`  ${(done.result.wallMs / 1000).toFixed(1)} s, stored ${(done.stored / MiB).toFixed(2)} MiB`);
      }
      if (plain === undefined || agent === undefined) throw new Error('both workflows run in every round');
      rounds.push({ round, kind, order: plainFirst ? 'plain first' : 'agent first', plain, agent, idleProbeMs });
    }
  }
  const dumpBytes = median(rounds.filter((r) => r.kind === 'full').map((r) => r.plain.result.dumpBytes));
  return { link: setting.link.label, encryption: setting.encryption, shape, generateMs, dumpBytes, rounds };
}

async function runSize(bench: Bench, settings: readonly Setting[], sizeMiB: number): Promise<SizeResult[]> {
  const shape = shapeFor(sizeMiB);
  log(`generating ${DATABASE} for ${sizeMiB} MiB: ${shape.documents} documents, ${shape.events} events`);
  const generateStarted = performance.now();
  await generate(bench.mariadb, shape);
  const generateMs = performance.now() - generateStarted;
  const baseline = await checksum(bench.mariadb);
  log(`generated in ${(generateMs / 1000).toFixed(1)} s`);
  const results: SizeResult[] = [];
  for (const setting of settings) {
    const result = await runSetting(bench, setting, shape, baseline, generateMs);
    results.push(result);
    process.stdout.write(`${formatSize(result)}\n\n`);
  }
  return results;
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

  const host = await makeAgentHost({ mariadb, target });
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
  for (const encryption of options.encryptions) {
    for (const link of links) {
      settings.push({
        link,
        encryption,
        plain: {
          myCnf: host.myCnf,
          stagingDir: plainStagingDir,
          archiveDir: plainArchiveDir,
          url: `${link.url}/plain`,
          sshKey: link.clientKey,
          knownHosts: link.knownHosts,
          database: DATABASE,
          ...(encryption === 'gpg' ? { encryption: { passphrase: PASSPHRASE, gnupgHome: plainGnupg } } : {}),
        },
        plainTarget: join(link.targetDir, 'plain'),
        agentTarget: join(link.targetDir, 'agent', 'mysql'),
      });
    }
  }

  const bench: Bench = {
    mariadb,
    probe,
    agent,
    configFile: host.configFile,
    agentCache: host.cacheDir,
    agentStaging: host.stagingDir,
    plainArchiveDir,
    plainStagingDir,
    rounds: options.rounds,
    idleMs: options.idleMs,
    configure: (setting) =>
      host.writeConfig({
        target: {
          url: `${setting.link.url}/agent`,
          known_hosts: setting.link.knownHosts,
          ssh_key: setting.link.clientKey,
          encryption: setting.encryption === 'gpg' ? 'symmetric' : 'none',
        },
      }),
  };

  const top = await header(options, mariadb, root, freeBytes, agent, links, linkNotes);
  process.stdout.write(`${top}\n\n`);

  const sizes: SizeResult[] = [];
  for (const sizeMiB of options.sizes) sizes.push(...(await runSize(bench, settings, sizeMiB)));

  const lastFull = sizes
    .at(-1)
    ?.rounds.filter((r) => r.kind === 'full')
    .at(-1);
  const lastSetting = settings.at(-1);
  const agentArgv = (label: string): readonly string[] =>
    lastFull?.agent.result.commands.find((command) => command.label === label)?.argv ?? [];
  const commands = lastSetting === undefined ? undefined : plainCommands(lastSetting.plain, 'full');
  process.stdout.write(
    [
      '== summary (medians over rounds; ratios agent / plain) ==',
      formatSummary(sizes),
      '',
      formatProbe(sizes, options.probeRate),
      ...(probe.late > 0 ? [`probe: ${probe.late} ticks found a query still unanswered after 1 s`] : []),
      '',
      `what each side ran (the last setting, full; the incremental is the same with \`incremental\`, and \`run\``,
      'without --full):',
      ...(commands === undefined || lastSetting === undefined
        ? []
        : [
            `  plain: ${commands.dump.join(' ')} > ${join(lastSetting.plain.stagingDir, `${DATABASE}.sql`)}`,
            `         ${commands.duplicity.map((arg) => (arg.includes(' ') ? `'${arg}'` : arg)).join(' ')}` +
              (lastSetting.plain.encryption === undefined ? '' : '  (PASSPHRASE=… GNUPGHOME=… in its environment)'),
            `  agent: ${agent.node} ${agent.nodeArgs.join(' ')} ${agent.main} --config ${host.configFile} run --full, which ran:`,
            ...(lastFull?.agent.result.commands ?? []).map((command) => `         ${command.argv.join(' ')}`),
            formatOptionDiff('dump options', commands.dump, agentArgv('mariadb-dump'), 1),
            formatOptionDiff('duplicity full options', commands.duplicity, agentArgv('duplicity full'), 2),
          ]),
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
