// Turns duplicity's stderr into a cause the operator can act on: the target's refusals
// (remote/failures.ts) and duplicity's and gpg's own.
import { BackupFailedError } from '../errors.js';
import { CommandFailedError } from '../system/run-command.js';
import { type Cause, TARGET_CAUSES, explainCommandFailure } from '../remote/failures.js';

const CAUSES: readonly Cause[] = [
  ...TARGET_CAUSES,
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

export function explainDuplicityFailure(what: string, error: CommandFailedError): BackupFailedError {
  return explainCommandFailure(what, error, CAUSES, { cause: 'duplicity failed', detailOf: lastMeaningfulLine });
}

function lastMeaningfulLine(lines: readonly string[]): string | undefined {
  const meaningful = lines.filter(
    (line) => line.trim() !== '' && !/^=====|^Attempt .* failed|^Giving up|^Traceback|^\s+File "/.test(line),
  );
  return meaningful.at(-1)?.trim();
}

/**
 * True when duplicity, or the agent's rsync listing (target-listing.ts), failed only because the
 * directory on the target does not exist yet: both print rsync's change_dir line.
 */
export function isMissingTargetDirectory(error: unknown): boolean {
  const cause = error instanceof BackupFailedError ? error.cause : error;
  return (
    cause instanceof CommandFailedError &&
    /change_dir .* failed: No such file or directory/.test(cause.result.stderrTail.join('\n'))
  );
}
