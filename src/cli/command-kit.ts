// What every command of the command line shares: the modules it loads when it runs, loading the
// configuration (as the backup user, or as root), the choice of sources, and the end of a
// lock-free session.
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { SourceKind } from '../domain.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { rerunAsAgentUser } from '../system/privileges.js';

// Each command imports what it needs when it runs (zod, pino, execa and croner cost about
// 20 MiB of RSS together): `--help` stays fast, and root's process, which only waits while the
// command runs again as backup, stays small for the whole run.
// The engines are named in sources/registry.ts, which is loaded only when a command runs.
export const SOURCE_ARGUMENT =
  'a source, by its section name in backup-agent.ini, e.g. mysql (default: every enabled source)';

export const cli = {
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

/** What a command's registration gets: the program, the cancel signal, and where its exit code goes. */
export interface CommandSetup {
  readonly program: Command;
  readonly cancel: AbortSignal;
  readonly setExitCode: (code: number) => void;
}

interface GlobalOptions {
  readonly config?: string;
}

/**
 * `work` of a command that runs without the run lock and may reach the target or run gpg, then, on
 * every path, the end of the ssh master and gpg-agent it may have started (see endLockFreeSession).
 */
export async function lockFree<T>(config: Config, logger: Logger, command: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    const { cleanupRunner, endLockFreeSession } = await cli.context();
    await endLockFreeSession(config, cleanupRunner(logger), command);
  }
}

/** Root's command runs again as the backup user, and root exits with its status; others load the config. */
export async function prepare(program: Command): Promise<Config> {
  const status = await rerunAsAgentUser();
  // The whole command ran in the backup user's process; nothing is left to do here.
  if (status !== null) process.exit(status);
  // Dumps and caches hold the data itself: nothing the agent creates is readable by others.
  process.umask(0o077);
  const [{ configFilePath, loadConfig }, { ENGINES }] = await Promise.all([cli.load(), cli.registry()]);
  return loadConfig(configFilePath(program.opts<GlobalOptions>().config), ENGINES);
}

/** For the commands that must stay root (restore, verify --import). */
export async function loadAsRoot(program: Command): Promise<Config> {
  process.umask(0o077);
  const [{ configFilePath, loadConfig }, { ENGINES }] = await Promise.all([cli.load(), cli.registry()]);
  return loadConfig(configFilePath(program.opts<GlobalOptions>().config), ENGINES);
}

export async function selectSources(config: Config, requested: readonly string[]) {
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
export async function parseSource(value: string): Promise<SourceKind> {
  return (await cli.registry()).engineOf(value).kind;
}

export function collectSource(value: string, previous: SourceKind[]): SourceKind[] {
  return [...previous, value];
}
