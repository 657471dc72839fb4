// Runs a source's dump steps one after another, each under the dump deadline, then has the source
// prove the result. The dump programs write straight to disk: the agent never holds the data.
import { CommandFailedError, type CommandRunner, type Deadline } from '../system/run-command.js';
import type { DataSource, DumpStep } from './source.js';

export async function runDump(
  runner: CommandRunner,
  source: DataSource,
  steps: readonly DumpStep[],
  dir: string,
  deadline: Deadline,
): Promise<void> {
  for (const step of steps) {
    try {
      await runner.run({
        argv: step.argv,
        label: step.label,
        ...(step.stdoutTo === undefined ? {} : { stdout: { file: step.stdoutTo } }),
        deadline: { ...deadline, step: step.label },
      });
    } catch (error) {
      if (error instanceof CommandFailedError && step.explain !== undefined) throw step.explain(error);
      throw error;
    }
  }
  await source.proveDump(runner, dir, deadline);
}
