// The command lines for both duplicity generations (0.8.22 on Debian 12, 3.0.4 on Debian 13), as
// verified against both: the options that exist only in one version must only go there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRsyncUrl } from '../remote/rsync-url.js';
import {
  type DuplicitySettings,
  backupCommand,
  cleanupCommand,
  collectionStatusCommand,
  duplicityEnvironment,
  removeAllButNFullCommand,
  restoreCommand,
  S2K_COUNT,
} from './command.js';
import { parseDuplicityVersion } from './version.js';

function settings(versionText: string, overrides: Partial<DuplicitySettings> = {}): DuplicitySettings {
  const version = parseDuplicityVersion(versionText);
  const url = parseRsyncUrl('rsync://backup@backup.example.org:2222//srv/backups/mysql');
  assert.ok(version && url);
  return {
    version,
    archiveDir: '/var/cache/backup-agent',
    name: 'mysql',
    url,
    encryption: { mode: 'symmetric' },
    signKey: null,
    volumeSizeMb: 200,
    fullCompressLevel: 4,
    tempDir: '/var/cache/backup-agent/tmp',
    sshKey: '/etc/backup-agent/id_ed25519',
    knownHosts: '/etc/backup-agent/known_hosts',
    controlDir: '/var/cache/backup-agent',
    ...overrides,
  };
}

test('0.8 builds the next volume during the upload; 3.x has no --asynchronous-upload', () => {
  const old = backupCommand(settings('duplicity 0.8.22'), 'incremental', '/staging/mysql');
  const modern = backupCommand(settings('duplicity 3.0.4'), 'incremental', '/staging/mysql');
  assert.ok(old.includes('--asynchronous-upload'));
  assert.ok(!modern.includes('--asynchronous-upload'));
  for (const argv of [old, modern]) {
    assert.equal(argv[1], 'incremental');
    assert.deepEqual(argv.slice(-2), ['/staging/mysql', 'rsync://backup@backup.example.org:2222//srv/backups/mysql']);
    // 3.x would pick sqrt(file size) blocks: far larger incrementals for a plain dump.
    assert.equal(argv[argv.indexOf('--max-blocksize') + 1], '2048');
    assert.equal(argv[argv.indexOf('--volsize') + 1], '200');
  }
});

test('restore uses only the options both versions accept, and no path-to-restore option', () => {
  for (const version of ['duplicity 0.8.22', 'duplicity 3.0.4']) {
    const argv = restoreCommand(settings(version), '2026-11-20T23:15:00Z', '/restore/mysql');
    assert.deepEqual(argv.slice(0, 4), ['duplicity', 'restore', '--time', '2026-11-20T23:15:00Z']);
    assert.ok(!argv.some((arg) => /--file-to-restore|--path-to-restore/.test(arg)));
    assert.deepEqual(argv.slice(-2), ['rsync://backup@backup.example.org:2222//srv/backups/mysql', '/restore/mysql']);
  }
});

test('a status read fails fast, an upload retries; ssh pins the key and the host key', () => {
  const status = collectionStatusCommand(settings('duplicity 3.0.4'));
  assert.equal(status[status.indexOf('--num-retries') + 1], '1');
  assert.ok(status.includes('--log-fd'));
  const upload = backupCommand(settings('duplicity 3.0.4'), 'full', '/s');
  assert.equal(upload[upload.indexOf('--num-retries') + 1], '3');
  const ssh = upload.find((arg) => arg.startsWith('--ssh-options='));
  assert.match(ssh ?? '', /-oIdentityFile=\/etc\/backup-agent\/id_ed25519/);
  assert.match(ssh ?? '', /-oStrictHostKeyChecking=yes/);
});

test('encryption modes: symmetric passes nothing secret; pubkey names the key; none disables gpg', () => {
  const symmetric = backupCommand(settings('duplicity 0.8.22'), 'full', '/s');
  assert.ok(!symmetric.some((arg) => /encrypt|passphrase/i.test(arg)));
  const pubkey = backupCommand(
    settings('duplicity 0.8.22', { encryption: { mode: 'pubkey', key: 'ABCDEF0123456789' } }),
    'full',
    '/s',
  );
  assert.equal(pubkey[pubkey.indexOf('--encrypt-key') + 1], 'ABCDEF0123456789');
  const none = backupCommand(settings('duplicity 3.0.4', { encryption: { mode: 'none' } }), 'full', '/s');
  assert.ok(none.includes('--no-encryption'));
  // Without PASSPHRASE (or, with --sign-key, SIGN_PASSPHRASE) duplicity prompts and dies on a closed stdin.
  assert.deepEqual(duplicityEnvironment('', '/g'), { PASSPHRASE: '', SIGN_PASSPHRASE: '', GNUPGHOME: '/g' });
});

test('sign_key: uploads sign and restores check; operations that read no volume do not take the key', () => {
  const key = '0123456789ABCDEF0123456789ABCDEF01234567';
  for (const version of ['duplicity 0.8.22', 'duplicity 3.0.4']) {
    for (const encryption of [{ mode: 'symmetric' } as const, { mode: 'pubkey', key: 'FEDCBA9876543210' } as const]) {
      const signed = settings(version, { signKey: key, encryption });
      for (const argv of [
        backupCommand(signed, 'full', '/s'),
        backupCommand(signed, 'incremental', '/s'),
        restoreCommand(signed, 'now', '/restore/mysql'),
      ]) {
        assert.equal(argv[argv.indexOf('--sign-key') + 1], key, argv.join(' '));
        // Options, not operands: the URL and the directories stay last.
        assert.ok(argv.indexOf('--sign-key') < argv.length - 2);
      }
      for (const argv of [
        collectionStatusCommand(signed),
        cleanupCommand(signed),
        removeAllButNFullCommand(signed, 4),
      ]) {
        assert.ok(!argv.includes('--sign-key'), argv.join(' '));
      }
    }
    const unsigned = settings(version);
    for (const argv of [backupCommand(unsigned, 'full', '/s'), restoreCommand(unsigned, 'now', '/r')]) {
      assert.ok(!argv.includes('--sign-key'), argv.join(' '));
    }
  }
});

test('gpg options: a full sets its compression level, every upload the S2K count, in one --gpg-options', () => {
  const gpgOptions = (argv: readonly string[]): string[] =>
    argv.filter((arg) => arg.startsWith('--gpg-options')).map((arg) => arg.slice('--gpg-options='.length));
  for (const version of ['duplicity 0.8.22', 'duplicity 3.0.4']) {
    const symmetric = settings(version, { fullCompressLevel: 1 });
    assert.deepEqual(gpgOptions(backupCommand(symmetric, 'full', '/s')), [
      `--compress-level=1 --s2k-count=${S2K_COUNT}`,
    ]);
    // An incremental keeps gpg's default level: its bytes stay as small as the plain workflow's.
    assert.deepEqual(gpgOptions(backupCommand(symmetric, 'incremental', '/s')), [`--s2k-count=${S2K_COUNT}`]);
    // Decryption reads both from the volume: nothing to set for a restore or a listing.
    for (const argv of [
      restoreCommand(symmetric, 'now', '/r'),
      collectionStatusCommand(symmetric),
      cleanupCommand(symmetric),
    ])
      assert.deepEqual(gpgOptions(argv), [], argv.join(' '));

    const pubkey = settings(version, { encryption: { mode: 'pubkey', key: 'FEDCBA9876543210' } });
    // No passphrase, no S2K; the trust decision and the level share the one option.
    assert.deepEqual(gpgOptions(backupCommand(pubkey, 'full', '/s')), ['--trust-model=always --compress-level=4']);
    assert.deepEqual(gpgOptions(backupCommand(pubkey, 'incremental', '/s')), ['--trust-model=always']);
    assert.deepEqual(gpgOptions(restoreCommand(pubkey, 'now', '/r')), ['--trust-model=always']);

    const none = settings(version, { encryption: { mode: 'none' } });
    assert.deepEqual(gpgOptions(backupCommand(none, 'full', '/s')), []);
  }
});
