// Faults that used to hold a run for minutes or forever: a stalled upload, a dump waiting on a
// table lock, and refusals no retry can fix (a changed host key, a refused key, a read-only
// target). Each must end with a clear error naming the cause, nothing lost, no process left, and
// the next run healing by itself.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  type AgentHost,
  type AgentResult,
  MYSQL_DATABASE,
  makeAgentHost,
  parseLogs,
  summaryOf,
} from './harness/agent.js';
import { restoreWithDuplicity } from './harness/duplicity.js';
import { leftoverProcesses, lockIsFree } from './harness/leftovers.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { fingerprintOfSqlDump } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { chownToBackup } from './harness/temp-dir.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;

const UPLOAD_DEADLINE_S = 15;
const DUMP_DEADLINE_S = 8;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget({ stallable: true })]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 300);
  host = await makeAgentHost({ mariadb, target });
  await host.writeConfig({
    // 1 TiB/s: the upload's deadline is the floor alone, whatever the dump's size.
    deadlines: { upload: `${UPLOAD_DEADLINE_S}s`, upload_rate: '1T', dump: `${DUMP_DEADLINE_S}s` },
  });
  const first = await host.run(['run']);
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
});

async function timedRun(): Promise<AgentResult & { seconds: number }> {
  const started = Date.now();
  const result = await host.run(['run']);
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

function mysqlError(result: AgentResult): string {
  return String(summaryOf(result, 'mysql')['error']);
}

async function assertNothingLeft(): Promise<void> {
  assert.deepEqual(await leftoverProcesses(host.dir), [], 'no child of the run is left');
  assert.ok(await lockIsFree(host.cacheDir), 'the run lock is free');
}

async function assertRestoresCurrentData(): Promise<void> {
  const restored = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, restored, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
}

test('a stalled upload ends at its deadline naming the step, and the next run completes it', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 1);
  await target.stallUploads(true);
  let stalled: AgentResult & { seconds: number };
  try {
    stalled = await timedRun();
  } finally {
    await target.stallUploads(false);
  }
  assert.equal(stalled.exitCode, 1, stalled.stdout + stalled.stderr);
  assert.match(mysqlError(stalled), new RegExp(`timed out after ${UPLOAD_DEADLINE_S}s in mysql upload`));
  assert.match(mysqlError(stalled), /raise deadlines\.upload/);
  // The deadline, the 10 s grace of the kill, and the dump and chain read before the upload.
  assert.ok(stalled.seconds < UPLOAD_DEADLINE_S + 30, `the stalled run took ${stalled.seconds} s`);
  await assertNothingLeft();

  const next = await timedRun();
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  await assertRestoresCurrentData();
});

test('the target vanishing mid-upload ends the run in bounded time, and the next run completes it', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 4);
  await target.stallUploads(true);
  const agent = host.start(['run']);
  try {
    await waitFor('an upload in flight', async () => (await target.stalledUploads()) > 0, 60_000);
  } finally {
    await target.stallUploads(false);
  }
  // sshd stopped and its sessions killed, as in a crash of the backup server: every new
  // connection is refused.
  await target.vanish();
  const gone = Date.now();
  const vanished = await agent;
  const seconds = (Date.now() - gone) / 1000;
  assert.equal(vanished.exitCode, 1, vanished.all);
  const summary = parseLogs(String(vanished.stdout)).find((log) => log['summary'] === true);
  assert.match(String(summary?.['error']), /the target is unreachable|timed out after 15s in mysql upload/);
  // At the latest the upload's deadline, counted from before the target went, and the kill's grace.
  assert.ok(seconds < UPLOAD_DEADLINE_S + 15, `the run went on for ${seconds} s after the target vanished`);
  await assertNothingLeft();

  await target.comeBack();
  const next = await timedRun();
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  await assertRestoresCurrentData();
});

test('a target that does not answer when the run starts is tried again, and the run succeeds', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 5);
  // As sshd's MaxStartups drops a fleet's connections, or a backup server that restarts.
  await target.vanish();
  const agent = host.start(['run']);
  try {
    // The dump takes a second; the chain read is refused then, and tried again 5 to 10 s later.
    await sleep(3_000);
  } finally {
    await target.comeBack();
  }
  const result = await agent;
  assert.equal(result.exitCode, 0, result.all);
  const logs = parseLogs(String(result.stdout));
  assert.ok(
    logs.some((log) => /the target is unreachable.*; reading the chain again in \d+s/.test(log.msg)),
    'the refusal is logged with the pause',
  );
  await assertNothingLeft();
  await assertRestoresCurrentData();
});

test('a dump waiting on a table lock ends at deadlines.dump and keeps the last good dump', async () => {
  const staged = join(host.stagingDir, 'mysql', `${MYSQL_DATABASE}.sql`);
  const previous = await readFile(staged);
  await changeData(mariadb, MYSQL_DATABASE, 2);
  // Another session holds a write lock, as a long ALTER TABLE or LOCK TABLES would.
  const holder = mariadb.sql('LOCK TABLES customers WRITE; SELECT SLEEP(60)', MYSQL_DATABASE).catch(() => '');
  await waitFor('the lock to be held', async () => (await lockHolders()).length > 0);
  try {
    const locked = await timedRun();
    assert.equal(locked.exitCode, 1, locked.stdout + locked.stderr);
    assert.match(
      mysqlError(locked),
      new RegExp(`timed out after ${DUMP_DEADLINE_S}.0s in mysql dump of ${MYSQL_DATABASE}`),
    );
    assert.ok(locked.seconds < DUMP_DEADLINE_S + 30, `the locked run took ${locked.seconds} s`);
    assert.deepEqual(await readFile(staged), previous, 'the last good dump is byte for byte what it was');
    await assertNothingLeft();
    // The killed client's session does not wait on in the server for lock_wait_timeout (a day).
    await waitFor('the dump session to leave the server', async () => (await waitingOnLock()) === 0);
  } finally {
    for (const id of await lockHolders()) await mariadb.sql(`KILL ${id}`).catch(() => '');
    await holder;
  }

  const next = await timedRun();
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  await assertRestoresCurrentData();
});

test('a changed host key fails at once with the fix, and is never retried', async () => {
  const pinned = await readFile(target.knownHosts, 'utf8');
  const other = join(host.dir, 'other-host-key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const [type, key] = (await readFile(`${other}.pub`, 'utf8')).split(' ');
  await writeFile(target.knownHosts, `[127.0.0.1]:${target.port} ${type} ${key}\n`);
  try {
    const refused = await timedRun();
    assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
    assert.match(mysqlError(refused), /host key has changed/);
    assert.match(mysqlError(refused), /replace its line in target\.known_hosts/);
    assert.ok(refused.seconds < 15, `a permanent refusal took ${refused.seconds} s`);
    assert.doesNotMatch(refused.stdout, /Attempt 2|Attempt of .* Nr\. 2/, 'duplicity did not try again');
    await assertNothingLeft();
  } finally {
    await writeFile(target.knownHosts, pinned);
  }
  const next = await timedRun();
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
});

test('a key the target refuses fails at once naming authorized_keys', async () => {
  const stranger = join(host.dir, 'stranger_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
  await chownToBackup(stranger);
  await host.writeConfig({
    deadlines: { upload: `${UPLOAD_DEADLINE_S}s`, upload_rate: '1T', dump: `${DUMP_DEADLINE_S}s` },
    target: { ssh_key: stranger },
  });
  try {
    const refused = await timedRun();
    assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
    assert.match(mysqlError(refused), /the target refused the ssh key/);
    assert.match(mysqlError(refused), /authorized_keys/);
    assert.ok(refused.seconds < 15, `a refused key took ${refused.seconds} s`);
    await assertNothingLeft();
  } finally {
    await host.writeConfig({
      deadlines: { upload: `${UPLOAD_DEADLINE_S}s`, upload_rate: '1T', dump: `${DUMP_DEADLINE_S}s` },
    });
  }
});

test('a target directory that cannot be written fails the upload at once', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 3);
  const dir = join(target.targetDir, 'mysql');
  // The test target runs as root, which no file mode stops: a read-only bind mount does.
  await execa('mount', ['--bind', dir, dir]);
  try {
    await execa('mount', ['-o', 'remount,ro,bind', dir]);
    const refused = await timedRun();
    assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
    assert.match(mysqlError(refused), /the target directory is not writable/);
    assert.ok(refused.seconds < 20, `a read-only target took ${refused.seconds} s`);
    await assertNothingLeft();
  } finally {
    await execa('umount', [dir]);
  }
  const next = await timedRun();
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  await assertRestoresCurrentData();
});

async function lockHolders(): Promise<string[]> {
  const ids = await mariadb.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(60)%'");
  return ids.split('\n').filter((id) => id !== '');
}

async function waitingOnLock(): Promise<number> {
  return Number(
    await mariadb.sql(
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'bk' AND STATE LIKE 'Waiting for table%lock'",
    ),
  );
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
