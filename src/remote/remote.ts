// The agent's own calls to the target (duplicity does not create directories, and its listing has no sizes).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PERMANENT_REFUSAL } from './failures.js';
import type { CommandResult, CommandRunner, CommandSpec, Deadline } from '../system/run-command.js';
import { type RsyncUrl, rsyncRemoteSpec } from './rsync-url.js';
import { type SshAccess, rsyncShell } from './ssh.js';

export interface RemoteFile {
  readonly name: string;
  readonly size: number;
}

const PROBE = '.backup-agent-write-test';

/** Creates the directory on the target (duplicity fails with rc 50 when it is missing). */
export async function ensureRemoteDirectory(
  runner: CommandRunner,
  url: RsyncUrl,
  access: SshAccess,
  scratch: string,
  deadline: Deadline,
): Promise<void> {
  await withEmptyDirectory(scratch, (empty) =>
    rsyncWithTarget(runner, url, access, deadline, { options: ['--recursive', '--mkpath'], sources: [`${empty}/`] }),
  );
}

/** Proves the directory is writable: uploads a probe file, then deletes exactly that file. */
export async function probeRemoteWrite(
  runner: CommandRunner,
  url: RsyncUrl,
  access: SshAccess,
  scratch: string,
  deadline: Deadline,
): Promise<void> {
  await withEmptyDirectory(scratch, async (dir) => {
    const probe = join(dir, PROBE);
    await writeFile(probe, 'written by backup-agent check; safe to delete\n');
    await rsyncWithTarget(runner, url, access, deadline, { options: [], sources: [probe] });
    await rm(probe);
    // Only the probe is included, so --delete can remove nothing else.
    await rsyncWithTarget(runner, url, access, deadline, {
      options: ['--recursive', '--delete', `--include=/${PROBE}`, '--exclude=*'],
      sources: [`${dir}/`],
    });
  });
}

export async function listRemoteFiles(
  runner: CommandRunner,
  url: RsyncUrl,
  access: SshAccess,
  deadline: Deadline,
  runAs?: CommandSpec['runAs'],
): Promise<RemoteFile[]> {
  const result = await rsyncWithTarget(runner, url, access, deadline, {
    options: ['--list-only', '--no-human-readable'],
    sources: [],
    stdout: 'capture',
    ...(runAs === undefined ? {} : { runAs }),
  });
  return parseListing(result.stdout);
}

/** One rsync whose last argument is the target directory; a refusal no retry can fix stops it at once. */
function rsyncWithTarget(
  runner: CommandRunner,
  url: RsyncUrl,
  access: SshAccess,
  deadline: Deadline,
  call: { readonly options: readonly string[]; readonly sources: readonly string[] } & Pick<
    CommandSpec,
    'stdout' | 'runAs'
  >,
): Promise<CommandResult> {
  const { options, sources, ...spec } = call;
  return runner.run({
    ...spec,
    argv: ['rsync', ...options, '-e', rsyncShell(url, access), ...sources, rsyncRemoteSpec(url, true)],
    deadline,
    stopOn: PERMANENT_REFUSAL,
  });
}

/** rsync --list-only lines: "-rw-r--r--        1234 2026/11/25 09:00:00 name". */
export function parseListing(text: string): RemoteFile[] {
  const files: RemoteFile[] = [];
  for (const line of text.split('\n')) {
    const match = /^-\S+\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) files.push({ name: match[2], size: Number(match[1]) });
  }
  return files;
}

async function withEmptyDirectory<T>(scratch: string, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(scratch, 'empty-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
