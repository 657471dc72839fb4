// The command line (commander only): flags → action → printer. Exit codes are decided in main.ts.
import { Command, Option } from 'commander';
import type { Config } from '../config/schema.js';
import type { BackupKind, SourceKind } from '../domain.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { isRoot, requireAgentReadable, requireRoot, rerunAsAgentUser } from '../system/privileges.js';
import { VERSION } from './version.js';

// Each command imports what it needs when it runs (zod, pino, execa and croner cost about
// 20 MiB of RSS together): `--help` stays fast, and root's process, which only waits while the
// command runs again as backup, stays small for the whole run.
// The engines are named in sources/registry.ts, which is loaded only when a command runs.
const SOURCE_ARGUMENT = 'a source, by its section name in backup-agent.ini, e.g. mysql (default: every enabled source)';

const cli = {
  backup: () => import('../actions/backup.js'),
  check: () => import('../actions/check.js'),
  confirm: () => import('./confirm.js'),
  context: () => import('../context/context.js'),
  daemon: () => import('../daemon/daemon.js'),
  runPlan: () => import('../actions/run-plan.js'),
  exampleConfig: () => import('../config/example.js'),
  list: () => import('../actions/list.js'),
  load: () => import('../config/load.js'),
  logger: () => import('../report/logger.js'),
  logTail: () => import('../daemon/log-tail.js'),
  output: () => import('./output.js'),
  ping: () => import('../notify/ping.js'),
  recordRun: () => import('../actions/record-run.js'),
  registry: () => import('../sources/registry.js'),
  restore: () => import('../actions/restore.js'),
  restorePoint: () => import('../restore/restore-point.js'),
  status: () => import('../actions/status.js'),
  verify: () => import('../actions/verify.js'),
};

export const EXIT_STATUS = `
Exit status:
  0   success
  1   a backup (or check) failed; other sources may have succeeded; status: a source is failing or in breach
  2   usage error
  75  another run holds the lock; try again later
  77  the command needs root
  78  the configuration is invalid (for check also: schedule + spread + run time miss the deadline),
      or the agent lies where the backup user cannot read it
  130/143  stopped by SIGINT/SIGTERM (the daemon exits 0 after a clean stop)`;

interface GlobalOptions {
  readonly config?: string;
}

/** Builds the program; each action resolves to the exit code. */
export function buildProgram(cancel: AbortSignal, setExitCode: (code: number) => void): Command {
  const program = new Command('backup-agent')
    .description('Dumps MySQL/MariaDB and InfluxDB 1.x and uploads them with duplicity to an rsync-over-ssh target.')
    .version(VERSION)
    .option('-c, --config <file>', 'configuration file (default: $BACKUP_AGENT_CONFIG or /etc/backup-agent.ini)')
    .addHelpText('after', EXIT_STATUS)
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run')
    .description('take one backup now: dump, check, upload, for every enabled source')
    .addOption(new Option('--source <source>', 'only this source (repeatable)').argParser(collectSource).default([]))
    .addOption(new Option('--full', 'force a full backup').conflicts('incremental'))
    .addOption(new Option('--incremental', 'force an incremental backup (a full when the target has no chain)'))
    .option('--dry-run', 'print the plan and every command line; change nothing')
    .option('--json', 'with --dry-run: the plan as one line of JSON')
    .action(
      async (options: {
        source: SourceKind[];
        full?: boolean;
        incremental?: boolean;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        if (options.json === true && options.dryRun !== true) throw new UsageError('--json goes with --dry-run');
        const config = await prepare(program);
        const [{ createLogger }, { LogTail }] = await Promise.all([cli.logger(), cli.logTail()]);
        // Its last lines go with a failure ping (notify.ping_url), as with the daemon's.
        const logTail = new LogTail();
        const logger = createLogger({ toStderr: options.dryRun === true, copyTo: logTail });
        const sources = await selectSources(config, options.source);
        const kind: BackupKind | undefined = options.full ? 'full' : options.incremental ? 'incremental' : undefined;
        const context = await (await cli.context()).createContext(config, logger, cancel);
        if (options.dryRun) {
          const [{ planBackup }, { formatPlan }] = await Promise.all([cli.runPlan(), cli.output()]);
          const plan = await lockFree(config, logger, 'backup-agent run --dry-run', () =>
            planBackup(context, sources, kind),
          );
          process.stdout.write(options.json === true ? `${JSON.stringify(plan)}\n` : formatPlan(plan));
          return setExitCode(0);
        }
        const [{ runBackup }, { recordManualRun }, { pingedRun }] = await Promise.all([
          cli.backup(),
          cli.recordRun(),
          cli.ping(),
        ]);
        const trigger = 'backup-agent run';
        const startedAt = new Date();
        const summary = await pingedRun(config.notify, logger, cancel, logTail, () =>
          runBackup(context, { sources, kind, trigger }),
        );
        const window = { startedAt, finishedAt: new Date(), trigger, slot: null };
        await recordManualRun(config, logger, window, summary.outcomes);
        setExitCode(summary.ok ? 0 : 1);
      },
    );

  program
    .command('list')
    .description('show the restore points on the target (time, full/incremental, size)')
    .argument('[source]', SOURCE_ARGUMENT)
    .action(async (source: string | undefined) => {
      const config = await prepare(program);
      const [{ createContext }, { createLogger }, { listRestorePoints }, { formatListing }] = await Promise.all([
        cli.context(),
        cli.logger(),
        cli.list(),
        cli.output(),
      ]);
      const logger = createLogger({ toStderr: true, level: 'warn' });
      const context = await createContext(config, logger, cancel);
      const sources = await selectSources(config, source === undefined ? [] : [source]);
      await lockFree(config, logger, 'backup-agent list', async () => {
        for (const selected of sources)
          process.stdout.write(formatListing(await listRestorePoints(context, selected.kind)));
      });
      setExitCode(0);
    });

  program
    .command('check')
    .description('validate the configuration and every prerequisite of a backup, as a checklist')
    .action(async () => {
      // Root's client can list what the backup user's grant hides from it: done before the re-run,
      // but only once the re-run can happen at all.
      if (isRoot()) {
        await requireAgentReadable();
        await (await cli.check()).prepareChecksAsRoot(await loadAsRoot(program), cancel);
      }
      const config = await prepare(program);
      const [{ runChecks, checkExitCode }, { createLogger }, { formatChecklist }] = await Promise.all([
        cli.check(),
        cli.logger(),
        cli.output(),
      ]);
      const logger = createLogger({ toStderr: true, level: 'warn' });
      const items = await lockFree(config, logger, 'backup-agent check', () => runChecks(config, logger, cancel));
      process.stdout.write(formatChecklist(items));
      setExitCode(checkExitCode(items));
    });

  program
    .command('restore')
    .description('as root: download a backup, check it, and put it back in place of the live database')
    .argument('<source>', 'the source: its section name in backup-agent.ini, e.g. mysql')
    .option('--time <time>', 'now (the latest backup), an ISO date/time, or an age like 3D', 'now')
    .option('--database <name>', 'only this one of the configured databases (default: all)')
    .option('--into <name>', 'restore into this new database; the original is not touched')
    .option('--from-dir <dir>', 'restore a directory already downloaded (restore --download-only)')
    .option('--download-only', 'download and check, change nothing else')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'print every step and command; change nothing')
    .action(
      async (
        sourceName: string,
        options: {
          time: string;
          database?: string;
          into?: string;
          fromDir?: string;
          downloadOnly?: boolean;
          yes?: boolean;
          dryRun?: boolean;
        },
      ) => {
        requireRoot(`restore ${sourceName}`);
        const source = await parseSource(sourceName);
        const [
          { parseRestoreTime },
          { runRestore, selectDatabases },
          { createContext },
          { createLogger },
          { confirmer },
          { formatRestoreReport },
        ] = await Promise.all([
          cli.restorePoint(),
          cli.restore(),
          cli.context(),
          cli.logger(),
          cli.confirm(),
          cli.output(),
        ]);
        const time = parseRestoreTime(options.time);
        if (options.fromDir !== undefined && options.time !== 'now') {
          throw new UsageError('--from-dir restores what is in the directory; --time does not apply');
        }
        const config = await loadAsRoot(program);
        const section = config.sources[source];
        if (section?.enabled !== true) throw new UsageError(`source ${source} is not enabled in ${config.file}`);
        const databases = selectDatabases(section.databases, options.database, options.into);
        const context = await createContext(config, createLogger({ toStderr: true }), cancel);
        const report = await runRestore(context, {
          source,
          time,
          databases,
          into: options.into,
          fromDir: options.fromDir,
          downloadOnly: options.downloadOnly === true,
          dryRun: options.dryRun === true,
          confirm: confirmer(options.yes === true),
        });
        if (report !== null) process.stdout.write(formatRestoreReport(report));
        setExitCode(0);
      },
    );

  program
    .command('verify')
    .description('restore drill: download the latest backup to scratch space and prove it is complete and restorable')
    .argument('[source]', SOURCE_ARGUMENT)
    .option('--import', 'as root: also load it into scratch databases, compare, and drop them')
    .action(async (source: string | undefined, options: { import?: boolean }) => {
      if (options.import) requireRoot('verify --import');
      const config = options.import ? await loadAsRoot(program) : await prepare(program);
      const sources = await selectSources(config, source === undefined ? [] : [source]);
      const [{ createContext }, { createLogger }, { runDrill }, { formatDrill }] = await Promise.all([
        cli.context(),
        cli.logger(),
        cli.verify(),
        cli.output(),
      ]);
      const context = await createContext(config, createLogger({ toStderr: true }), cancel);
      const results = await runDrill(
        context,
        sources.map((selected) => selected.kind),
        options.import === true,
      );
      process.stdout.write(formatDrill(results));
      setExitCode(results.every((result) => result.ok) ? 0 : 1);
    });

  program
    .command('example-config')
    .description('print a configuration file with every key, its default and its meaning')
    .action(async () => {
      process.stdout.write((await cli.exampleConfig()).renderExampleConfig((await cli.registry()).ENGINES));
      setExitCode(0);
    });

  program
    .command('daemon')
    .description(
      'run backups on agent.schedule until stopped (what the systemd unit runs): catch-up, alert mails, STATUS=, metrics; SIGHUP reloads the configuration',
    )
    .action(async () => {
      const config = await prepare(program);
      const [{ LogTail }, { createLogger }, { runDaemon }, { loadConfig }, { ENGINES }] = await Promise.all([
        cli.logTail(),
        cli.logger(),
        cli.daemon(),
        cli.load(),
        cli.registry(),
      ]);
      const logTail = new LogTail();
      const logger = createLogger({ copyTo: logTail });
      await runDaemon({ config, logger, logTail, cancel, reload: () => loadConfig(config.file, ENGINES) });
      // A stop asked for by systemd is a clean end, not a failure.
      setExitCode(0);
    });

  program
    .command('status')
    .description(
      'per source: last run, last success, newest full, deadline and RPO, next run; exit 1 when a source is failing or in breach',
    )
    .option('--json', 'stable JSON instead of the table')
    .option('--remote', 'also read the chain on the target (duplicity collection-status)')
    .action(async (options: { json?: boolean; remote?: boolean }) => {
      const config = await prepare(program);
      const [{ createContext }, { createLogger }, { collectStatus }, { formatStatus, formatStatusJson }] =
        await Promise.all([cli.context(), cli.logger(), cli.status(), cli.output()]);
      const logger = createLogger({ toStderr: true, level: 'warn' });
      const remote = options.remote ? await createContext(config, logger, cancel) : null;
      const report =
        remote === null
          ? await collectStatus(config, { remote })
          : await lockFree(config, logger, 'backup-agent status --remote', () => collectStatus(config, { remote }));
      process.stdout.write(options.json ? formatStatusJson(report) : formatStatus(report));
      setExitCode(report.healthy ? 0 : 1);
    });

  return program;
}

/**
 * `work` of a command that runs without the run lock and may reach the target or run gpg, then, on
 * every path, the end of the ssh master and gpg-agent it may have started (see endLockFreeSession).
 */
async function lockFree<T>(config: Config, logger: Logger, command: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    const { cleanupRunner, endLockFreeSession } = await cli.context();
    await endLockFreeSession(config, cleanupRunner(logger), command);
  }
}

/** Root's command runs again as the backup user, and root exits with its status; others load the config. */
async function prepare(program: Command): Promise<Config> {
  const status = await rerunAsAgentUser();
  // The whole command ran in the backup user's process; nothing is left to do here.
  if (status !== null) process.exit(status);
  // Dumps and caches hold the data itself: nothing the agent creates is readable by others.
  process.umask(0o077);
  const [{ configFilePath, loadConfig }, { ENGINES }] = await Promise.all([cli.load(), cli.registry()]);
  return loadConfig(configFilePath(program.opts<GlobalOptions>().config), ENGINES);
}

/** For the commands that must stay root (restore, verify --import). */
async function loadAsRoot(program: Command): Promise<Config> {
  process.umask(0o077);
  const [{ configFilePath, loadConfig }, { ENGINES }] = await Promise.all([cli.load(), cli.registry()]);
  return loadConfig(configFilePath(program.opts<GlobalOptions>().config), ENGINES);
}

async function selectSources(config: Config, requested: readonly string[]) {
  for (const kind of requested) {
    await parseSource(kind);
    if (config.sources[kind]?.enabled !== true)
      throw new UsageError(
        `source ${kind} is not enabled in ${config.file}`,
        `set enabled = true in its [${kind}] section`,
      );
  }
  return (await cli.context()).enabledSources(config, requested);
}

/** The engine's name, once the registry knows it (it is loaded only when a command runs). */
async function parseSource(value: string): Promise<SourceKind> {
  return (await cli.registry()).engineOf(value).kind;
}

function collectSource(value: string, previous: SourceKind[]): SourceKind[] {
  return [...previous, value];
}
