// `backup-agent restore` against real MariaDB, InfluxDB, sshd and duplicity: data destroyed after a
// backup comes back with the same fingerprint, an older point gives the older data, and every
// refusal leaves the live database as it was.
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import {
  AGENT,
  type AgentHost,
  INFLUX_DATABASE,
  MYSQL_DATABASE,
  PASSPHRASE,
  makeAgentHost,
  summaryOf,
} from './harness/agent.js';
import { type InfluxDb, changeInflux, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let influx: InfluxDb;
let target: SshTarget;
let host: AgentHost;
/** Fingerprints after the first (full) and the second (incremental) backup. */
const mysqlAt: string[] = [];
const influxAt: string[] = [];
let firstBackupTime = '';

before(async () => {
  [mariadb, influx, target] = await Promise.all([startMariaDb(), startInfluxDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 2000);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 2000);
  host = await makeAgentHost({ mariadb, influx, target });

  const first = await host.run(['run']);
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
  mysqlAt.push(await mariadb.fingerprint(MYSQL_DATABASE));
  influxAt.push(await influx.fingerprint(INFLUX_DATABASE));
  firstBackupTime = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  // duplicity names sets by the second: the next set must be in a later one.
  await new Promise((resolve) => setTimeout(resolve, 1500));

  await changeData(mariadb, MYSQL_DATABASE, 7);
  await changeInflux(influx, INFLUX_DATABASE);
  const second = await host.run(['run']);
  assert.equal(second.exitCode, 0, second.stdout + second.stderr);
  assert.equal(summaryOf(second, 'mysql')['kind'], 'incremental');
  mysqlAt.push(await mariadb.fingerprint(MYSQL_DATABASE));
  influxAt.push(await influx.fingerprint(INFLUX_DATABASE));
  assert.notEqual(mysqlAt[0], mysqlAt[1], 'the change must show in the fingerprint');
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), influx?.stop(), target?.stop(), host?.remove()]);
});

test('restore mysql brings back the latest backup after the data was damaged, and its safety dump undoes it', async () => {
  await mariadb.sql(`DELETE FROM customers WHERE id % 3 = 0`, MYSQL_DATABASE);
  await mariadb.sql(`CREATE TABLE scratch_after_backup (id INT PRIMARY KEY)`, MYSQL_DATABASE);
  const damaged = await mariadb.fingerprint(MYSQL_DATABASE);

  const result = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), mysqlAt[1]);
  assert.match(result.stdout, /^Restored mysql from the backup of \d{4}-\d{2}-\d{2}T/m);
  assert.match(result.stdout, /^\s+customers\s+\d+ rows$/m);

  const safety = /previous state saved in (\S+\.sql)/.exec(result.stdout)?.[1];
  assert.ok(safety, result.stdout);
  await mariadb.sql(`DROP DATABASE ${MYSQL_DATABASE}`);
  await mariadb.sql(`CREATE DATABASE ${MYSQL_DATABASE}`);
  await mariadb.importFile(MYSQL_DATABASE, safety);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), damaged, 'the safety dump holds the pre-restore state');

  const again = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(again.exitCode, 0, again.stdout + again.stderr);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), mysqlAt[1]);
});

test('--time restores the older point, and --into leaves the live database untouched', async () => {
  const result = await host.run([
    'restore',
    'mysql',
    '--yes',
    '--time',
    firstBackupTime,
    '--database',
    MYSQL_DATABASE,
    '--into',
    'agama_old',
  ]);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(await mariadb.fingerprint('agama_old'), mysqlAt[0]);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), mysqlAt[1]);

  const again = await host.run(['restore', 'mysql', '--yes', '--database', MYSQL_DATABASE, '--into', 'agama_old']);
  assert.equal(again.exitCode, 2, again.stderr);
  assert.match(again.stderr, /database agama_old already exists/);
  await mariadb.sql('DROP DATABASE agama_old');
});

test('restore influxdb brings back a dropped database, also on a host where no run or check made the scratch directory', async () => {
  // A rebuilt host (backup_restore.md 7a) restores before its first run: agent.cache_dir/tmp, duplicity's --tempdir, is not there yet.
  await rm(join(host.cacheDir, 'tmp'), { recursive: true, force: true });
  await influx.dropDatabase(INFLUX_DATABASE);
  const left = await influx.query('SHOW DATABASES');
  assert.ok(!JSON.stringify(left).includes(`"${INFLUX_DATABASE}"`), JSON.stringify(left));
  const result = await host.run(['restore', 'influxdb', '--yes']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(await influx.fingerprint(INFLUX_DATABASE), influxAt[1]);
  assert.match(result.stdout, /^\s+\S+\s+\d+ points$/m);

  // Restoring over a live database goes through its safety backup, not influxd's "already exists".
  const over = await host.run(['restore', 'influxdb', '--yes', '--time', firstBackupTime]);
  assert.equal(over.exitCode, 0, over.stdout + over.stderr);
  assert.equal(await influx.fingerprint(INFLUX_DATABASE), influxAt[0]);
  assert.match(over.stdout, /previous state saved in \S+influxdb-telegraf-/);
});

test('without --yes and without a terminal the restore refuses and touches nothing', async () => {
  const before = await mariadb.fingerprint(MYSQL_DATABASE);
  const result = await host.run(['restore', 'mysql']);
  assert.equal(result.exitCode, 2, result.stderr);
  assert.match(result.stderr, /refusing to restore without confirmation.*--yes/s);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), before);
});

test('anyone but root gets exit 77 and is told to use sudo', async () => {
  const result = await execa(
    'setpriv',
    [
      '--reuid=34',
      '--regid=34',
      '--init-groups',
      '--',
      process.execPath,
      AGENT,
      '--config',
      host.configFile,
      'restore',
      'mysql',
      '--yes',
    ],
    { reject: false, stdin: 'ignore' },
  );
  assert.equal(result.exitCode, 77, result.stderr);
  assert.match(result.stderr, /must run as root.*sudo backup-agent restore mysql/s);
});

test('a time before the first backup, a wrong passphrase and a damaged volume fail with exit 1 and change nothing', async () => {
  const before = await mariadb.fingerprint(MYSQL_DATABASE);

  const tooEarly = await host.run(['restore', 'mysql', '--yes', '--time', '2001-01-01']);
  assert.equal(tooEarly.exitCode, 1, tooEarly.stderr);
  assert.match(tooEarly.stderr, /no backup at or before 2001-01-01.*the oldest is from/);

  await writeFile(host.passphraseFile, 'not the passphrase\n');
  try {
    const wrong = await host.run(['restore', 'mysql', '--yes']);
    assert.equal(wrong.exitCode, 1, wrong.stderr);
    assert.match(wrong.stderr, /wrong passphrase/);
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /not the passphrase/);
  } finally {
    await writeFile(host.passphraseFile, `${PASSPHRASE}\n`);
  }

  const volumeDir = join(target.targetDir, 'mysql');
  const volume = (await readdir(volumeDir)).find((name) => /duplicity-full\..*\.vol1\.difftar\.gpg$/.test(name));
  assert.ok(volume, 'a full volume on the target');
  const path = join(volumeDir, volume);
  const original = await readFile(path);
  const damaged = Buffer.from(original);
  const middle = Math.floor(damaged.length / 2);
  damaged[middle] = (damaged[middle] ?? 0) ^ 0xff;
  await writeFile(path, damaged);
  try {
    const corrupt = await host.run(['restore', 'mysql', '--yes']);
    assert.equal(corrupt.exitCode, 1, corrupt.stderr);
    assert.match(corrupt.stderr, /download of the backup of .* failed/);
  } finally {
    await writeFile(path, original);
  }

  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), before);
});

test('--dry-run shows every step and command; --download-only then --from-dir restores the fetched copy', async () => {
  const before = await mariadb.fingerprint(MYSQL_DATABASE);
  const dry = await host.run(['restore', 'mysql', '--dry-run']);
  assert.equal(dry.exitCode, 0, dry.stderr);
  assert.match(dry.stdout, /download as the backup user: duplicity restore --time \S+ /);
  assert.match(dry.stdout, /mariadb-dump .*agama > \S+\/safety\/agama-TIMESTAMP\.sql/);
  assert.match(dry.stdout, /mariadb .*--database agama < \S+\/mysql\/agama\.sql/);
  assert.doesNotMatch(dry.stdout, new RegExp(PASSPHRASE));
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), before);

  const fetched = await host.run(['restore', 'mysql', '--download-only']);
  assert.equal(fetched.exitCode, 0, fetched.stderr);
  const dir = join(host.restoreDir, 'mysql');
  assert.match(fetched.stdout, new RegExp(`--from-dir ${dir}`));
  const manifest = JSON.parse(await readFile(join(dir, 'MANIFEST.json'), 'utf8')) as { source: string };
  assert.equal(manifest.source, 'mysql');

  await mariadb.sql(`DELETE FROM customers`, MYSQL_DATABASE);
  const restored = await host.run(['restore', 'mysql', '--yes', '--from-dir', dir]);
  assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), before);
});

test('verify proves the latest backups as the backup user, and with --import as root, leaving nothing behind', async () => {
  const drill = await host.run(['verify']);
  assert.equal(drill.exitCode, 0, drill.stdout + drill.stderr);
  assert.match(drill.stdout, /^\[ ok \] mysql, backup of \S+ \(\d+(\.\d)? \w+ old\).*drill took/m);
  assert.match(drill.stdout, /agama\.sql complete \(mysqldump trailer present\)/);
  assert.match(drill.stdout, /^\[ ok \] influxdb, .*\n.*\n\s+portable backups of telegraf complete/m);

  const deep = await host.run(['verify', '--import']);
  assert.equal(deep.exitCode, 0, deep.stdout + deep.stderr);
  assert.match(deep.stdout, /agama imports into a scratch database: 2 table\(s\), \d+ row\(s\)/);
  assert.match(deep.stdout, /telegraf restores into a scratch database: \d+ measurement\(s\), \d+ point\(s\)/);
  assert.equal(await mariadb.sql(`SHOW DATABASES LIKE '%verify%'`), '');
  assert.doesNotMatch(JSON.stringify(await influx.query('SHOW DATABASES')), /verify/);
  assert.deepEqual(
    (await readdir(host.restoreDir)).filter((name) => name.startsWith('verify-')),
    [],
  );
});

test('verify fails with exit 1 when the backup on the target is damaged', async () => {
  const volumeDir = join(target.targetDir, 'influxdb');
  const manifests = (await readdir(volumeDir)).filter((name) => name.endsWith('.manifest.gpg'));
  const saved = new Map<string, Buffer>();
  for (const name of (await readdir(volumeDir)).filter((file) => file.includes('.vol'))) {
    saved.set(name, await readFile(join(volumeDir, name)));
    await writeFile(join(volumeDir, name), 'not a volume');
  }
  try {
    assert.ok(manifests.length > 0);
    const drill = await host.run(['verify', 'influxdb']);
    assert.equal(drill.exitCode, 1, drill.stdout + drill.stderr);
    assert.match(drill.stdout, /^\[FAIL\] influxdb/m);
  } finally {
    for (const [name, content] of saved) await writeFile(join(volumeDir, name), content);
  }
});
