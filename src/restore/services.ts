// Services that write into InfluxDB (telegraf) would recreate the database in the middle of a
// restore, so they are stopped first and started again afterwards, whatever happened in between:
// a failure, a deadline, or a SIGTERM to the restore. Starting them again goes through a runner the
// cancel does not reach, since by then the restore's own runner refuses to start anything.
import { access } from 'node:fs/promises';
import type { Logger } from '../report/logger.js';
import { type CommandRunner, quickDeadline } from '../system/run-command.js';

export interface StoppedServices {
  readonly names: readonly string[];
  /** Starts what was stopped; returns what could not be started. */
  restart(): Promise<string[]>;
}

/** Stops `names` with `runner`; `restart` starts them again with `cleanup`. */
export async function stopServices(
  runner: CommandRunner,
  cleanup: CommandRunner,
  logger: Logger,
  names: readonly string[],
): Promise<StoppedServices> {
  const stopped: string[] = [];
  const restart = async (): Promise<string[]> => {
    const failed: string[] = [];
    for (const name of stopped) {
      const result = await cleanup
        .run({
          argv: ['systemctl', 'start', name],
          okExitCodes: [0, 1, 5],
          deadline: quickDeadline(`starting ${name}`),
        })
        .catch(() => undefined);
      if (result?.exitCode === 0) logger.info({ service: name }, 'started %s again', name);
      else failed.push(name);
    }
    return failed;
  };
  try {
    await stopEach(runner, logger, names, stopped);
  } catch (error) {
    // Stopped by a SIGTERM or a deadline half-way: what is already down must not stay down.
    await restart();
    throw error;
  }
  return { names: stopped, restart };
}

async function stopEach(
  runner: CommandRunner,
  logger: Logger,
  names: readonly string[],
  stopped: string[],
): Promise<void> {
  if (names.length === 0) return;
  if (!(await systemdIsRunning())) {
    logger.warn(
      { services: names },
      'systemd is not running here: cannot stop %s; stop them by hand',
      names.join(', '),
    );
    return;
  }
  for (const name of names) {
    const active = await runner.run({
      argv: ['systemctl', 'is-active', '--quiet', name],
      okExitCodes: [0, 3, 4],
      deadline: quickDeadline(`asking systemd about ${name}`),
    });
    if (active.exitCode !== 0) {
      logger.info({ service: name }, '%s is not running (or not installed): nothing to stop', name);
      continue;
    }
    // Counted before the stop: systemd finishes a stop job even when systemctl is killed waiting for it.
    stopped.push(name);
    await runner.run({ argv: ['systemctl', 'stop', name], deadline: quickDeadline(`stopping ${name}`) });
    logger.info({ service: name }, 'stopped %s for the restore', name);
  }
}

async function systemdIsRunning(): Promise<boolean> {
  try {
    await access('/run/systemd/system');
    return true;
  } catch {
    return false;
  }
}
