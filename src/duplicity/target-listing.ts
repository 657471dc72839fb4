// The look at a source's directory on the target that a run takes before its upload: one
// rsync --list-only, from which both the chain (listing-chains.ts) and its health (chain-health.ts)
// are read. Its failures are named as duplicity's are, from the same ssh and rsync refusals.
import { BackupFailedError } from '../errors.js';
import { TARGET_CAUSES } from '../remote/failures.js';
import { type RemoteFile, listRemoteFiles } from '../remote/remote.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { CommandFailedError, type CommandRunner, type Deadline } from '../system/run-command.js';
import type { DuplicitySettings } from './command.js';
import { TargetUnreachableError, isMissingTargetDirectory } from './failures.js';

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
      throw explainListingFailure(formatRsyncUrl(settings.url), error);
    }
    throw error;
  }
}

/** An unreachable target may answer a few seconds later (TargetUnreachableError); a refusal will not. */
function explainListingFailure(url: string, error: CommandFailedError): BackupFailedError {
  const lines = error.result.stderrTail.filter((line) => line.trim() !== '');
  const known = TARGET_CAUSES.find((cause) => lines.some((line) => cause.pattern.test(line)));
  // rsync's first line names the cause; its last one only sums up ("rsync error: ... (code 255)").
  const detail = (known === undefined ? lines[0] : lines.find((line) => known.pattern.test(line)))?.trim();
  const Failure = known?.transient === true ? TargetUnreachableError : BackupFailedError;
  return new Failure(
    `reading the backup chain at ${url} failed: ${known?.cause ?? 'rsync failed'}: ${detail ?? `exit code ${error.result.exitCode}`}`,
    known?.hint,
    { cause: error },
  );
}
