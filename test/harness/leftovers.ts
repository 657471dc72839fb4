// What a stopped agent may leave behind: child processes and a held run lock. Shared by the tests
// that stop the agent in the middle of a run.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/**
 * Processes whose command line mentions `dir`, except the two designed to outlive a run briefly:
 * the idle ssh connection master (closes itself after 30 s) and the gpg-agent of the gnupg home.
 */
export async function leftoverProcesses(dir: string): Promise<string[]> {
  const result = await execa('pgrep', ['-af', dir], { reject: false });
  return result.stdout.split('\n').filter((line) => line.trim() !== '' && !/\[mux\]|gpg-agent --homedir/.test(line));
}

/** The run lock is flock(2) on a file that stays: free when nobody holds it, whether the file is there or not. */
export async function lockIsFree(cacheDir: string): Promise<boolean> {
  const file = join(cacheDir, 'backup-agent.lock');
  // flock(1) would create a missing file as root, which the backup user could not lock afterwards.
  if (
    !(await access(file).then(
      () => true,
      () => false,
    ))
  )
    return true;
  const probe = await execa('flock', ['--nonblock', '--conflict-exit-code', '75', file, 'true'], {
    reject: false,
    timeout: 10_000,
  });
  if (probe.exitCode !== 0 && probe.exitCode !== 75) throw new Error(`flock ${file}: ${probe.stderr}`);
  return probe.exitCode === 0;
}
