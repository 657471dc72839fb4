import { chmod } from 'node:fs/promises';
import { execa } from 'execa';
import { chownToBackup, makeTempDir, removeDir } from './temp-dir.js';

export interface GpgHome {
  /** GNUPGHOME, mode 0700, owned by backup. */
  home: string;
  fingerprint: string;
}

const USER_ID = 'backup-agent test <test@example.invalid>';

function gpg(home: string, args: string[], input?: string) {
  return execa(
    'gpg',
    ['--batch', '--no-tty', '--homedir', home, ...args],
    input === undefined ? { stdin: 'ignore' } : { input },
  );
}

async function killAgent(home: string): Promise<void> {
  await execa('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { reject: false, stdin: 'ignore' });
}

async function primaryFingerprint(home: string, secret: boolean): Promise<string> {
  const { stdout } = await gpg(home, ['--with-colons', secret ? '--list-secret-keys' : '--list-keys']);
  // The first `fpr` record belongs to the primary key; later ones are subkeys.
  const fpr = stdout.split('\n').find((line) => line.startsWith('fpr:'));
  const fingerprint = fpr?.split(':')[9];
  if (fingerprint === undefined || !/^[0-9A-F]{40,64}$/.test(fingerprint)) {
    throw new Error(`no key fingerprint in ${home}:\n${stdout}`);
  }
  return fingerprint;
}

// The agent gpg runs as backup; a root-owned gpg-agent left on this home would
// keep root-owned sockets in it, so it is stopped before handing the home over.
async function handOver(home: string): Promise<void> {
  await killAgent(home);
  await chmod(home, 0o700);
  await chownToBackup(home);
}

async function newHome(): Promise<string> {
  const home = await makeTempDir('gnupg');
  await chmod(home, 0o700);
  return home;
}

/** A key without passphrase and without expiry: what an unattended host can use. */
async function generateKey(home: string, userId: string, algorithm: string, usage: string): Promise<void> {
  await gpg(home, [
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    '',
    '--quick-gen-key',
    userId,
    algorithm,
    usage,
    'never',
  ]);
}

export async function makeGpgHome(): Promise<GpgHome> {
  const home = await newHome();
  try {
    await generateKey(home, USER_ID, 'default', 'default');
    const fingerprint = await primaryFingerprint(home, true);
    await handOver(home);
    return { home, fingerprint };
  } catch (err) {
    await removeGpgHome(home);
    throw err;
  }
}

/**
 * Adds a sign-only key without passphrase to `home`, made as SECURITY.md tells operators to, and
 * returns its fingerprint.
 */
export async function addSigningKey(home: string): Promise<string> {
  const userId = 'backup-agent signing <sign@example.invalid>';
  await generateKey(home, userId, 'ed25519', 'sign');
  const { stdout } = await gpg(home, ['--with-colons', '--list-secret-keys', userId]);
  const fingerprint = stdout
    .split('\n')
    .find((line) => line.startsWith('fpr:'))
    ?.split(':')[9];
  if (fingerprint === undefined || !/^[0-9A-F]{40}$/.test(fingerprint)) throw new Error(`no signing key in ${home}`);
  await handOver(home);
  return fingerprint;
}

// Lets a test prove that the backup host needs only the public key to encrypt.
export async function exportPublicOnlyHome(src: GpgHome): Promise<GpgHome> {
  const home = await newHome();
  try {
    const { stdout: armored } = await gpg(src.home, ['--armor', '--export', src.fingerprint]);
    if (!armored.includes('BEGIN PGP PUBLIC KEY BLOCK'))
      throw new Error(`gpg --export of ${src.fingerprint} returned no key`);
    await gpg(home, ['--import'], armored);
    // Ultimate trust, so encryption works even without --always-trust.
    await gpg(home, ['--import-ownertrust'], `${src.fingerprint}:6:\n`);
    const fingerprint = await primaryFingerprint(home, false);
    const secrets = await gpg(home, ['--with-colons', '--list-secret-keys']);
    if (secrets.stdout.includes('sec:')) throw new Error(`public-only home ${home} unexpectedly holds a secret key`);
    // Root just used the source home; whatever gpg touched there goes back to backup.
    await handOver(src.home);
    await handOver(home);
    return { home, fingerprint };
  } catch (err) {
    await removeGpgHome(home);
    throw err;
  }
}

export async function removeGpgHome(home: string): Promise<void> {
  await killAgent(home);
  await removeDir(home);
}
