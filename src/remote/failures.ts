// How the target's ssh and rsync say no, as causes the operator can act on. Some are permanent:
// no retry can fix a changed host key, a refused key or a directory that is missing or read-only,
// so a command that prints one is stopped at that line instead of retrying for minutes (duplicity
// retries every backend error alike).
import { BackupFailedError } from '../errors.js';
import type { CommandFailedError } from '../system/run-command.js';

export interface Cause {
  readonly pattern: RegExp;
  readonly cause: string;
  readonly hint: string;
  /** Stop the command at the first such line: retrying cannot help. */
  readonly permanent?: true;
  /** Worth another try in a few seconds: a server restarting, or sshd's MaxStartups dropping a connection. */
  readonly transient?: true;
}

export const TARGET_CAUSES: readonly Cause[] = [
  {
    // Before "Host key verification failed", which ssh prints after this too.
    pattern: /REMOTE HOST IDENTIFICATION HAS CHANGED/,
    cause: "the target's host key has changed: it is not the key pinned in target.known_hosts",
    hint: 'if the target was reinstalled, get its new key fingerprint from its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and replace its line in target.known_hosts; otherwise something is answering in its place: do not connect',
    permanent: true,
  },
  {
    pattern: /Host key verification failed/,
    cause: "the target's host key is not in known_hosts (or it changed)",
    hint: 'as root: ssh-keyscan -p PORT HOST >> the file named by target.known_hosts, after checking the fingerprint',
    permanent: true,
  },
  {
    pattern: /Permission denied \(publickey|Permission denied, please try again/,
    cause: 'the target refused the ssh key',
    hint: "add the public half of target.ssh_key to the target account's ~/.ssh/authorized_keys",
    permanent: true,
  },
  {
    pattern:
      /Connection refused|Connection timed out|No route to host|Could not resolve hostname|Network is unreachable|Connection closed by|connect to host/,
    cause: 'the target is unreachable',
    hint: "check that the host is up, its sshd listens on the port in target.url, and the network allows it (a fleet that connects at once can pass sshd's MaxStartups: agent.spread)",
    transient: true,
  },
  {
    pattern: /change_dir .* failed: No such file or directory/,
    cause: 'the directory does not exist on the target',
    hint: 'create the base directory of target.url on the target',
    permanent: true,
  },
  {
    // rsync's receiver: "mkstemp ... failed: Permission denied (13)", or a read-only file system.
    pattern: /failed: (Permission denied \(13\)|Read-only file system \(30\))/,
    cause: 'the target directory is not writable for the target account',
    hint: 'on the target, give the account of target.url write access to its directory (and its source subdirectories)',
    permanent: true,
  },
];

/** Any line of a permanent cause; the runner stops the command when one appears. */
export const PERMANENT_REFUSAL = new RegExp(
  TARGET_CAUSES.filter((cause) => cause.permanent)
    .map((cause) => cause.pattern.source)
    .join('|'),
);

/** A failure another try a few seconds later may not meet: the target did not answer. */
export class TargetUnreachableError extends BackupFailedError {}

/**
 * A failed command as the operator reads it: what failed, the first known cause its stderr shows,
 * the line that shows it (`detailOf` picks one when no cause is known), and the fix.
 */
export function explainCommandFailure(
  what: string,
  error: CommandFailedError,
  causes: readonly Cause[],
  fallback: {
    readonly cause: string;
    readonly detailOf: (lines: readonly string[], known?: Cause) => string | undefined;
  },
): BackupFailedError {
  const lines = error.result.stderrTail.filter((line) => line.trim() !== '');
  const known = causes.find((cause) => lines.some((line) => cause.pattern.test(line)));
  const detail = fallback.detailOf(lines, known)?.trim() ?? `exit code ${error.result.exitCode}`;
  const Failure = known?.transient === true ? TargetUnreachableError : BackupFailedError;
  return new Failure(`${what} failed: ${known?.cause ?? fallback.cause}: ${detail}`, known?.hint, { cause: error });
}

/** The agent's own rsync calls to the target (listing, directory, write probe). */
export function explainRsyncFailure(what: string, error: CommandFailedError): BackupFailedError {
  return explainCommandFailure(what, error, TARGET_CAUSES, {
    cause: 'rsync failed',
    // rsync's first line names the cause; its last one only sums up ("rsync error: ... (code 255)").
    detailOf: (lines, known) => (known === undefined ? lines[0] : lines.find((line) => known.pattern.test(line))),
  });
}
