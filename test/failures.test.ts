// Failures a sysadmin meets at 3 a.m.: each one must name its cause, exit non-zero, leave the last
// good dump in place, upload nothing broken, and not stop the other source.
import assert from 'node:assert/strict';
import { appendFile, chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import {
  AGENT,
  type AgentHost,
  INFLUX_DATABASE,
  MYSQL_DATABASE,
  MYSQL_PASSWORD,
  makeAgentHost,
  summaryOf,
} from './harness/agent.js';
import { type InfluxDb, changeInflux, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { type MariaDb, REDUCED_GRANT, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { freePort } from './harness/ports.js';
import { readStagedManifest } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let influx: InfluxDb;
let target: SshTarget;
let host: AgentHost;

before(async () => {
  [mariadb, influx, target] = await Promise.all([startMariaDb(), startInfluxDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 500);
  host = await makeAgentHost({ mariadb, influx, target });
  const first = await host.run(['run']);
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), influx?.stop(), target?.stop(), host?.remove()]);
});

/** Runs with a broken MySQL setup and checks everything a failed mysql source must leave behind. */
async function expectMysqlFailure(cause: RegExp): Promise<void> {
  await changeData(mariadb, MYSQL_DATABASE, Date.now() % 1000);
  await changeInflux(influx, INFLUX_DATABASE);
  const stagedBefore = await readStagedManifest(join(host.stagingDir, 'mysql'));
  const mysqlFilesBefore = await target.listFiles('mysql');
  const influxFilesBefore = await target.listFiles('influxdb');

  const result = await host.run(['run']);

  assert.equal(result.exitCode, 1, result.stdout + result.stderr);
  const mysql = summaryOf(result, 'mysql');
  assert.equal(mysql['result'], 'failed');
  assert.equal(mysql['stage'], 'dump');
  assert.match(String(mysql['error']), cause);
  assert.deepEqual(
    await readStagedManifest(join(host.stagingDir, 'mysql')),
    stagedBefore,
    'the last good dump is untouched',
  );
  assert.deepEqual(await target.listFiles('mysql'), mysqlFilesBefore, 'nothing was uploaded for mysql');
  assert.equal(summaryOf(result, 'influxdb')['result'], 'ok');
  assert.ok((await target.listFiles('influxdb')).length > influxFilesBefore.length, 'influxdb was still uploaded');
}

test('a wrong MySQL password fails only mysql and says so', async () => {
  await mariadb.writeMyCnf(host.myCnf, { user: 'bk', password: 'not-the-password', socket: true });
  try {
    await expectMysqlFailure(/wrong MySQL user or password/);
  } finally {
    await mariadb.writeMyCnf(host.myCnf, { user: 'bk', password: MYSQL_PASSWORD, socket: true });
  }
});

test('a MySQL server that is down fails only mysql and says so', async () => {
  await host.writeConfig({ mysql: { defaults_file: join(host.dir, 'etc', 'down.cnf') } });
  // A port nothing listens on: what a stopped server looks like to the client.
  await mariadb.writeMyCnf(join(host.dir, 'etc', 'down.cnf'), {
    user: 'bk',
    password: MYSQL_PASSWORD,
    host: '127.0.0.1',
    port: await freePort(),
  });
  try {
    await expectMysqlFailure(/MySQL server is not reachable/);
  } finally {
    await host.writeConfig();
  }
});

test('a missing privilege fails only mysql and names the privilege', async () => {
  await mariadb.createBackupUser('bk', MYSQL_PASSWORD, [MYSQL_DATABASE], REDUCED_GRANT);
  await mariadb.sql('CREATE VIEW big_customers AS SELECT id FROM customers WHERE balance > 100', MYSQL_DATABASE);
  try {
    await expectMysqlFailure(/big_customers.*SHOW VIEW/);
  } finally {
    await mariadb.sql('DROP VIEW big_customers', MYSQL_DATABASE);
    await mariadb.createBackupUser('bk', MYSQL_PASSWORD, [MYSQL_DATABASE]);
  }
});

test('a .my.cnf readable by others is refused with the chmod that fixes it', async () => {
  await chmod(host.myCnf, 0o644);
  try {
    await expectMysqlFailure(/readable or writable by group or others \(mode 0644\).*chmod 600/);
  } finally {
    await chmod(host.myCnf, 0o600);
  }
});

test('an unreachable target fails the upload, names the target, and keeps the new dump', async () => {
  const closedPort = await freePort();
  await host.writeConfig({ target: { url: target.url.replace(/:\d+\//, `:${closedPort}/`) } });
  try {
    await changeData(mariadb, MYSQL_DATABASE, 77);
    const result = await host.run(['run', '--source', 'mysql']);
    assert.equal(result.exitCode, 1, result.stdout + result.stderr);
    const mysql = summaryOf(result, 'mysql');
    assert.equal(mysql['stage'], 'upload');
    assert.match(
      String(mysql['error']),
      new RegExp(`rsync://root@127\\.0\\.0\\.1:${closedPort}//.*/mysql failed: the target is unreachable`),
    );
    const staged = await readFile(join(host.stagingDir, 'mysql', `${MYSQL_DATABASE}.sql`), 'utf8');
    assert.match(staged, /changed@77/, 'the new dump is kept in staging');
    // check says the same in one line, with ssh's own words (host and port) and what to look at.
    const check = await host.run(['check']);
    assert.equal(check.exitCode, 1, check.stdout + check.stderr);
    assert.match(
      check.stdout,
      new RegExp(
        `^\\[FAIL\\] target mysql: writing to rsync://root@127\\.0\\.0\\.1:${closedPort}//\\S+/mysql failed: the target is unreachable: ssh: connect to host 127\\.0\\.0\\.1 port ${closedPort}: Connection refused\n +fix: check that the host is up, its sshd listens on the port in target\\.url`,
        'm',
      ),
    );
  } finally {
    await host.writeConfig();
  }
  const next = await host.run(['run', '--source', 'mysql']);
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  assert.equal(summaryOf(next, 'mysql')['kind'], 'incremental');
});

test('an unreachable influxd fails only influxdb, quickly, and says where it looked', async () => {
  const closedPort = await freePort();
  await host.writeConfig({ influxdb: { host: `127.0.0.1:${closedPort}` } });
  try {
    const started = Date.now();
    const result = await host.run(['run']);
    assert.equal(result.exitCode, 1);
    assert.match(
      String(summaryOf(result, 'influxdb')['error']),
      new RegExp(`influxdb is not reachable at 127\\.0\\.0\\.1:${closedPort}`),
    );
    assert.equal(summaryOf(result, 'mysql')['result'], 'ok');
    assert.ok(Date.now() - started < 60_000, 'no four-minute influxd retry loop');
  } finally {
    await host.writeConfig();
  }
});

test('an invalid configuration exits 78 naming the file, section.key, value and what is allowed', async () => {
  await host.writeConfig({ agent: { full_day: 'someday', shedule: '15 23 * * *' }, target: { encryption: 'aes' } });
  try {
    const result = await host.run(['run']);
    assert.equal(result.exitCode, 78);
    assert.match(result.stderr, new RegExp(`${host.configFile.replaceAll('.', '\\.')}: 3 problems`));
    assert.match(result.stderr, /unknown key agent\.shedule \(did you mean agent\.schedule\?\)/);
    assert.match(result.stderr, /agent\.full_day = "someday": must be one of: sun, mon, tue, wed, thu, fri, sat/);
    assert.match(result.stderr, /target\.encryption = "aes": must be one of: symmetric, pubkey, none/);
  } finally {
    await host.writeConfig();
  }
});

test('a database name that mariadb-dump would read as an option exits 78 before anything runs', async () => {
  await host.writeConfig({ mysql: { databases: `${MYSQL_DATABASE} --all-databases` } });
  try {
    const result = await host.run(['check']);
    assert.equal(result.exitCode, 78, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /mysql\.databases = "agama --all-databases": database name --all-databases must not start with "-": the program it is passed to would read it as an option/,
    );
    assert.doesNotMatch(result.stdout, /\[ ok \]/, 'no check item ran');
  } finally {
    await host.writeConfig();
  }
});

test('a password in notify.smtp_url exits 78 naming the key, and the password is printed nowhere', async () => {
  const secret = 'pw-Never-Sh0wn-42';
  await appendFile(host.configFile, `\n[notify]\nsmtp_url = smtp://alerts:${secret}@127.0.0.1:25\n`);
  try {
    const result = await host.run(['check']);
    assert.equal(result.exitCode, 78, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /notify\.smtp_url \(value not shown: it can hold a password\): a password in the URL is not allowed: put the password in notify\.smtp_password_file/,
    );
    assert.ok(!`${result.stdout}${result.stderr}`.includes(secret), result.stderr);
  } finally {
    await host.writeConfig();
  }
});

test('a missing configuration file (here from BACKUP_AGENT_CONFIG) exits 78 and says how to create it', async () => {
  const missing = await execa(process.execPath, [AGENT, 'check'], {
    reject: false,
    env: { BACKUP_AGENT_CONFIG: '/nonexistent/backup-agent.ini' },
  });
  assert.equal(missing.exitCode, 78);
  assert.match(missing.stderr, /\/nonexistent\/backup-agent\.ini: cannot read the configuration/);
  assert.match(missing.stderr, /fix: create it with: backup-agent example-config > \/nonexistent\/backup-agent\.ini/);
});

test('a second run while one is going exits 75 naming the holder', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 99);
  const first = host.start(['run']);
  const lockFile = join(host.cacheDir, 'backup-agent.lock');
  for (let waited = 0; ; waited += 50) {
    // The lock file stays between runs: the first run holds it once it has written its name there.
    if (/"command":"backup-agent run"/.test(await readFile(lockFile, 'utf8').catch(() => ''))) break;
    if (waited > 30_000) throw new Error('the first run never took the lock');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const second = await host.run(['run']);
  assert.equal(second.exitCode, 75, second.stdout + second.stderr);
  const holder = /another backup-agent run holds the lock .*: pid (\d+), started .* \(backup-agent run\)/.exec(
    second.stderr,
  )?.[1];
  assert.ok(holder, second.stderr);
  // Root's `run` re-runs itself as backup: the named holder is that process, the child of the first.
  const status = await readFile(`/proc/${holder}/status`, 'utf8');
  assert.match(status, new RegExp(`^PPid:\\s+${first.pid}$`, 'm'));
  assert.match(status, /^Uid:\s+34\s/m);
  const firstResult = await first;
  assert.equal(firstResult.exitCode, 0, firstResult.all);
});

test('usage errors exit 2', async () => {
  assert.equal((await host.run(['run', '--source', 'postgres'])).exitCode, 2);
  assert.equal((await host.run(['run', '--full', '--incremental'])).exitCode, 2);
  assert.equal((await host.run(['frobnicate'])).exitCode, 2);
});
