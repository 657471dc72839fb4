// The backup pipeline against real MariaDB, InfluxDB, sshd and duplicity: what lands on the target
// is read back with plain duplicity and compared with the live data.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { type AgentHost, INFLUX_DATABASE, MYSQL_DATABASE, makeAgentHost, summaryOf, today } from './harness/agent.js';
import { restoreWithDuplicity, targetChains } from './harness/duplicity.js';
import { type InfluxDb, changeInflux, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { fingerprintOfInfluxBackup, fingerprintOfSqlDump, readStagedManifest } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { asBackupUser } from './harness/temp-dir.js';

let mariadb: MariaDb;
let influx: InfluxDb;
let target: SshTarget;
let host: AgentHost;

before(async () => {
  [mariadb, influx, target] = await Promise.all([startMariaDb(), startInfluxDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 3000);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 3000);
  host = await makeAgentHost({ mariadb, influx, target });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), influx?.stop(), target?.stop(), host?.remove()]);
});

let fullUploadedBytes = 0;

test('the first run uploads a full backup of each source, and plain duplicity restores exactly the data', async () => {
  const result = await host.run(['run']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], 'full');
  assert.equal(summaryOf(result, 'influxdb')['kind'], 'full');
  fullUploadedBytes = Number(summaryOf(result, 'mysql')['bytesUploaded']);

  assert.deepEqual((await targetChains(host, target, 'mysql')).chains, [['full']]);
  assert.deepEqual((await targetChains(host, target, 'influxdb')).chains, [['full']]);

  const mysqlDir = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, mysqlDir, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
  const manifest = await readStagedManifest(mysqlDir);
  assert.deepEqual(
    manifest.files.map((file) => file.name),
    ['agama.sql'],
  );

  const influxDir = await restoreWithDuplicity(host, target, 'influxdb');
  assert.equal(
    await fingerprintOfInfluxBackup(influx, influxDir, INFLUX_DATABASE),
    await influx.fingerprint(INFLUX_DATABASE),
  );
});

test('unchanged data gives a byte-identical dump', async () => {
  const before = await readStagedManifest(join(host.stagingDir, 'mysql'));
  const result = await host.run(['run', '--source', 'mysql']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const after = await readStagedManifest(join(host.stagingDir, 'mysql'));
  assert.equal(after.files[0]?.sha256, before.files[0]?.sha256);
});

test('a run after a data change is incremental, small, and restores the changed data', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 1);
  await changeInflux(influx, INFLUX_DATABASE);
  const result = await host.run(['run']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], 'incremental');
  assert.equal(summaryOf(result, 'influxdb')['kind'], 'incremental');
  const incrementalBytes = Number(summaryOf(result, 'mysql')['bytesUploaded']);
  assert.ok(
    incrementalBytes > 0 && incrementalBytes < fullUploadedBytes / 2,
    `incremental ${incrementalBytes} B vs full ${fullUploadedBytes} B`,
  );

  assert.deepEqual((await targetChains(host, target, 'mysql')).chains, [['full', 'inc', 'inc']]);
  const mysqlDir = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, mysqlDir, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
  const influxDir = await restoreWithDuplicity(host, target, 'influxdb');
  assert.equal(
    await fingerprintOfInfluxBackup(influx, influxDir, INFLUX_DATABASE),
    await influx.fingerprint(INFLUX_DATABASE),
  );
});

test('--dry-run prints the decision and every command, and changes nothing', async () => {
  const before = await target.listFiles('mysql');
  const staged = await readStagedManifest(join(host.stagingDir, 'mysql'));
  await changeData(mariadb, MYSQL_DATABASE, 2);
  const result = await host.run(['run', '--dry-run']);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(
    result.stdout,
    /^mysql: incremental backup \(the newest full backup is from .* and today is not full_day/m,
  );
  assert.match(
    result.stdout,
    /mariadb-dump --defaults-file=\S+ --single-transaction .* agama > \S+\/\.mysql\.new\/agama\.sql/,
  );
  assert.match(result.stdout, /duplicity incremental .* rsync:\/\/root@127\.0\.0\.1:\d+\/\/\S+\/mysql$/m);
  assert.match(result.stdout, /^influxdb: incremental backup/m);
  assert.match(result.stdout, /influxd backup -portable -database telegraf -host 127\.0\.0\.1:\d+ /);
  assert.deepEqual(await target.listFiles('mysql'), before);
  assert.deepEqual(await readStagedManifest(join(host.stagingDir, 'mysql')), staged);
});

test('list shows every restore point with its kind and size', async () => {
  const result = await host.run(['list', 'mysql']);
  assert.equal(result.exitCode, 0, result.stderr);
  const rows = result.stdout.split('\n').filter((line) => /^\s+\d{4}-\d{2}-\d{2} /.test(line));
  assert.deepEqual(
    rows.map((row) => row.trim().split(/\s+/)[2]),
    ['full', 'incremental', 'incremental'],
  );
  for (const row of rows) assert.match(row, /\d+(\.\d)? (B|KiB|MiB)$/);
});

test('full_day forces a full backup', async () => {
  await host.writeConfig({ agent: { full_day: today() } });
  const result = await host.run(['run', '--source', 'mysql']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], 'full');
  assert.ok(result.logs.some((log) => log.msg === `full backup: today is full_day (${today()})`));
  await host.writeConfig();
});

test('a full older than max_full_age forces a full backup', async () => {
  await host.writeConfig({ agent: { max_full_age: '1s' } });
  await sleep(1100);
  const result = await host.run(['run', '--source', 'mysql']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], 'full');
  assert.ok(result.logs.some((log) => /more than max_full_age/.test(log.msg)));
  await host.writeConfig();
});

test('retention keeps exactly keep_full chains after a full', async () => {
  await host.writeConfig({ agent: { keep_full: '2' } });
  const result = await host.run(['run', '--source', 'mysql', '--full']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const chains = (await targetChains(host, target, 'mysql')).chains;
  assert.deepEqual(chains, [['full'], ['full']]);
  await host.writeConfig();
});

test('a full run executes exactly the commands its dry run printed, retention included, in order', async () => {
  await changeData(mariadb, MYSQL_DATABASE, 3);
  await host.writeConfig({ agent: { keep_full: '2' } });
  const dry = await host.run(['run', '--full', '--dry-run', '--json']);
  assert.equal(dry.exitCode, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { sources: { source: string; steps: { argv: string[] }[] }[] };
  const planned = plan.sources.flatMap((source) => source.steps.map((step) => step.argv));
  // mysql has two chains and keep_full = 2: a dump, the full upload, the removal of the oldest chain, the cleanup.
  const mysqlSteps = plan.sources.find((source) => source.source === 'mysql')?.steps ?? [];
  assert.deepEqual(
    mysqlSteps.map((step) => (step.argv[0] === 'duplicity' ? `duplicity ${step.argv[1]}` : step.argv[0])),
    ['mariadb-dump', 'duplicity full', 'duplicity remove-all-but-n-full', 'duplicity cleanup'],
  );

  const real = await host.run(['run', '--full'], { BACKUP_AGENT_LOG_LEVEL: 'debug' });
  assert.equal(real.exitCode, 0, real.stdout + real.stderr);
  const executed = real.logs
    .filter((log) => typeof log.msg === 'string' && log.msg.startsWith('starting ') && Array.isArray(log['argv']))
    .map((log) => log['argv'] as string[]);
  // The run also reads (listings of the target, versions); every planned command is among what it
  // ran, argument for argument, and the steps of each source ran in the planned order.
  for (const source of plan.sources) {
    const ran = source.steps.map((step) =>
      executed.findIndex((argv) => JSON.stringify(argv) === JSON.stringify(step.argv)),
    );
    assert.ok(
      ran.every((index) => index >= 0),
      `${source.source}: planned but not run:\n${source.steps
        .filter((_, i) => ran[i] === -1)
        .map((step) => step.argv.join(' '))
        .join('\n')}\nran:\n${executed.map((argv) => argv.join(' ')).join('\n')}`,
    );
    assert.deepEqual(
      ran,
      [...ran].sort((a, b) => a - b),
      `${source.source} ran its steps out of order`,
    );
  }
  // The run reads each source's chain from one listing of the target before the upload, one after
  // it (which also checks the new full before retention) and, when retention removed chains, one
  // that proves them gone; it never starts duplicity for that.
  for (const source of plan.sources) {
    const removes = source.steps.some((step) => step.argv.includes('remove-all-but-n-full'));
    const listings = executed.filter(
      (argv) =>
        argv[0] === 'rsync' && argv.includes('--list-only') && (argv.at(-1) ?? '').endsWith(`/${source.source}/`),
    );
    assert.equal(
      listings.length,
      removes ? 3 : 2,
      `${source.source}: listings of the target:\n${listings.map((argv) => argv.join(' ')).join('\n')}`,
    );
  }
  // And nothing that writes (a dump, an upload, a removal) ran without being planned; neither did
  // any other duplicity call (collection-status included).
  const writes = executed.filter(
    (argv) =>
      /^(mariadb-dump|mysqldump|influxd|pg_dump)$|^duplicity$/.test(argv[0] ?? '') &&
      !['--version', 'version'].includes(argv[1] ?? '') &&
      !argv.includes('--no-data'),
  );
  for (const argv of writes)
    assert.ok(
      planned.some((step) => JSON.stringify(step) === JSON.stringify(argv)),
      `ran without being planned: ${argv.join(' ')}`,
    );
  await host.writeConfig();
});

test('an emptied target gets a full backup on a day that is not full_day', async () => {
  await rm(join(target.targetDir, 'mysql'), { recursive: true, force: true });
  const result = await host.run(['run', '--source', 'mysql', '--incremental']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], 'full');
  assert.ok(result.logs.some((log) => /--incremental was asked for, but the target has no backup chain/.test(log.msg)));
  assert.deepEqual((await targetChains(host, target, 'mysql')).chains, [['full']]);
  const mysqlDir = await restoreWithDuplicity(host, target, 'mysql');
  assert.equal(
    await fingerprintOfSqlDump(mariadb, mysqlDir, MYSQL_DATABASE),
    await mariadb.fingerprint(MYSQL_DATABASE),
  );
});

test('check passes on a working host', async () => {
  const result = await host.run(['check']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /^\[ ok \] target mysql: rsync:\/\/.* is reachable and writable/m);
  assert.match(result.stdout, /^check passed/m);
});

test("check, list and status answer while a run's duplicity holds the source's cache lock", async () => {
  // duplicity locks <cache>/<name>/lockfile with fcntl (python's fasteners) for as long as it runs;
  // a second duplicity on the same cache fails with "Another duplicity instance is already running".
  const lockFile = join(host.cacheDir, 'mysql', 'lockfile');
  const holder = execa(
    'setpriv',
    await asBackupUser([
      '/usr/bin/python3',
      '-c',
      'import fcntl, sys, time\nf = open(sys.argv[1], "a")\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("locked", flush=True)\ntime.sleep(120)',
      lockFile,
    ]),
    { reject: false },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.once('data', () => resolve());
      void holder.then((result) => reject(new Error(`the lock holder ended: ${result.stderr}`)));
    });
    const check = await host.run(['check']);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /^\[ ok \] target mysql: rsync:\/\/.* is reachable and writable; [1-9]\d* chain\(s\)/m);
    const list = await host.run(['list', 'mysql']);
    assert.equal(list.exitCode, 0, list.stdout + list.stderr);
    assert.match(list.stdout, /full/);
    const status = await host.run(['status', '--remote', '--json']);
    assert.doesNotMatch(status.stdout, /Another duplicity|lockfile|"target":\{"error"/, status.stdout);
    assert.match(status.stdout, /"target":\{"/, status.stdout);
  } finally {
    holder.kill('SIGKILL');
    await holder;
  }
});
