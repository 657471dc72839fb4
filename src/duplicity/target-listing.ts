// The look at a source's directory on the target that a run takes before its upload: one
// rsync --list-only, from which both the chain (listing-chains.ts) and its health (chain-health.ts)
// are read. Its failures are named as duplicity's are, from the same ssh and rsync refusals.
import { explainRsyncFailure } from '../remote/failures.js';
import { type RemoteFile, listRemoteFiles } from '../remote/remote.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { CommandFailedError, type CommandRunner, type Deadline } from '../system/run-command.js';
import type { DuplicitySettings } from './command.js';
import { isMissingTargetDirectory } from './failures.js';

export interface TargetListing {
  readonly files: readonly RemoteFile[];
  /** false: the directory is not on the target yet, so it holds no chain (a run creates it). */
  readonly directoryExists: boolean;
}

export async function readTargetListing(
  runner: CommandRunner,
  settings: Pick<DuplicitySettings, 'url' | 'sshKey' | 'knownHosts' | 'controlDir'>,
  deadline: Deadline,
): Promise<TargetListing> {
  try {
    return { files: await listRemoteFiles(runner, settings.url, settings, deadline), directoryExists: true };
  } catch (error) {
    // rsync's sender cannot enter it: `rsync: [sender] change_dir "<path>" failed: No such file or
    // directory (2)`, exit 23, the very line duplicity's rsync backend fails with. A file in its
    // place says "Not a directory" instead and stays a failure.
    if (isMissingTargetDirectory(error)) return { files: [], directoryExists: false };
    if (error instanceof CommandFailedError && error.signal === undefined) {
      // An unreachable target may answer a few seconds later (TargetUnreachableError); a refusal will not.
      throw explainRsyncFailure(`reading the backup chain at ${formatRsyncUrl(settings.url)}`, error);
    }
    throw error;
  }
}
