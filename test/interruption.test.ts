// kill -9 and SIGTERM in the middle of a dump and of an upload: the last good dump survives, no
// child is left behind (after SIGTERM not even the ssh master or the gpg-agent), the lock is free,
// and the next run completes a chain that restores.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { restoreWithDuplicity } from './harness/duplicity.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { isRunDaemon, leftoverProcesses, lockIsFree } from './harness/leftovers.js';
import { fingerprintOfSqlDump } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 200);
  // About 90 MB of poorly compressible dump, so that dump and upload last long enough to be hit.
  await mariadb.sql(
    'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(128), b CHAR(64), c CHAR(64)) ENGINE=InnoDB; ' +
      'INSERT INTO bulk SELECT seq, SHA2(seq, 512), SHA2(seq + 1, 256), MD5(seq) FROM seq_1_to_300000',
    MYSQL_DATABASE,
  );
  host = await makeAgentHost({ mariadb, target });
  await host.writeConfig({ target: { volume_size: '2' } });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
});

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * What a kill -9 leaves: a killed agent cleans nothing up, so its ssh master (closes itself 30 s
 * after its last use) and gpg-agent stay until the next run ends them; its children must not.
 */
async function childrenLeft(): Promise<string[]> {
  return (await leftoverProcesses(host.dir)).filter((line) => !isRunDaemon(line));
}

async function stagedDump(): Promise<string> {
  return readFile(join(host.stagingDir, 'mysql', `${MYSQL_DATABASE}.sql`), 'utf8');
}

test('kill -9 in the middle of the first upload: the next run resumes it and the chain restores', async () => {
  const agent = host.start(['run']);
  await waitFor('the second volume on the target', async () =>
    (await target.listFiles('mysql')).some((file) => /\.vol2\.difftar/.test(file.name)),
  );
  agent.kill('SIGKILL');
  await agent;
  await waitFor('children to exit after the agent died', async () => (await childrenLeft()).length === 0, 15_000);

  const next = await host.run(['run']);
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  assert.ok(
    next.logs.some((log) =>
      /the full upload started .* did not complete; running it again on the same dump/.test(log.msg),
    ),
  );
  const restored = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, restored, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
});

test('kill -9 in the middle of a dump leaves the previous dump untouched and no dump process', async () => {
  const previous = await stagedDump();
  await changeData(mariadb, MYSQL_DATABASE, 5);
  const agent = host.start(['run']);
  const partial = join(host.stagingDir, '.mysql.new', `${MYSQL_DATABASE}.sql`);
  await waitFor(
    'the dump to be under way',
    async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) > 1_000_000,
  );
  agent.kill('SIGKILL');
  await agent;
  await waitFor('mariadb-dump to exit after the agent died', async () => (await childrenLeft()).length === 0, 15_000);
  assert.equal(await stagedDump(), previous, 'the last good dump is byte-for-byte what it was');

  const next = await host.run(['run']);
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  assert.equal(summaryOf(next, 'mysql')['kind'], 'incremental');
  assert.match(await stagedDump(), /changed@5/);
});

test('SIGTERM in the middle of an upload leaves no process, not even the ssh master or gpg-agent, and exits 143', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 6);
  await mariadb.sql('UPDATE bulk SET c = MD5(id + 7) WHERE id % 3 = 0', MYSQL_DATABASE);
  const before = new Set((await target.listFiles('mysql')).map((file) => file.name));
  const agent = host.start(['run']);
  await waitFor('an incremental volume on the target', async () =>
    (await target.listFiles('mysql')).some(
      (file) => !before.has(file.name) && /^duplicity-inc\..*\.vol1\.difftar/.test(file.name),
    ),
  );
  agent.kill('SIGTERM');
  const result = await agent;
  assert.equal(result.exitCode, 143, result.all);
  assert.match(String(result.all), /SIGTERM received, stopping child processes/);
  assert.deepEqual(await leftoverProcesses(host.dir), [], 'rsync, ssh, its master and the gpg-agent are gone');
  assert.ok(await lockIsFree(host.cacheDir), 'the lock is released');

  const next = await host.run(['run']);
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  assert.ok(
    next.logs.some((log) => /the incremental upload started .* did not complete; running it again/.test(log.msg)),
    'the next run resumes the interrupted upload',
  );
  assert.deepEqual(await leftoverProcesses(host.dir), [], 'a normal run leaves nothing either');
  const restored = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, restored, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
});
