// Self-healing against real MariaDB, sshd+rsync and duplicity 0.8: a volume deleted or cut short on
// the target, a signature file cut short in the cache, and a moved staging_dir. Each must end with
// the cause in the log, exit 0, data that restores, no process left, and a next run that is back to
// normal; each heal is kept in the state file, shown by status and mailed once.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { type AgentHost, type AgentResult, MYSQL_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { prepareDaemonFiles, notifyVia } from './harness/daemon.js';
import { restoreWithDuplicity } from './harness/duplicity.js';
import { leftoverProcesses, lockIsFree } from './harness/leftovers.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { fingerprintOfSqlDump } from './harness/restore-check.js';
import { type SmtpSink, startSmtpSink } from './harness/smtp.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { chownToBackup } from './harness/temp-dir.js';

let mariadb: MariaDb;
let target: SshTarget;
let smtp: SmtpSink;
let host: AgentHost;
let notify: Record<string, string>;
let seed = 0;

before(async () => {
  [mariadb, target, smtp] = await Promise.all([startMariaDb(), startSshTarget(), startSmtpSink()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  host = await makeAgentHost({ mariadb, target });
  const files = await prepareDaemonFiles(host, smtp);
  // notify.on = failure: a heal must be mailed anyway.
  notify = { ...notifyVia(smtp, files, 'failure'), smtp_cleartext_login: 'true' };
  await host.writeConfig({ notify });
  for (const kind of ['full', 'incremental']) {
    const result = await backup();
    assert.equal(summaryOf(result, 'mysql')['kind'], kind);
  }
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), smtp?.stop(), host?.remove()]);
});

afterEach(async () => {
  assert.deepEqual(await leftoverProcesses(host.dir), [], 'no process of the run is left');
  assert.ok(await lockIsFree(host.cacheDir), 'the lock is free');
});

/** Changes the data and runs a backup that must succeed. */
async function backup(): Promise<AgentResult> {
  await changeData(mariadb, MYSQL_DATABASE, ++seed);
  const result = await host.run(['run']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  return result;
}

function healLines(result: AgentResult): string[] {
  return result.logs.filter((log) => log['heal'] !== undefined).map((log) => log.msg);
}

async function assertNewestRestores(): Promise<void> {
  const restored = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, restored, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
    'the newest backup restores the current data',
  );
}

async function targetFile(pattern: RegExp): Promise<string> {
  const names = (await target.listFiles('mysql')).map((file) => file.name).filter((name) => pattern.test(name));
  const newest = names.sort().at(-1);
  if (newest === undefined) throw new Error(`no file matching ${pattern} on the target`);
  return join(target.targetDir, 'mysql', newest);
}

test('a deleted incremental volume: the next run is a full naming the file, and the one after is incremental', async () => {
  const volume = await targetFile(/^duplicity-inc\..*\.vol1\.difftar\.gpg$/);
  await unlink(volume);

  const healed = await backup();
  assert.equal(summaryOf(healed, 'mysql')['kind'], 'full');
  const name = volume.split('/').at(-1) ?? '';
  assert.deepEqual(healLines(healed), [
    `self-healing: the backup chain on the target is broken: ${name} is missing on the target; a new full chain starts now and the broken one stays until retention removes it`,
  ]);
  await assertNewestRestores();
  assert.equal(summaryOf(await backup(), 'mysql')['kind'], 'incremental');
});

test('a volume cut short on the target: the next run is a full naming its sizes', async () => {
  const volume = await targetFile(/^duplicity-full\..*\.vol1\.difftar\.gpg$/);
  const size = (await stat(volume)).size;
  await truncate(volume, Math.floor(size / 2));

  const healed = await backup();
  assert.equal(summaryOf(healed, 'mysql')['kind'], 'full');
  const [line] = healLines(healed);
  assert.match(
    line ?? '',
    new RegExp(
      `broken: duplicity-full\\.\\d{8}T\\d{6}Z\\.vol1\\.difftar\\.gpg is ${Math.floor(size / 2)} bytes on the target, but was ${size} bytes when uploaded`,
    ),
  );
  await assertNewestRestores();
  assert.equal(summaryOf(await backup(), 'mysql')['kind'], 'incremental');
});

test('a signature file cut short in the cache: moved aside, rebuilt, and the incremental succeeds', async () => {
  const cache = join(host.cacheDir, 'mysql');
  const signatures = (await readdir(cache)).filter((name) => /^duplicity-full-signatures\..*\.sigtar\.gz$/.test(name));
  const newest = join(cache, signatures.sort().at(-1) ?? '');
  await truncate(newest, Math.floor((await stat(newest)).size / 2));

  const healed = await backup();
  assert.equal(summaryOf(healed, 'mysql')['kind'], 'incremental');
  const [line] = healLines(healed);
  assert.match(
    line ?? '',
    /^self-healing: the duplicity cache was damaged \(duplicity-full-signatures\.\S+\.sigtar\.gz cannot be read: unexpected end of file\): it was moved aside to \S+\/mysql\.damaged-\d{8}T\d{6}Z and rebuilt from the target; trying the step again$/,
  );
  const aside = (await readdir(host.cacheDir)).filter((name) => name.startsWith('mysql.damaged-'));
  assert.equal(aside.length, 1, 'the damaged cache is kept once');
  await assertNewestRestores();
  assert.deepEqual(healLines(await backup()), [], 'the rebuilt cache is whole');
});

test('a moved staging_dir: the next run is a full naming both paths, the one after is incremental', async () => {
  const moved = join(host.dir, 'bigger-disk');
  await mkdir(moved, { mode: 0o700 });
  await chownToBackup(moved);
  await host.writeConfig({ notify, agent: { staging_dir: moved } });
  const mailsBefore = smtp.mails.length;

  const healed = await backup();
  assert.equal(summaryOf(healed, 'mysql')['kind'], 'full');
  assert.deepEqual(healLines(healed), [
    `self-healing: the last backup was made from ${join(host.stagingDir, 'mysql')}, this one is made from ${join(moved, 'mysql')} (agent.staging_dir changed); duplicity refuses an incremental from another source, so a new full chain starts now`,
  ]);
  // duplicity itself accepts the next incremental from the new place: the full needed no --allow-source-mismatch.
  const next = await backup();
  assert.equal(summaryOf(next, 'mysql')['kind'], 'incremental');
  await assertNewestRestores();

  const mail = await smtp.waitFor(/self-healing/, mailsBefore);
  assert.match(mail.subject, /mysql backup OK after self-healing \(staging path changed, new full taken\)/);
  assert.match(mail.body, /agent\.staging_dir changed/);
  assert.equal(smtp.mails.length - mailsBefore, 1, 'one mail for the heal, none for the normal run after it');
});

test('the latest heal is in the state file and in status', async () => {
  const state = JSON.parse(await readFile(host.stateFile, 'utf8')) as {
    sources: { mysql: { lastHeal: { kind: string; reason: string } | null } };
  };
  assert.equal(state.sources.mysql.lastHeal?.kind, 'staging-moved');
  const status = await host.run(['status']);
  assert.match(status.stdout, /^ {2}last heal {5}.*: the last backup was made from .* \(agent\.staging_dir changed\)/m);
});
