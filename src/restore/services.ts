// Services that write into InfluxDB (telegraf) would recreate the database in the middle of a
// restore, so they are stopped first and started again afterwards, whatever happened in between.
import { access } from 'node:fs/promises';
import type { Logger } from '../report/logger.js';
import { type CommandRunner, quickDeadline } from '../system/run-command.js';

export interface StoppedServices {
  readonly names: readonly string[];
  /** Starts what was stopped; returns what could not be started. */
  restart(): Promise<string[]>;
}

export async function stopServices(
  runner: CommandRunner,
  logger: Logger,
  names: readonly string[],
): Promise<StoppedServices> {
  const stopped: string[] = [];
  const restart = async (): Promise<string[]> => {
    const failed: string[] = [];
    for (const name of stopped) {
      const result = await runner.run({
        argv: ['systemctl', 'start', name],
        okExitCodes: [0, 1, 5],
        deadline: quickDeadline(`starting ${name}`),
      });
      if (result.exitCode === 0) logger.info({ service: name }, 'started %s again', name);
      else failed.push(name);
    }
    return failed;
  };
  if (names.length === 0) return { names: stopped, restart };
  if (!(await systemdIsRunning())) {
    logger.warn(
      { services: names },
      'systemd is not running here: cannot stop %s; stop them by hand',
      names.join(', '),
    );
    return { names: stopped, restart };
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
    await runner.run({ argv: ['systemctl', 'stop', name], deadline: quickDeadline(`stopping ${name}`) });
    stopped.push(name);
    logger.info({ service: name }, 'stopped %s for the restore', name);
  }
  return { names: stopped, restart };
}

async function systemdIsRunning(): Promise<boolean> {
  try {
    await access('/run/systemd/system');
    return true;
  } catch {
    return false;
  }
}
