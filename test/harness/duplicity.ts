// Independent checks of what is on the target, with plain duplicity as the backup user: the test
// does not trust the agent's own reading of its backups.
import { join } from 'node:path';
import { execa } from 'execa';
import type { AgentHost } from './agent.js';
import { PASSPHRASE } from './agent.js';
import type { SshTarget } from './ssh-target.js';
import { chownToBackup, makeTempDir } from './temp-dir.js';

export interface TargetChains {
  /** One entry per chain: the kinds of its sets in order, e.g. ['full', 'inc', 'inc']. */
  readonly chains: string[][];
}

function duplicityArgs(target: SshTarget, archiveDir: string): string[] {
  return [
    '--archive-dir',
    archiveDir,
    '--name',
    'independent',
    '--num-retries',
    '1',
    `--ssh-options=-oIdentityFile=${target.clientKey} -oUserKnownHostsFile=${target.knownHosts}`,
  ];
}

async function asBackup(args: string[], host: AgentHost, passphrase: string) {
  return execa(
    'runuser',
    ['-u', 'backup', '--', 'env', `PASSPHRASE=${passphrase}`, `GNUPGHOME=${host.gnupgHome}`, 'duplicity', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      reject: false,
    },
  );
}

export async function targetChains(host: AgentHost, target: SshTarget, source: string): Promise<TargetChains> {
  const scratch = await makeTempDir('dup-status');
  await chownToBackup(scratch);
  const result = await asBackup(
    ['collection-status', '--log-fd', '3', ...duplicityArgs(target, scratch), `${target.url}/${source}`],
    host,
    PASSPHRASE,
  );
  if (result.exitCode !== 0)
    throw new Error(`duplicity collection-status failed (${result.exitCode}): ${String(result.stderr)}`);
  const chains: string[][] = [];
  for (const line of String(result.stdio[3]).split('\n')) {
    if (line.startsWith('chain-')) chains.push([]);
    const set = /^ (full|inc) \d{8}T\d{6}Z/.exec(line);
    if (set?.[1]) chains.at(-1)?.push(set[1]);
  }
  return { chains: chains.filter((chain) => chain.length > 0) };
}

/** Restores <url>/<source> at `time` into a fresh directory and returns it. */
export async function restoreWithDuplicity(
  host: AgentHost,
  target: SshTarget,
  source: string,
  time = 'now',
  passphrase = PASSPHRASE,
): Promise<string> {
  const scratch = await makeTempDir('dup-restore');
  await chownToBackup(scratch);
  const destination = join(scratch, 'restored');
  const result = await asBackup(
    [
      'restore',
      '--time',
      time,
      ...duplicityArgs(target, join(scratch, 'cache')),
      `${target.url}/${source}`,
      destination,
    ],
    host,
    passphrase,
  );
  if (result.exitCode !== 0) throw new Error(`duplicity restore failed (${result.exitCode}): ${String(result.stderr)}`);
  return destination;
}
