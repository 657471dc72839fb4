// duplicity command lines as data: pure builders, one per operation, for 0.8 and 3.x.
// Secrets never appear here: the passphrase travels in the PASSPHRASE environment variable.
import type { BackupKind } from '../domain.js';
import { type RsyncUrl, formatRsyncUrl } from '../remote/rsync-url.js';
import { type SshAccess, sshOptions } from '../remote/ssh.js';
import { type DuplicityVersion, isModernDuplicity } from './version.js';

export type Encryption =
  { readonly mode: 'none' } | { readonly mode: 'symmetric' } | { readonly mode: 'pubkey'; readonly key: string };

export interface DuplicitySettings extends SshAccess {
  readonly version: DuplicityVersion;
  /** duplicity's --archive-dir; each source has its own --name inside it. */
  readonly archiveDir: string;
  readonly name: string;
  readonly url: RsyncUrl;
  readonly encryption: Encryption;
  /** target.sign_key, or null: no signing. */
  readonly signKey: string | null;
  readonly volumeSizeMb: number;
  /** gpg's --compress-level for the volumes of a full backup (target.full_compress_level). */
  readonly fullCompressLevel: number;
  /** Volumes are built here before upload: /tmp may be a small tmpfs (Debian 13). */
  readonly tempDir: string;
}

type Argv = readonly [string, ...string[]];

/** A status read fails fast; an upload survives a short network hiccup. */
type Retries = 'fail-fast' | 'patient';

/**
 * gpg's S2K iteration count for a symmetric upload: the largest OpenPGP can encode, which is what
 * gpg-agent's own calibration picks on any CPU of the last decade. Calibrating takes gpg-agent
 * about 1.1 s at its first use, and each run starts a new gpg-agent (endSession stops it), so
 * naming the count keeps the key derivation as strong as gpg's default and skips the calibration.
 */
export const S2K_COUNT = 65_011_712;

/** How gpg is used: a full's volumes, an incremental's, or only to decrypt or not at all. */
type GpgUse = BackupKind | 'other';

function encryptionOptions(settings: DuplicitySettings, use: GpgUse): string[] {
  const { encryption } = settings;
  if (encryption.mode === 'none') return ['--no-encryption'];
  const gpgOptions = [
    // The operator named the key in the config: that is the trust decision, gpg need not ask for one.
    ...(encryption.mode === 'pubkey' ? ['--trust-model=always'] : []),
    // A full compresses the whole dump: that is where gpg's CPU goes. An incremental carries a few
    // per cent of it, stays on the target for the chain's life, and keeps gpg's default level.
    ...(use === 'full' ? [`--compress-level=${settings.fullCompressLevel}`] : []),
    ...(use !== 'other' && encryption.mode === 'symmetric' ? [`--s2k-count=${S2K_COUNT}`] : []),
  ];
  // One --gpg-options: 0.8 joins repeated ones, but one value reads the same to every version.
  return [
    ...(encryption.mode === 'pubkey' ? ['--encrypt-key', encryption.key] : []),
    ...(gpgOptions.length === 0 ? [] : [`--gpg-options=${gpgOptions.join(' ')}`]),
  ];
}

function commonOptions(settings: DuplicitySettings, retries: Retries, use: GpgUse = 'other'): string[] {
  return [
    '--archive-dir',
    settings.archiveDir,
    '--name',
    settings.name,
    // Default is 5 tries with 30 s back-off: a dead target would hold the run for minutes.
    ...(retries === 'fail-fast' ? ['--num-retries', '1'] : ['--num-retries', '3', '--backend-retry-delay', '10']),
    `--ssh-options=${sshOptions(settings).join(' ')}`,
    '--tempdir',
    settings.tempDir,
    ...encryptionOptions(settings, use),
  ];
}

/**
 * Only the upload (signs each volume) and the restore (checks each volume it decrypts) take the key.
 * collection-status, cleanup and removal read no volume, so a key there would check nothing.
 */
function signing(settings: DuplicitySettings): string[] {
  return settings.signKey === null ? [] : ['--sign-key', settings.signKey];
}

export function backupCommand(settings: DuplicitySettings, kind: BackupKind, sourceDir: string): Argv {
  const modern = isModernDuplicity(settings.version);
  return [
    'duplicity',
    kind === 'full' ? 'full' : 'incremental',
    ...commonOptions(settings, 'patient', kind),
    ...signing(settings),
    '--volsize',
    String(settings.volumeSizeMb),
    // 3.x picks rsync blocks of sqrt(file size): 3.6x larger incrementals for scattered row changes
    // in a plain dump. 2048 is what 0.8 effectively uses.
    '--max-blocksize',
    '2048',
    // 0.8 only: build the next volume while the previous one uploads (3.x uses --concurrency instead).
    ...(modern ? [] : ['--asynchronous-upload']),
    sourceDir,
    formatRsyncUrl(settings.url),
  ];
}

export function collectionStatusCommand(settings: DuplicitySettings): Argv {
  return [
    'duplicity',
    'collection-status',
    ...commonOptions(settings, 'fail-fast'),
    '--log-fd',
    '3',
    formatRsyncUrl(settings.url),
  ];
}

export function removeAllButNFullCommand(settings: DuplicitySettings, keepFull: number): Argv {
  return [
    'duplicity',
    'remove-all-but-n-full',
    String(keepFull),
    '--force',
    ...commonOptions(settings, 'patient'),
    formatRsyncUrl(settings.url),
  ];
}

export function cleanupCommand(settings: DuplicitySettings): Argv {
  return ['duplicity', 'cleanup', '--force', ...commonOptions(settings, 'patient'), formatRsyncUrl(settings.url)];
}

/** Restores the whole backup at `time` (duplicity time syntax) into an empty directory. */
export function restoreCommand(settings: DuplicitySettings, time: string, destination: string): Argv {
  return [
    'duplicity',
    'restore',
    '--time',
    time,
    ...commonOptions(settings, 'patient'),
    ...signing(settings),
    formatRsyncUrl(settings.url),
    destination,
  ];
}

/**
 * Environment for every duplicity call. PASSPHRASE is always set: the real passphrase for symmetric
 * mode, empty otherwise, because without it duplicity prompts and dies on a closed stdin (rc 30).
 * SIGN_PASSPHRASE likewise, and empty: the signing key has none (with --sign-key and no variable,
 * 0.8 prompts and dies with rc 30 even for such a key).
 */
export function duplicityEnvironment(passphrase: string, gnupgHome: string): Record<string, string> {
  return { PASSPHRASE: passphrase, SIGN_PASSPHRASE: '', GNUPGHOME: gnupgHome };
}
