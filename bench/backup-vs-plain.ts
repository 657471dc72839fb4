// backup-agent vs the plain lab workflow (mysqldump > file; duplicity full|incremental) on the same
// MariaDB database and the same loopback rsync+ssh target. See bench/README.md.
//
//   node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3]
//                                              [--tmp /var/tmp] [--json FILE]
//
// Runs as root, like the agent in production (it drops to `backup` itself); the plain workflow runs
// as `backup` through setpriv, like the lab's cron job. Everything it starts (mariadbd, sshd, ssh
// masters) is stopped and its temp dir removed at the end, also on failure and on SIGINT/SIGTERM.
import { execFileSync } from 'node:child_process';
import {
  chmod,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  statfs,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { NODE_FLAG, makeAgentHost } from '../test/harness/agent.js';
import { type MariaDb, startMariaDb } from '../test/harness/mariadb.js';
import { type SshTarget, startSshTarget } from '../test/harness/ssh-target.js';
import { chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';
import { cleanUpOnSignals, cleanup, log, onCleanup } from './cleanup.js';
import { DATABASE, applyChange, checksum, generate, revertChange, shapeFor } from './dataset.js';
import { MiB, addedBytes, listTree, loadAverage, median } from './measure.js';
import { type RoundResult, type SizeResult, formatOptionDiff, formatSize, formatSummary } from './report.js';
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
  'usage: node --import tsx bench/backup-vs-plain.ts [--sizes 50,500 | --size-mb 500] [--rounds 3] [--tmp /var/tmp] [--json FILE]';
/**
 * Disk per MiB of dump, an estimate with room to spare: the InnoDB files, the plain staged dump, the
 * agent's staged dump and the next one beside it, both targets (0.35 each, measured), volumes in flight.
 */
const DISK_PER_DUMP_MIB = 7;

interface Options {
  readonly sizes: readonly number[];
  readonly rounds: number;
  readonly tmp: string;
  readonly json: string | undefined;
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
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    rounds: positiveInt(USAGE, values.rounds, '--rounds'),
    tmp: resolve(values.tmp),
    json: values.json === undefined ? undefined : resolve(values.json),
  };
}

cleanUpOnSignals();

// ---------------------------------------------------------------- set-up

interface Bench {
  readonly mariadb: MariaDb;
  readonly target: SshTarget;
  readonly agentMain: string;
  readonly configFile: string;
  readonly agentCache: string;
  readonly agentStaging: string;
  readonly plain: PlainSetup;
  readonly plainTarget: string;
  readonly agentTarget: string;
  readonly rounds: number;
}

/**
 * Other people rebuild dist/ on this machine while the benchmark runs; a private copy keeps every
 * round on the same agent. node_modules is linked, not copied: it does not change during a run.
 */
async function snapshotAgent(root: string): Promise<string> {
  const dir = join(root, 'agent-build');
  await mkdir(dir, { mode: 0o755 });
  await cp(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true });
  await copyFile(join(REPO, 'package.json'), join(dir, 'package.json'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'dist', 'main.js');
}

function firstLine(file: string, args: readonly string[]): string {
  try {
    return (
      execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .trim()
        .split('\n')[0] ?? '?'
    );
  } catch {
    return `${file}: ?`;
  }
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

async function header(options: Options, mariadb: MariaDb, root: string, freeBytes: number): Promise<string> {
  const built = await stat(join(REPO, 'dist', 'main.js'));
  const head = firstLine('git', ['-C', REPO, 'log', '-1', '--format=%h %s']);
  const dirty =
    firstLine('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']) === '' ? 'clean' : 'uncommitted changes';
  const newer = await sourcesNewerThan(join(REPO, 'src'), built.mtimeMs);
  const cpu = cpus();
  const debian = (await readFile('/etc/debian_version', 'utf8').catch(() => '?')).trim();
  const lines = [
    'backup-agent vs plain lab workflow (mysqldump > file; duplicity full|incremental), MariaDB source only',
    `date: ${new Date().toISOString()}`,
    `machine: ${hostname()}, ${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `Debian ${debian}, kernel ${release()}`,
    `tools: node ${process.version}; ${firstLine('duplicity', ['--version'])}; ${firstLine('mariadb-dump', ['--version'])}; ` +
      `server ${await mariadb.sql('SELECT VERSION()')}`,
    `agent: dist/ built ${built.mtime.toISOString()}, HEAD ${head}, src/ ${dirty}; run from a copy of dist/`,
    `temp: ${root} (${(freeBytes / 1024 ** 3).toFixed(0)} GiB free at start)`,
    `load average at start: ${await loadAverage()} (${cpu.length} cores; on a shared machine see the load per round)`,
    'encryption: none on both sides, as in the lab (plain: --no-encryption; agent: target.encryption = none).',
    "  The agent's default is symmetric gpg (little CPU, ~10 % more bytes per peer-baselines.md); not measured here.",
    'target: one sshd on 127.0.0.1 (ephemeral port), <target>/plain and <target>/agent/mysql; one MariaDB; every',
    '  round starts from empty targets, archive dirs and staging dirs, then full, 1 % change, incremental.',
    `rounds: ${options.rounds} per size; order alternates (odd rounds plain first, even rounds agent first);`,
    '  wall = the whole workflow; stored = bytes of the files the backup added on its target.',
  ];
  if (newer.length > 0) {
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
async function resetForFull(bench: Bench): Promise<void> {
  await closeSshMasters(bench.agentCache);
  await rm(bench.plainTarget, { recursive: true, force: true });
  await rm(join(bench.target.targetDir, 'agent'), { recursive: true, force: true });
  await mkdir(bench.plainTarget, { recursive: true, mode: 0o755 });
  await mkdir(bench.agentTarget, { recursive: true, mode: 0o755 });
  for (const dir of [bench.plain.archiveDir, bench.plain.stagingDir, bench.agentCache, bench.agentStaging]) {
    await emptyDirectory(dir);
  }
}

// ---------------------------------------------------------------- measuring

async function measurePlain(bench: Bench, kind: Kind): Promise<RoundResult['plain']> {
  // Dirty pages of the previous run must not be written back during this one.
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTree(bench.plainTarget);
  const result = await runPlain(bench.plain, kind);
  const added = addedBytes(before, await listTree(bench.plainTarget));
  return { result, stored: added.bytes, storedFiles: added.files, load };
}

async function measureAgent(bench: Bench, kind: Kind): Promise<RoundResult['agent']> {
  await execa('sync', [], { stdin: 'ignore' });
  const load = (await loadAverage()).split(' ')[0] ?? '?';
  const before = await listTree(bench.agentTarget);
  const result = await runAgent(bench.agentMain, bench.configFile, kind);
  await closeSshMasters(bench.agentCache);
  if (result.exitCode !== 0) throw agentFailure(kind, result);
  const reported = result.summary?.['kind'];
  if (reported !== kind) {
    throw new Error(
      `expected a ${kind} backup, the agent's summary says ${String(reported)}:\n${JSON.stringify(result.summary)}`,
    );
  }
  const added = addedBytes(before, await listTree(bench.agentTarget));
  return { result, stored: added.bytes, storedFiles: added.files, load };
}

function agentFailure(kind: Kind, result: AgentResult): Error {
  const problems = result.logs.filter((line) => line.level >= 40).map((line) => JSON.stringify(line));
  return new Error(
    `backup-agent run (${kind}) failed with exit code ${result.exitCode}\n--- stderr ---\n${result.stderr}\n` +
      `--- warnings/errors logged ---\n${problems.join('\n')}`,
  );
}

async function runSize(bench: Bench, sizeMiB: number): Promise<SizeResult> {
  const shape = shapeFor(sizeMiB);
  log(`generating ${DATABASE} for ${sizeMiB} MiB: ${shape.documents} documents, ${shape.events} events`);
  const generateStarted = performance.now();
  await generate(bench.mariadb, shape);
  const generateMs = performance.now() - generateStarted;
  const baseline = await checksum(bench.mariadb);
  log(`generated in ${(generateMs / 1000).toFixed(1)} s`);

  const rounds: RoundResult[] = [];
  for (let round = 1; round <= bench.rounds; round++) {
    const plainFirst = round % 2 === 1;
    await revertChange(bench.mariadb, shape);
    const now = await checksum(bench.mariadb);
    if (now !== baseline) {
      throw new Error(`round ${round} would not start from the generated data: ${now} vs ${baseline}`);
    }
    await resetForFull(bench);

    for (const kind of ['full', 'incremental'] as const) {
      if (kind === 'incremental') await applyChange(bench.mariadb, shape);
      let plain: RoundResult['plain'] | undefined;
      let agent: RoundResult['agent'] | undefined;
      for (const which of plainFirst ? (['plain', 'agent'] as const) : (['agent', 'plain'] as const)) {
        log(`${sizeMiB} MiB round ${round}/${bench.rounds} ${kind}: ${which}`);
        const done =
          which === 'plain' ? (plain = await measurePlain(bench, kind)) : (agent = await measureAgent(bench, kind));
        log(`  ${(done.result.wallMs / 1000).toFixed(1)} s, stored ${(done.stored / MiB).toFixed(2)} MiB`);
      }
      if (plain === undefined || agent === undefined) throw new Error('both workflows run in every round');
      rounds.push({ round, kind, order: plainFirst ? 'plain first' : 'agent first', plain, agent });
    }
  }
  const dumpBytes = median(rounds.filter((r) => r.kind === 'full').map((r) => r.plain.result.dumpBytes));
  return { shape, generateMs, dumpBytes, rounds };
}

async function main(options: Options): Promise<void> {
  if (process.getuid?.() !== 0)
    usage('run it as root: the agent drops to backup itself, the plain workflow runs as backup');
  const built = await stat(join(REPO, 'dist', 'main.js')).catch(() => undefined);
  if (built === undefined) usage('dist/main.js does not exist: run npm run build first (npm run bench does)');

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
  const agentMain = await snapshotAgent(root);

  log('starting MariaDB and sshd');
  const [mariadbStarted, targetStarted] = await Promise.allSettled([startMariaDb(), startSshTarget()]);
  if (mariadbStarted.status === 'fulfilled') onCleanup(() => mariadbStarted.value.stop());
  if (targetStarted.status === 'fulfilled') onCleanup(() => targetStarted.value.stop());
  if (mariadbStarted.status === 'rejected') throw mariadbStarted.reason;
  if (targetStarted.status === 'rejected') throw targetStarted.reason;
  const mariadb = mariadbStarted.value;
  const target = targetStarted.value;

  const host = await makeAgentHost({ mariadb, target });
  onCleanup(() => host.remove());
  onCleanup(() => closeSshMasters(host.cacheDir));
  await host.writeConfig({ target: { url: `${target.url}/agent`, encryption: 'none' } });

  const plainDir = await makeTempDir('plain');
  const plain: PlainSetup = {
    myCnf: host.myCnf,
    stagingDir: join(plainDir, 'staging'),
    archiveDir: join(plainDir, 'archive'),
    url: `${target.url}/plain`,
    sshKey: target.clientKey,
    knownHosts: target.knownHosts,
    database: DATABASE,
  };
  await mkdir(plain.stagingDir, { mode: 0o700 });
  await mkdir(plain.archiveDir, { mode: 0o700 });
  await chownToBackup(plainDir);
  // Registered last, so it runs first: the rounds' children are stopped before their files go.
  onCleanup(stopRunningChildren);

  const bench: Bench = {
    mariadb,
    target,
    agentMain,
    configFile: host.configFile,
    agentCache: host.cacheDir,
    agentStaging: host.stagingDir,
    plain,
    plainTarget: join(target.targetDir, 'plain'),
    agentTarget: join(target.targetDir, 'agent', 'mysql'),
    rounds: options.rounds,
  };

  const top = await header(options, mariadb, root, freeBytes);
  process.stdout.write(`${top}\n\n`);

  const sizes: SizeResult[] = [];
  for (const sizeMiB of options.sizes) {
    const size = await runSize(bench, sizeMiB);
    sizes.push(size);
    process.stdout.write(`${formatSize(size)}\n\n`);
  }

  const lastFull = sizes
    .at(-1)
    ?.rounds.filter((r) => r.kind === 'full')
    .at(-1);
  const agentArgv = (label: string): readonly string[] =>
    lastFull?.agent.result.commands.find((command) => command.label === label)?.argv ?? [];
  const commands = plainCommands(plain, 'full');
  process.stdout.write(
    [
      '== summary (medians over rounds; overhead = agent wall / plain wall - 1) ==',
      formatSummary(sizes),
      '',
      'what each side ran (full; the incremental is the same with `incremental`, and `run` without --full):',
      `  plain: ${commands.dump.join(' ')} > ${join(plain.stagingDir, `${DATABASE}.sql`)}`,
      `         ${commands.duplicity.map((arg) => (arg.includes(' ') ? `'${arg}'` : arg)).join(' ')}`,
      `  agent: ${process.execPath} ${NODE_FLAG} dist/main.js --config ${host.configFile} run --full, which ran:`,
      ...(lastFull?.agent.result.commands ?? []).map((command) => `         ${command.argv.join(' ')}`),
      formatOptionDiff('dump options', commands.dump, agentArgv('mariadb-dump'), 1),
      formatOptionDiff('duplicity full options', commands.duplicity, agentArgv('duplicity full'), 2),
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
try {
  await main(options);
} catch (error) {
  process.stderr.write(
    `\nBENCHMARK FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
} finally {
  log('cleaning up');
  await cleanup();
}
