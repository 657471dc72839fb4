// Turns duplicity's and rsync's stderr into a cause the operator can act on. Some causes are
// permanent: no retry can fix a changed host key or a refused key, so the command is stopped at the
// first such line instead of retrying for minutes (duplicity retries every backend error alike).
import { BackupFailedError } from '../errors.js';
import { CommandFailedError } from '../system/run-command.js';

interface Cause {
  readonly pattern: RegExp;
  readonly cause: string;
  readonly hint: string;
  /** Stop the command at the first such line: retrying cannot help. */
  readonly permanent?: true;
}

const CAUSES: readonly Cause[] = [
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
    hint: 'check that the host is up, its sshd listens on the port in target.url, and the network allows it',
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
  {
    pattern: /Another duplicity instance is already running/,
    cause: 'another duplicity is using the same cache (a previous run may still be going)',
    hint: 'wait for it to finish; if none is running, remove the lockfile in agent.cache_dir',
  },
  {
    // 0.8 checks the signature of each encrypted volume as it finishes reading it (rc 22).
    pattern: /Volume was signed by key/,
    cause: 'a volume on the target is not signed by target.sign_key, so this host did not make it',
    hint: 'someone who can write to the target planted or changed it: keep the target as it is for inspection; backup-agent list shows older restore points (--time)',
  },
  {
    // Before the "No secret key" below: here the signing key is missing, not a decryption key.
    pattern: /(sign\+encrypt|sign\+symmetric|signing) failed/,
    cause: 'gpg could not sign with target.sign_key',
    hint: 'backup-agent check names the reason (a secret key missing from target.gnupg_home, or one with a passphrase)',
  },
  {
    pattern: /Bad session key|decryption failed: Bad/,
    cause: 'wrong passphrase for these backups',
    hint: 'target.passphrase_file must hold the passphrase the backups were made with',
  },
  {
    pattern: /No secret key/,
    cause: 'the secret key needed to decrypt is not in target.gnupg_home',
    hint: 'import the secret key (kept off-host) into target.gnupg_home for restores',
  },
  {
    pattern: /Unusable public key|No public key|public key not found/,
    cause: 'the public key of target.encrypt_key is not usable',
    hint: 'import it: gpg --homedir GNUPG_HOME --import key.asc (as the backup user)',
  },
  {
    pattern: /No space left on device/,
    cause: 'a disk is full (the cache/tmp here or the target)',
    hint: 'free space, then run again: duplicity resumes the interrupted upload',
  },
];

/** Any line of a permanent cause; the runner stops the command when one appears. */
export const PERMANENT_REFUSAL = new RegExp(
  CAUSES.filter((cause) => cause.permanent)
    .map((cause) => cause.pattern.source)
    .join('|'),
);

export function explainDuplicityFailure(what: string, error: CommandFailedError): BackupFailedError {
  const stderr = error.result.stderrTail.join('\n');
  const known = CAUSES.find((candidate) => candidate.pattern.test(stderr));
  const detail = lastMeaningfulLine(error.result.stderrTail) ?? `exit code ${error.result.exitCode}`;
  return new BackupFailedError(`${what} failed: ${known?.cause ?? 'duplicity failed'}: ${detail}`, known?.hint, {
    cause: error,
  });
}

function lastMeaningfulLine(lines: readonly string[]): string | undefined {
  const meaningful = lines.filter(
    (line) => line.trim() !== '' && !/^=====|^Attempt .* failed|^Giving up|^Traceback|^\s+File "/.test(line),
  );
  return meaningful.at(-1)?.trim();
}

/** True when duplicity failed only because the directory on the target does not exist yet. */
export function isMissingTargetDirectory(error: unknown): boolean {
  const cause = error instanceof BackupFailedError ? error.cause : error;
  return (
    cause instanceof CommandFailedError &&
    /change_dir .* failed: No such file or directory/.test(cause.result.stderrTail.join('\n'))
  );
}
