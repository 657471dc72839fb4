// Retention against real MariaDB, sshd+rsync and duplicity: after a full, older chains are removed
// down to keep_full only once the target's own listing shows the new full whole. A full whose
// volume disappears from the target between its upload and that check must not push out a chain.
import assert from 'node:assert/strict';
import { unlink, watch } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { restoreWithDuplicity, targetChains } from './harness/duplicity.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { fingerprintOfSqlDump } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  host = await makeAgentHost({ mariadb, target });
  await host.writeConfig({ agent: { keep_full: '2' } });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
});

/** Times of the full sets on the target, from the manifest names, oldest first. */
async function fullTimes(): Promise<string[]> {
  return (await target.listFiles('mysql'))
    .map((file) => /^duplicity-full\.(\d{8}T\d{6}Z)\.manifest\.gpg$/.exec(file.name)?.[1])
    .filter((time) => time !== undefined)
    .sort();
}

test('three runs of run --full with keep_full = 2 leave exactly 2 full chains, and the newest restores', async () => {
  for (let run = 1; run <= 3; run++) {
    await changeData(mariadb, MYSQL_DATABASE, run);
    const result = await host.run(['run', '--full']);
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    assert.equal(summaryOf(result, 'mysql')['kind'], 'full');
    assert.ok(
      result.logs.some((log) =>
        /^retention: the new full of \S+ is complete on the target \(1 volume\); /.test(log.msg),
      ),
      result.stdout,
    );
  }
  assert.deepEqual((await targetChains(host, target, 'mysql')).chains, [['full'], ['full']]);
  const restored = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, restored, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
    'the newest chain holds the data of the third run',
  );
});

test('a new full that is not whole on the target removes no chain, and the run fails at retention', async () => {
  const dir = join(target.targetDir, 'mysql');
  const kept = await fullTimes();
  assert.equal(kept.length, 2);
  const filesBefore = await target.listFiles('mysql');

  // The fault: as soon as the new full's manifest lands (duplicity uploads it last), its only
  // volume vanishes from the target, as on a failing disk or with a second hand on the directory.
  const stop = new AbortController();
  const removed: string[] = [];
  const saboteur = (async () => {
    try {
      for await (const event of watch(dir, { signal: stop.signal })) {
        const time = /^duplicity-full\.(\d{8}T\d{6}Z)\.manifest\.gpg$/.exec(event.filename ?? '')?.[1];
        if (time === undefined || kept.includes(time)) continue;
        const volume = `duplicity-full.${time}.vol1.difftar.gpg`;
        await unlink(join(dir, volume));
        removed.push(volume);
      }
    } catch (error) {
      if (!stop.signal.aborted) throw error;
    }
  })();
  await changeData(mariadb, MYSQL_DATABASE, 4);
  const result = await host.run(['run', '--full']).finally(() => stop.abort());
  await saboteur;
  assert.equal(removed.length, 1, 'the fault was injected');

  assert.equal(result.exitCode, 1, result.stdout + result.stderr);
  const mysql = summaryOf(result, 'mysql');
  assert.equal(mysql['result'], 'failed');
  assert.equal(mysql['stage'], 'retention');
  assert.match(
    String(mysql['error']),
    /^retention skipped: the new full of \S+ is not complete on the target: the target lists it with no manifest or no volumes; its newest listed full is from \S+ \(no chain was removed/,
  );
  assert.equal(mysql['level'], 50);

  const filesAfter = new Set((await target.listFiles('mysql')).map((file) => file.name));
  for (const file of filesBefore) assert.ok(filesAfter.has(file.name), `${file.name} of an older chain was removed`);
  const times = await fullTimes();
  assert.equal(times.length, 3, 'the broken full is left for inspection');
  assert.deepEqual(times.slice(0, 2), kept);
  // duplicity itself does not list a full without volumes: the two older chains are what restores.
  assert.deepEqual((await targetChains(host, target, 'mysql')).chains, [['full'], ['full']]);
});
