// No debris on any exit path: after each command that reaches the target or runs gpg, ended
// normally or by SIGTERM/SIGINT, no process of it is left (children, the ssh connection master,
// which ssh forks into a session of its own, and the gpg-agent), the run lock is free, and the
// scratch databases of `verify --import` are gone. Public-key encryption with a signing key, so that
// gpg needs its agent both to back up (signing) and to restore (decrypting).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost } from './harness/agent.js';
import { type GpgHome, addSigningKey, makeGpgHome, removeGpgHome } from './harness/gpg.js';
import { leftoverProcesses, lockIsFree } from './harness/leftovers.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let target: SshTarget;
let keys: GpgHome;
let host: AgentHost;

before(async () => {
  [mariadb, target, keys] = await Promise.all([startMariaDb(), startSshTarget(), makeGpgHome()]);
  const signKey = await addSigningKey(keys.home);
  await seedDatabase(mariadb, MYSQL_DATABASE, 200);
  host = await makeAgentHost({ mariadb, target, gpg: keys });
  await host.writeConfig({
    influxdb: null,
    target: { encryption: 'pubkey', encrypt_key: keys.fingerprint, sign_key: signKey, volume_size: '5' },
  });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
  if (keys !== undefined) await removeGpgHome(keys.home);
});

/** Everything of the agent's: its directory (cache, ssh socket, admin.cnf) and the gnupg home. */
function left(): Promise<string[]> {
  return leftoverProcesses(host.dir, keys.home);
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function running(pattern: string): Promise<boolean> {
  return (await execa('pgrep', ['-f', pattern], { reject: false })).exitCode === 0;
}

async function scratchDatabases(): Promise<string> {
  return mariadb.sql(`SHOW DATABASES LIKE '${MYSQL_DATABASE}\\_verify\\_%'`);
}

test('each command that reached the target or ran gpg leaves no ssh master and no gpg-agent', async () => {
  const commands = [
    ['run'],
    ['list'],
    ['status', '--remote'],
    ['check'],
    ['run', '--dry-run'],
    ['verify'],
    ['restore', 'mysql', '--yes'],
    ['verify', '--import'],
  ];
  for (const command of commands) {
    const result = await host.run(command);
    assert.equal(result.exitCode, 0, `${command.join(' ')}:\n${result.stdout}\n${result.stderr}`);
    assert.deepEqual(await left(), [], `left running after ${command.join(' ')}`);
  }
  assert.equal(await scratchDatabases(), '', 'verify --import dropped its scratch database');
});

test('SIGTERM in the middle of the import of verify --import: scratch database dropped, nothing left, exit 143', async () => {
  // About 90 MB of dump, so that the import lasts long enough to be hit.
  await mariadb.sql(
    'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(128), b CHAR(64), c CHAR(64)) ENGINE=InnoDB; ' +
      'INSERT INTO bulk SELECT seq, SHA2(seq, 512), SHA2(seq + 1, 256), MD5(seq) FROM seq_1_to_300000',
    MYSQL_DATABASE,
  );
  const backup = await host.run(['run']);
  assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
  const live = await mariadb.fingerprint(MYSQL_DATABASE);

  const drill = host.start(['verify', '--import']);
  await waitFor('the import into the scratch database', async () => running(`${MYSQL_DATABASE}_verify_`));
  await sleep(500);
  assert.notEqual(await scratchDatabases(), '', 'the scratch database exists while the import runs');
  drill.kill('SIGTERM');
  const result = await drill;

  assert.equal(result.exitCode, 143, result.all);
  assert.equal(await scratchDatabases(), '', 'no scratch database is left');
  assert.deepEqual(await left(), [], 'no mariadb client, ssh master or gpg-agent is left');
  assert.ok(await lockIsFree(host.cacheDir), 'the lock is released');
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), live, 'the live database was not touched');
});

test('SIGINT in the middle of the download of a restore: nothing left, the live database untouched, exit 130', async () => {
  const live = await mariadb.fingerprint(MYSQL_DATABASE);
  const restore = host.start(['restore', 'mysql', '--yes']);
  await waitFor('the download', async () => running(`duplicity .*restore.*${host.restoreDir}`));
  await sleep(300);
  restore.kill('SIGINT');
  const result = await restore;

  assert.equal(result.exitCode, 130, result.all);
  assert.deepEqual(await left(), [], 'no duplicity, rsync, ssh master or gpg-agent of the backup user is left');
  assert.ok(await lockIsFree(host.cacheDir), 'the lock is released');
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), live, 'the live database was not touched');
});
