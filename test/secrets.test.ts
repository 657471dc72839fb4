// Encryption and secrets against the real programs: public-key backups need only the public key
// on the host and restore only with the secret one; the passphrase and the MySQL password never
// show up in any process's argv or in the output; encryption = none is loud.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { MYSQL_DATABASE, MYSQL_PASSWORD, PASSPHRASE, makeAgentHost } from './harness/agent.js';
import { type GpgHome, exportPublicOnlyHome, makeGpgHome, removeGpgHome } from './harness/gpg.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let target: SshTarget;
let keys: GpgHome;
let publicOnly: GpgHome;

before(async () => {
  [mariadb, target, keys] = await Promise.all([startMariaDb(), startSshTarget(), makeGpgHome()]);
  publicOnly = await exportPublicOnlyHome(keys);
  await seedDatabase(mariadb, MYSQL_DATABASE, 1500);
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), removeGpgHome(keys.home), removeGpgHome(publicOnly.home)]);
});

async function volumesOf(source: string): Promise<Buffer[]> {
  const dir = join(target.targetDir, source);
  const names = (await readdir(dir)).filter((name) => name.includes('.vol'));
  return Promise.all(names.map((name) => readFile(join(dir, name))));
}

test('pubkey: the host encrypts with the public key only; restore needs the secret key', async () => {
  const host = await makeAgentHost({ mariadb, target, gpg: publicOnly });
  try {
    await host.writeConfig({
      target: { url: `${target.url}/pubkey`, encryption: 'pubkey', encrypt_key: publicOnly.fingerprint },
    });
    const backup = await host.run(['run']);
    assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
    const volumes = await volumesOf('pubkey/mysql');
    assert.ok(volumes.length > 0);
    for (const volume of volumes) assert.equal(volume.includes('CREATE TABLE'), false, 'volumes are encrypted');
    const original = await mariadb.fingerprint(MYSQL_DATABASE);

    await changeData(mariadb, MYSQL_DATABASE, 11);
    const withoutSecret = await host.run(['restore', 'mysql', '--yes']);
    assert.equal(withoutSecret.exitCode, 1, withoutSecret.stderr);
    assert.match(withoutSecret.stderr, /secret key needed to decrypt is not in target\.gnupg_home/);
    assert.notEqual(await mariadb.fingerprint(MYSQL_DATABASE), original, 'nothing restored without the key');

    // As the runbook says: for the restore, the secret key is brought to the host.
    await host.writeConfig({
      target: {
        url: `${target.url}/pubkey`,
        encryption: 'pubkey',
        encrypt_key: publicOnly.fingerprint,
        gnupg_home: keys.home,
      },
    });
    const restored = await host.run(['restore', 'mysql', '--yes']);
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original);
  } finally {
    await host.remove();
  }
});

test('the passphrase and the MySQL password never appear in argv or in the output', async () => {
  const host = await makeAgentHost({ mariadb, target });
  try {
    await host.writeConfig({ target: { url: `${target.url}/secret` } });
    const running = host.start(['run', '--full']);
    const seen = new Set<string>();
    let finished = false;
    void running.finally(() => {
      finished = true;
    });
    let samples = 0;
    while (!finished) {
      const ps = await execa('ps', ['-eo', 'args'], { reject: false });
      for (const line of ps.stdout.split('\n')) if (/duplicity|mariadb-dump|gpg|rsync|ssh/.test(line)) seen.add(line);
      for (const secret of [PASSPHRASE, MYSQL_PASSWORD]) {
        assert.ok(!ps.stdout.includes(secret), `a process shows a secret in its argv:\n${ps.stdout}`);
      }
      samples++;
      await sleep(50);
    }
    const result = await running;
    assert.equal(result.exitCode, 0, result.all);
    assert.ok(samples > 20, `sampled ps only ${samples} times`);
    assert.ok(
      [...seen].some((line) => line.includes('duplicity')),
      'the sampling saw duplicity run',
    );
    for (const secret of [PASSPHRASE, MYSQL_PASSWORD]) assert.ok(!String(result.all).includes(secret));
  } finally {
    await host.remove();
  }
});

test('encryption = none uploads plain volumes and warns on every run', async () => {
  const host = await makeAgentHost({ mariadb, target });
  try {
    await host.writeConfig({ target: { url: `${target.url}/plain`, encryption: 'none' } });
    for (let run = 0; run < 2; run++) {
      const result = await host.run(['run']);
      assert.equal(result.exitCode, 0, result.stdout + result.stderr);
      assert.ok(
        result.logs.some((line) => line.level === 40 && /unencrypted/.test(line.msg)),
        `run ${run + 1} did not warn:\n${result.stdout}`,
      );
    }
    // Without encryption duplicity only gzips its volumes: anyone on the target can read the data.
    const volumes = await volumesOf('plain/mysql');
    assert.ok(
      volumes.some((volume) => gunzipSync(volume).includes('CREATE TABLE')),
      'plain volumes hold the dump as is',
    );
  } finally {
    await host.remove();
  }
});
