// target.sign_key against the real programs (MariaDB, sshd, duplicity 0.8, gpg). With public-key
// encryption anyone who can write to the target can encrypt a backup set of their own; signing is
// what lets the restore tell it from the host's. The forger here is the backup user with plain
// duplicity and no --sign-key, as someone with only the target's write access and the public key.
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost } from './harness/agent.js';
import { type GpgHome, addSigningKey, makeGpgHome, removeGpgHome } from './harness/gpg.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { uploadForgedSet } from './harness/forge.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { asBackupUser, chownToBackup, makeTempDir } from './harness/temp-dir.js';

let mariadb: MariaDb;
let target: SshTarget;
let keys: GpgHome;
let signKey: string;
let host: AgentHost;

const FORGED_TABLE = 'planted_by_forger';

before(async () => {
  [mariadb, target, keys] = await Promise.all([startMariaDb(), startSshTarget(), makeGpgHome()]);
  signKey = await addSigningKey(keys.home);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  host = await makeAgentHost({ mariadb, target, gpg: keys });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
  if (keys !== undefined) await removeGpgHome(keys.home);
});

function signedConfig(sign_key: string, dir = 'signed') {
  return {
    influxdb: null,
    target: { url: `${target.url}/${dir}`, encryption: 'pubkey', encrypt_key: keys.fingerprint, sign_key },
  };
}

/**
 * Uploads the host's staged dump plus a table of the forger's, with MANIFEST.json and SHA256SUMS
 * made to match, as the newest incremental: everything the agent checks holds except the signature.
 */
async function forgeNewestSet(targetDir: string, duplicityOptions: readonly string[]): Promise<void> {
  await uploadForgedSet({
    from: join(host.stagingDir, 'mysql'),
    target,
    url: `${target.url}/${targetDir}/mysql`,
    env: ['PASSPHRASE=', `GNUPGHOME=${keys.home}`],
    duplicityOptions,
    change: async (dir) => {
      const dump = join(dir, `${MYSQL_DATABASE}.sql`);
      // At the top: the dump must still end with its "-- Dump completed" line.
      await writeFile(dump, `CREATE TABLE ${FORGED_TABLE} (id INT PRIMARY KEY);\n${await readFile(dump, 'utf8')}`);
    },
  });
}

async function hasForgedTable(): Promise<boolean> {
  const tables = await mariadb.sql(`SHOW TABLES FROM ${MYSQL_DATABASE}`);
  return tables.split('\n').includes(FORGED_TABLE);
}

test('check and run refuse a sign_key whose secret key is not in gnupg_home, before any dump', async () => {
  const missing = '0123456789ABCDEF0123456789ABCDEF01234567';
  await host.writeConfig(signedConfig(missing));
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 1, check.stdout + check.stderr);
  const output = check.stdout + check.stderr;
  assert.match(
    output,
    new RegExp(`target\\.sign_key ${missing}: its secret key is not in target\\.gnupg_home ${keys.home}`),
  );
  assert.match(output, /--quick-gen-key 'backup-agent signing' ed25519 sign never/);

  const run = await host.run(['run']);
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(run.stdout + run.stderr, /its secret key is not in target\.gnupg_home/);
  assert.deepEqual(await readdir(host.stagingDir), [], 'nothing was dumped');

  await host.writeConfig(signedConfig(signKey));
  const good = await host.run(['check']);
  assert.match(good.stdout + good.stderr, new RegExp(`${signKey} in ${keys.home} signs every volume`));
});

test('signed backups restore; a planted unsigned set is refused and the live database stays as it was', async () => {
  await host.writeConfig(signedConfig(signKey));
  const backup = await host.run(['run']);
  assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
  const original = await mariadb.fingerprint(MYSQL_DATABASE);
  await changeData(mariadb, MYSQL_DATABASE, 7);
  const restored = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original, 'signed volumes restore');

  // Encrypted to the public key, as anyone can, but not signed.
  await forgeNewestSet('signed', ['--encrypt-key', keys.fingerprint, '--gpg-options=--trust-model=always']);
  const refused = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /not signed by target\.sign_key, so this host did not make it/);
  assert.match(refused.stderr, /Volume was signed by key None/);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original, 'the live database is unchanged');
  assert.equal(await hasForgedTable(), false);

  // The control: the same target restores the forged set once signing is off, so the refusal
  // above came from the signature and from nothing else the agent checks.
  await host.writeConfig(signedConfig(''));
  const unsigned = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(unsigned.exitCode, 0, unsigned.stdout + unsigned.stderr);
  assert.equal(await hasForgedTable(), true, 'without sign_key the forged set is restored');
  await mariadb.sql(`DROP TABLE ${MYSQL_DATABASE}.${FORGED_TABLE}`);
});

test('a planted unencrypted volume, which duplicity would restore unchecked, is refused before the download', async () => {
  // A target of its own: the unsigned set planted above would stop duplicity's own restore below.
  await host.writeConfig(signedConfig(signKey, 'planted'));
  const backup = await host.run(['run']);
  assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
  const before = await mariadb.fingerprint(MYSQL_DATABASE);
  // duplicity reads a *.difftar.gz volume as plain gzip: no gpg, so no signature check at all.
  await forgeNewestSet('planted', ['--no-encryption']);
  const refused = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /holds unencrypted volume\(s\) \(duplicity-inc\.\S+\.vol1\.difftar\.gz\)/);
  assert.match(refused.stderr, /although target\.encryption = pubkey/);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), before, 'the live database is unchanged');
  assert.equal(await hasForgedTable(), false);

  // What the guard stands for: duplicity itself, with --sign-key, restores the planted volume (rc 0).
  const restoreDir = await makeTempDir('plain-restore');
  await chownToBackup(restoreDir);
  const plain = await execa(
    'setpriv',
    await asBackupUser([
      'env',
      'PASSPHRASE=',
      'SIGN_PASSPHRASE=',
      `GNUPGHOME=${keys.home}`,
      `HOME=${restoreDir}`,
      'duplicity',
      'restore',
      '--encrypt-key',
      keys.fingerprint,
      '--sign-key',
      signKey,
      '--archive-dir',
      join(restoreDir, 'cache'),
      '--name',
      'plain',
      `--ssh-options=-oIdentityFile=${target.clientKey} -oUserKnownHostsFile=${target.knownHosts}`,
      `${target.url}/planted/mysql`,
      join(restoreDir, 'out'),
    ]),
    { reject: false, stdin: 'ignore' },
  );
  try {
    assert.equal(plain.exitCode, 0, plain.stderr);
    const dump = await readFile(join(restoreDir, 'out', `${MYSQL_DATABASE}.sql`), 'utf8');
    assert.ok(dump.includes(FORGED_TABLE), 'duplicity restored the unsigned, unencrypted volume');
  } finally {
    await rm(restoreDir, { recursive: true, force: true });
  }
});
