// The commands the backup user runs (root runs them again as backup): run, list, check, status,
// the daemon, example-config.
import { Option } from 'commander';
import type { BackupKind, SourceKind } from '../domain.js';
import { UsageError } from '../errors.js';
import { yieldToDatabases } from '../system/priority.js';
import { isRoot, requireAgentReadable } from '../system/privileges.js';
import {
  type CommandSetup,
  SOURCE_ARGUMENT,
  cli,
  collectSource,
  loadAsRoot,
  lockFree,
  prepare,
  selectSources,
} from './command-kit.js';

export function addBackupCommands({ program, cancel, setExitCode }: CommandSetup): void {
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
        yieldToDatabases();
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
    .command('status')
    .description(
      'per source: last run, last success, newest full, deadline and RPO, next run; exit 1 when a source is failing or in breach',
    )
    .option('--json', 'stable JSON instead of the table')
    .option('--remote', 'also read the chain on the target (one rsync listing per source)')
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
    .command('example-config')
    .description('print a configuration file with every key, its default and its meaning')
    .action(async () => {
      process.stdout.write((await cli.exampleConfig()).renderExampleConfig((await cli.registry()).ENGINES));
      setExitCode(0);
    });
}
