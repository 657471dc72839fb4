// Proves that target.sign_key signs in target.gnupg_home the way duplicity will sign: without a
// passphrase. duplicity 0.8 does not notice on its own: when the named secret key is missing, gpg
// signs with another secret key of the home (or not at all) and the upload still exits 0, so the
// mistake would surface only at restore, as "Volume was signed by key ..., not ...".
import { BackupFailedError } from '../errors.js';
import { CommandFailedError, type CommandRunner, quickDeadline } from '../system/run-command.js';
import { stopGpgAgent } from './gpg-agent.js';

export async function proveSigningKey(runner: CommandRunner, gnupgHome: string, key: string): Promise<void> {
  const fix = `as the backup user: gpg --homedir ${gnupgHome} --batch --passphrase '' --quick-gen-key 'backup-agent signing' ed25519 sign never, then set target.sign_key to its fingerprint`;
  try {
    await runner.run({
      deadline: quickDeadline('proving target.sign_key'),
      argv: [
        'gpg',
        '--homedir',
        gnupgHome,
        '--batch',
        '--pinentry-mode',
        'loopback',
        // Empty, like duplicity's SIGN_PASSPHRASE: a key that needs a passphrase fails here as there.
        '--passphrase',
        '',
        // "!": exactly this key, never another secret key of the home.
        '--local-user',
        `${key}!`,
        '--sign',
        '--output',
        '/dev/null',
      ],
    });
  } catch (error) {
    if (!(error instanceof CommandFailedError) || error.signal !== undefined) throw error;
    const stderr = error.result.stderrTail.join('\n');
    if (/No secret key/.test(stderr)) {
      throw new BackupFailedError(
        `target.sign_key ${key}: its secret key is not in target.gnupg_home ${gnupgHome}`,
        `${fix} (or import the secret key there)`,
        { cause: error },
      );
    }
    if (/No passphrase given|Bad passphrase/.test(stderr)) {
      throw new BackupFailedError(
        `target.sign_key ${key} in ${gnupgHome} has a passphrase; backup-agent signs only with a key without one`,
        `${fix} (or remove its passphrase: gpg --homedir ${gnupgHome} --passwd ${key})`,
        { cause: error },
      );
    }
    throw new BackupFailedError(
      `target.sign_key ${key} cannot sign in ${gnupgHome}: ${error.result.stderrTail.at(-1) ?? `gpg exit code ${error.result.exitCode}`}`,
      fix,
      { cause: error },
    );
  } finally {
    await stopGpgAgent(runner, gnupgHome);
  }
}
