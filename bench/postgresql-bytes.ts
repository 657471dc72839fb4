// Bytes on the target for PostgreSQL: the agent (`run --source postgresql`: pg_dump --format=custom
// --compress=0 staged, then duplicity) against the plain workflows `pg_dump -Fc > file` (default
// compression) and `pg_dump > file.sql` (plain SQL), each followed by `duplicity full|incremental`.
// Same generated data, same sshd target, no encryption on every side, interleaved in one run. See
// bench/README.md.
//
//   node --import tsx bench/postgresql-bytes.ts [--sizes 50,200] [--tmp /var/tmp]
//
// Runs as root; the agent and the plain workflows run as `backup` through setpriv, as the daemon
// and a cron job would. Everything it starts (postgres, sshd, ssh masters) is stopped and its temp
// dir removed at the end, also on failure and on SIGINT/SIGTERM.
import { copyFile, cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { cpus, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { type LogLine, makeAgentHost } from '../test/harness/agent.js';
import { type Postgres, startPostgres } from '../test/harness/postgres.js';
import { startSshTarget } from '../test/harness/ssh-target.js';
import { asBackupUser, chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';
import { log, onCleanup, runBenchmark, startBoth } from './cleanup.js';
import { type DatasetShape, shapeFor } from './dataset.js';
import { applyPgChange, generatePg } from './pg-dataset.js';
import { addedBytes, firstLine, listTree, loadAverage, mib, secs } from './measure.js';
import { exitWithUsage, positiveInt } from './options.js';
import { BACKUP_ENV, type Kind, closeSshMasters, runAgent, runToFile, stopRunningChildren } from './workflows.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const USAGE = 'usage: node --import tsx bench/postgresql-bytes.ts [--sizes 50,200] [--tmp /var/tmp]';
const DATABASE = 'bench';

type Side = 'agent' | 'plain -Fc' | 'plain SQL';
const SIDES: readonly Side[] = ['agent', 'plain -Fc', 'plain SQL'];

interface Run {
  readonly wallMs: number;
  /** Bytes of the files this backup added on its target. */
  readonly stored: number;
  /** The dump file the upload read. */
  readonly dumpBytes: number;
}

interface SizeResult {
  readonly shape: DatasetShape;
  readonly runs: Record<Side, Record<Kind, Run>>;
}

// ---------------------------------------------------------------- the plain workflows

interface Plain {
  readonly side: Exclude<Side, 'agent'>;
  readonly stagingDir: string;
  readonly archiveDir: string;
  readonly targetDir: string;
  readonly url: string;
}

function dumpArgv(pg: Postgres, side: Plain['side']): string[] {
  return [
    'pg_dump',
    `--host=${pg.socketDir}`,
    `--port=${pg.port}`,
    ...(side === 'plain -Fc' ? ['-Fc'] : []),
    `--dbname=${DATABASE}`,
  ];
}

function duplicityArgv(plain: Plain, kind: Kind, sshKey: string, knownHosts: string): string[] {
  return [
    'duplicity',
    kind,
    '--no-encryption',
    '--archive-dir',
    plain.archiveDir,
    '--name',
    'plain',
    `--ssh-options=-oIdentityFile=${sshKey} -oUserKnownHostsFile=${knownHosts}`,
    plain.stagingDir,
    plain.url,
  ];
}

async function runPlainSide(pg: Postgres, plain: Plain, kind: Kind, sshKey: string, knownHosts: string): Promise<Run> {
  await execa('sync', [], { stdin: 'ignore' });
  const before = await listTree(plain.targetDir);
  const file = join(plain.stagingDir, plain.side === 'plain -Fc' ? `${DATABASE}.dump` : `${DATABASE}.sql`);
  const started = performance.now();
  await runToFile(dumpArgv(pg, plain.side), file);
  const result = await execa('setpriv', await asBackupUser(duplicityArgv(plain, kind, sshKey, knownHosts)), {
    stdin: 'ignore',
    env: BACKUP_ENV,
    reject: false,
  });
  const wallMs = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`${plain.side}: duplicity ${kind} failed:\n${result.stderr}`);
  return {
    wallMs,
    stored: addedBytes(before, await listTree(plain.targetDir)).bytes,
    dumpBytes: (await stat(file)).size,
  };
}

// ---------------------------------------------------------------- the agent

interface AgentSide {
  readonly main: string;
  readonly configFile: string;
  readonly cacheDir: string;
  readonly stagingDir: string;
  readonly targetDir: string;
}

async function runAgentSide(agent: AgentSide, kind: Kind): Promise<Run> {
  await execa('sync', [], { stdin: 'ignore' });
  const before = await listTree(agent.targetDir);
  const result = await runAgent(agent.main, agent.configFile, kind);
  await closeSshMasters(agent.cacheDir);
  const summary = result.logs.find((line: LogLine) => line['summary'] === true && line['source'] === 'postgresql');
  if (result.exitCode !== 0 || summary?.['kind'] !== kind) {
    throw new Error(
      `backup-agent run (${kind}) failed or ran another kind (exit ${result.exitCode}, summary ${JSON.stringify(summary)}):\n${result.stderr}`,
    );
  }
  return {
    wallMs: result.wallMs,
    stored: addedBytes(before, await listTree(agent.targetDir)).bytes,
    dumpBytes: (await stat(join(agent.stagingDir, 'postgresql', `${DATABASE}.dump`))).size,
  };
}

// ---------------------------------------------------------------- the run

/** Other people rebuild dist/ on this machine: a private copy keeps the run on one agent. */
async function snapshotAgent(root: string): Promise<string> {
  const dir = join(root, 'agent-build');
  await mkdir(dir, { mode: 0o755 });
  await cp(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true });
  await copyFile(join(REPO, 'package.json'), join(dir, 'package.json'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'dist', 'main.js');
}

async function emptyDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}

function parseOptions(): { sizes: number[]; tmp: string } {
  let values;
  try {
    values = parseArgs({
      options: {
        sizes: { type: 'string', default: '50,200' },
        tmp: { type: 'string', default: '/var/tmp' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    exitWithUsage(USAGE, error instanceof Error ? error.message : String(error));
  }
  if (values.help) exitWithUsage(USAGE, 'bytes on the target: backup-agent vs plain pg_dump + duplicity');
  const sizes = values.sizes.split(',').map((part) => positiveInt(USAGE, part.trim(), '--sizes'));
  return { sizes: [...new Set(sizes)].sort((a, b) => a - b), tmp: resolve(values.tmp) };
}

function table(results: readonly SizeResult[]): string {
  const rows = [
    '| data | side | dump (full) | full on target | incremental on target | incr. / full | full wall | incremental wall |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const result of results) {
    for (const side of SIDES) {
      const { full, incremental } = result.runs[side];
      rows.push(
        `| ${result.shape.sizeMiB} MiB | ${side} | ${mib(full.dumpBytes)} | ${mib(full.stored, 2)} | ${mib(incremental.stored, 2)} | ${((100 * incremental.stored) / full.stored).toFixed(1)} % | ${secs(full.wallMs)} | ${secs(incremental.wallMs)} |`,
      );
    }
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (process.getuid?.() !== 0) exitWithUsage(USAGE, 'run it as root: the workflows drop to backup themselves');
  if ((await stat(join(REPO, 'dist', 'main.js')).catch(() => undefined)) === undefined)
    exitWithUsage(USAGE, 'dist/main.js does not exist: run npm run build first');

  const root = await mkdtemp(join(options.tmp, 'pgb-'));
  onCleanup(() => removeDir(root));
  await execa('chmod', ['0755', root]);
  process.env['TMPDIR'] = root;
  const agentMain = await snapshotAgent(root);

  log('starting PostgreSQL and sshd');
  const [pg, target] = await startBoth(startPostgres(), startSshTarget());

  const host = await makeAgentHost({ postgres: pg, target });
  onCleanup(() => host.remove());
  onCleanup(() => closeSshMasters(host.cacheDir));
  await host.writeConfig({
    target: { url: `${target.url}/agent`, encryption: 'none' },
    postgresql: { databases: DATABASE },
  });
  const agent: AgentSide = {
    main: agentMain,
    configFile: host.configFile,
    cacheDir: host.cacheDir,
    stagingDir: host.stagingDir,
    targetDir: join(target.targetDir, 'agent', 'postgresql'),
  };
  const plains: Plain[] = [];
  for (const [side, name] of [
    ['plain -Fc', 'plain-fc'],
    ['plain SQL', 'plain-sql'],
  ] as const) {
    const dir = await makeTempDir(name);
    const plain = {
      side,
      stagingDir: join(dir, 'staging'),
      archiveDir: join(dir, 'archive'),
      targetDir: join(target.targetDir, name),
      url: `${target.url}/${name}`,
    };
    await mkdir(plain.stagingDir, { mode: 0o700 });
    await mkdir(plain.archiveDir, { mode: 0o700 });
    await chownToBackup(dir);
    plains.push(plain);
  }
  // Registered last, so it runs first: the children are stopped before their files go.
  onCleanup(stopRunningChildren);

  process.stdout.write(
    [
      'PostgreSQL bytes on the target: backup-agent vs plain pg_dump + duplicity',
      `date: ${new Date().toISOString()}; machine: ${hostname()}, ${cpus().length} cores; load ${await loadAverage()}`,
      `tools: node ${process.version}; ${await firstLine('duplicity', ['--version'])}; ${await firstLine('pg_dump', ['--version'])}; server ${await pg.sql('SHOW server_version')}`,
      'encryption: none on every side (plain: --no-encryption; agent: target.encryption = none); one sshd, one target dir per side.',
      'agent:     run --full, then run (incremental): pg_dump --format=custom --compress=0 --create + globals.sql, duplicity',
      `plain -Fc: ${dumpArgv(pg, 'plain -Fc').join(' ')} > staging/${DATABASE}.dump; duplicity full|incremental`,
      `plain SQL: ${dumpArgv(pg, 'plain SQL').join(' ')} > staging/${DATABASE}.sql; duplicity full|incremental`,
      'change before the incremental: 1 % of the rows of both tables updated (spread over the key range), 0.5 % appended.',
      '',
    ].join('\n'),
  );

  const results: SizeResult[] = [];
  for (const [index, sizeMiB] of options.sizes.entries()) {
    const shape = shapeFor(sizeMiB);
    log(`generating ${DATABASE} for ${sizeMiB} MiB: ${shape.documents} documents, ${shape.events} events`);
    await generatePg(pg, DATABASE, shape);
    await closeSshMasters(host.cacheDir);
    await rm(join(target.targetDir, 'agent'), { recursive: true, force: true });
    await mkdir(agent.targetDir, { recursive: true, mode: 0o755 });
    await emptyDirectory(host.cacheDir);
    for (const plain of plains) {
      await rm(plain.targetDir, { recursive: true, force: true });
      await mkdir(plain.targetDir, { mode: 0o755 });
      await emptyDirectory(plain.archiveDir);
      await emptyDirectory(plain.stagingDir);
    }
    // Interleaved: the order rotates with the size, so no side always gets the warm cache.
    const order = SIDES.map((_, i) => SIDES[(i + index) % SIDES.length] ?? 'agent');
    const runs = new Map<string, Run>();
    for (const kind of ['full', 'incremental'] as const) {
      if (kind === 'incremental') await applyPgChange(pg, DATABASE, shape);
      for (const side of order) {
        log(`${sizeMiB} MiB ${kind}: ${side}`);
        const plain = plains.find((candidate) => candidate.side === side);
        const run =
          plain === undefined
            ? await runAgentSide(agent, kind)
            : await runPlainSide(pg, plain, kind, target.clientKey, target.knownHosts);
        runs.set(`${side} ${kind}`, run);
        log(`  ${secs(run.wallMs)}, dump ${mib(run.dumpBytes)}, on target ${mib(run.stored, 2)}`);
      }
    }
    const measured = (side: Side, kind: Kind): Run => {
      const run = runs.get(`${side} ${kind}`);
      if (run === undefined) throw new Error(`no ${kind} run of ${side}`);
      return run;
    };
    results.push({
      shape,
      runs: {
        agent: { full: measured('agent', 'full'), incremental: measured('agent', 'incremental') },
        'plain -Fc': { full: measured('plain -Fc', 'full'), incremental: measured('plain -Fc', 'incremental') },
        'plain SQL': { full: measured('plain SQL', 'full'), incremental: measured('plain SQL', 'incremental') },
      },
    });
  }
  process.stdout.write(`${table(results)}\n\nload average at end: ${await loadAverage()}\n`);
}

await runBenchmark(main);
