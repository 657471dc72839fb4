// The command line (commander only): flags → action → printer. Exit codes are decided in main.ts.
import { Command, Option } from 'commander';
import { runChecks } from '../actions/check.js';
import { createContext, enabledSources } from '../actions/context.js';
import { planBackup } from '../actions/dry-run.js';
import { runBackup } from '../actions/backup.js';
import { listRestorePoints } from '../actions/list.js';
import { configFilePath, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { type BackupKind, SOURCE_KINDS, type SourceKind } from '../domain.js';
import { UsageError } from '../errors.js';
import { createLogger } from '../report/logger.js';
import { becomeAgentUser } from '../system/privileges.js';
import { formatChecklist, formatListing, formatPlan } from './output.js';
import { VERSION } from './version.js';

export const EXIT_STATUS = `
Exit status:
  0   success
  1   a backup (or check) failed; other sources may have succeeded
  2   usage error
  75  another run holds the lock; try again later
  77  the command needs root
  78  the configuration is invalid
  130/143  stopped by SIGINT/SIGTERM`;

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
    .action(async (options: { source: SourceKind[]; full?: boolean; incremental?: boolean; dryRun?: boolean }) => {
      const config = await prepare(program);
      const logger = createLogger({ toStderr: options.dryRun === true });
      const sources = await selectSources(config, options.source);
      const kind: BackupKind | undefined = options.full ? 'full' : options.incremental ? 'incremental' : undefined;
      const context = await createContext(config, logger, cancel);
      if (options.dryRun) {
        process.stdout.write(formatPlan(await planBackup(context, sources, kind)));
        return setExitCode(0);
      }
      const summary = await runBackup(context, { sources, kind, trigger: 'backup-agent run' });
      setExitCode(summary.ok ? 0 : 1);
    });

  program
    .command('list')
    .description('show the restore points on the target (time, full/incremental, size)')
    .argument('[source]', `one of ${SOURCE_KINDS.join(', ')} (default: every enabled source)`)
    .action(async (source: string | undefined) => {
      const config = await prepare(program);
      const context = await createContext(config, createLogger({ toStderr: true, level: 'warn' }), cancel);
      const sources = await selectSources(config, source === undefined ? [] : [parseSource(source)]);
      for (const selected of sources)
        process.stdout.write(formatListing(await listRestorePoints(context, selected.kind)));
      setExitCode(0);
    });

  program
    .command('check')
    .description('validate the configuration and every prerequisite of a backup, as a checklist')
    .action(async () => {
      const config = await prepare(program);
      const items = await runChecks(config, createLogger({ toStderr: true, level: 'warn' }), cancel);
      process.stdout.write(formatChecklist(items));
      setExitCode(items.some((item) => item.status === 'fail') ? 1 : 0);
    });

  return program;
}

/** Becomes the backup user (when root), then loads the configuration as that user. */
async function prepare(program: Command): Promise<Config> {
  await becomeAgentUser();
  // Dumps and caches hold the data itself: nothing the agent creates is readable by others.
  process.umask(0o077);
  return loadConfig(configFilePath(program.opts<GlobalOptions>().config));
}

async function selectSources(config: Config, requested: readonly SourceKind[]) {
  for (const kind of requested) {
    if (!config[kind].enabled)
      throw new UsageError(
        `source ${kind} is not enabled in ${config.file}`,
        `set enabled = true in its [${kind}] section`,
      );
  }
  return enabledSources(config, requested);
}

function parseSource(value: string): SourceKind {
  const kind = SOURCE_KINDS.find((candidate) => candidate === value);
  if (kind === undefined) throw new UsageError(`unknown source "${value}": expected one of ${SOURCE_KINDS.join(', ')}`);
  return kind;
}

function collectSource(value: string, previous: SourceKind[]): SourceKind[] {
  return [...previous, parseSource(value)];
}
