// What a stopped agent may leave behind: child processes and the run lock. Shared by the tests
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

export async function lockIsFree(cacheDir: string): Promise<boolean> {
  return access(join(cacheDir, 'backup-agent.lock')).then(
    () => false,
    () => true,
  );
}
