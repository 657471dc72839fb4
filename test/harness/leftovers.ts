// What a stopped agent may leave behind: child processes and a held run lock. Shared by the tests
// that stop the agent in the middle of a run.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/**
 * Running processes whose command line mentions `dir` or one of `more`: the run's children and
 * grandchildren, and its two daemons, which are nobody's child any more: the ssh connection master
 * (`ssh: <cache_dir>/ssh-<hash> [mux]`) and the gpg-agent (`gpg-agent --homedir <gnupg_home>`).
 * Pass a gnupg home outside `dir` in `more`. Zombies show no command line, so they never match.
 */
export async function leftoverProcesses(dir: string, ...more: string[]): Promise<string[]> {
  const lines: string[] = [];
  for (const mentioned of [dir, ...more]) {
    const result = await execa('pgrep', ['-af', mentioned], { reject: false });
    lines.push(...result.stdout.split('\n').filter((line) => line.trim() !== ''));
  }
  return lines;
}

/** The two daemons of a run: what a kill -9 of the agent cannot end, and the next run ends. */
export function isRunDaemon(line: string): boolean {
  return /\[mux\]|gpg-agent --homedir/.test(line);
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
