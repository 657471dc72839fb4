// PostgreSQL through the real CLI, against a real PostgreSQL 15, sshd and duplicity: `check`, the
// backup as the backup user (full, then a small incremental), what plain duplicity gets back from
// the target, root's `restore` (safety copy and its undo, --into), `verify --import`, `status` and
// `list`. What is compared is the data itself: a fingerprint over every table's rows.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { SESSION_ROLE } from '../src/sources/postgresql/session-role.js';
import { type AgentHost, PG_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { restoreWithDuplicity, targetChains } from './harness/duplicity.js';
import { type Postgres, startPostgres } from './harness/postgres.js';
import { readStagedManifest } from './harness/restore-check.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

const ROWS = 20_000;

let pg: Postgres;
let target: SshTarget;
let host: AgentHost;
let fullUploadedBytes = 0;
/** The live database's fingerprint when the newest backup was taken. */
let atBackup = '';
/** Rows of both tables in the newest backup. */
let rowsAtBackup = 0;
let scratchCounter = 0;

before(async () => {
  [pg, target] = await Promise.all([startPostgres(), startSshTarget()]);
  await pg.seed(PG_DATABASE, ROWS);
  host = await makeAgentHost({ postgres: pg, target });
});

after(async () => {
  await Promise.allSettled([pg?.stop(), target?.stop(), host?.remove()]);
});

/**
 * Loads an archive plain duplicity restored into a new database with pg_restore as the superuser
 * (the test made the archive, so it trusts it) and returns that database's fingerprint.
 */
async function fingerprintOfArchive(file: string): Promise<string> {
  const scratch = `${PG_DATABASE}_check_${++scratchCounter}`;
  await pg.sql(`CREATE DATABASE ${scratch}`);
  try {
    await execa(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        'pg_restore',
        `--host=${pg.socketDir}`,
        `--port=${pg.port}`,
        '--exit-on-error',
        '--single-transaction',
        `--dbname=${scratch}`,
      ],
      { inputFile: file },
    );
    return await pg.fingerprint(scratch);
  } finally {
    await pg.sql(`DROP DATABASE ${scratch} WITH (FORCE)`);
  }
}

async function rowsIn(database: string): Promise<number> {
  return Number(await pg.sql('SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders)', database));
}

/** Nothing a restore or a scratch import made for itself is left: no work or scratch database, no login role. */
async function assertNoLeftovers(): Promise<void> {
  assert.deepEqual(
    (await pg.databases()).filter((name) => name !== PG_DATABASE && !/^(postgres|template[01])$/.test(name)),
    [],
    'no database but the live one is left',
  );
  assert.ok(!(await pg.roles()).includes(SESSION_ROLE), `the restore's login role ${SESSION_ROLE} was dropped`);
}

test('check passes and proves the backup role can read every table', async () => {
  const result = await host.run(['check']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.match(
    result.stdout,
    new RegExp(
      `^\\[ ok \\] postgresql access: PostgreSQL answers at .* role backup can read and lock every table of ${PG_DATABASE}$`,
      'm',
    ),
  );
  assert.match(result.stdout, /^\[ ok \] target postgresql: rsync:\/\/.* is reachable and writable/m);
  assert.match(result.stdout, /^check passed/m);
});

test('the first run uploads a full backup, and plain duplicity restores an archive that holds exactly the live data', async () => {
  const result = await host.run(['run', '--source', 'postgresql']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const summary = summaryOf(result, 'postgresql');
  assert.equal(summary['kind'], 'full');
  assert.equal(summary['result'], 'ok');
  fullUploadedBytes = Number(summary['bytesUploaded']);
  assert.ok(fullUploadedBytes > 0);
  atBackup = await pg.fingerprint(PG_DATABASE);

  assert.deepEqual((await targetChains(host, target, 'postgresql')).chains, [['full']]);
  const dir = await restoreWithDuplicity(host, target, 'postgresql');
  const manifest = await readStagedManifest(dir);
  assert.deepEqual(manifest.files.map((file) => file.name).sort(), ['globals.sql', `${PG_DATABASE}.dump`]);
  assert.equal(await fingerprintOfArchive(join(dir, `${PG_DATABASE}.dump`)), atBackup);
});

test('after 1 % of the rows changed the next run is an incremental far smaller than the full, and it restores the changed data', async () => {
  await pg.change(PG_DATABASE, 0.01);
  const changed = await pg.fingerprint(PG_DATABASE);
  assert.notEqual(changed, atBackup, 'the change shows in the fingerprint');
  const result = await host.run(['run', '--source', 'postgresql']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const summary = summaryOf(result, 'postgresql');
  assert.equal(summary['kind'], 'incremental');
  const incrementalBytes = Number(summary['bytesUploaded']);
  console.log(`full uploaded ${fullUploadedBytes} B, incremental after a 1 % change ${incrementalBytes} B`);
  // The archive is uncompressed, so only the blocks around the changed rows travel: 15 % of the
  // full here (1 % of rows, spread evenly over both tables, each breaking a block); a quarter is the bound.
  assert.ok(
    incrementalBytes > 0 && incrementalBytes < fullUploadedBytes / 4,
    `incremental ${incrementalBytes} B vs full ${fullUploadedBytes} B`,
  );
  atBackup = changed;
  rowsAtBackup = await rowsIn(PG_DATABASE);

  assert.deepEqual((await targetChains(host, target, 'postgresql')).chains, [['full', 'inc']]);
  const dir = await restoreWithDuplicity(host, target, 'postgresql');
  assert.equal(await fingerprintOfArchive(join(dir, `${PG_DATABASE}.dump`)), atBackup);
});

test('--dry-run shows the decision and the pg_dump command lines, and uploads nothing', async () => {
  const before = await target.listFiles('postgresql');
  const result = await host.run(['run', '--dry-run']);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(
    result.stdout,
    /^postgresql: incremental backup \(the newest full backup is from .* and today is not full_day/m,
  );
  const at = `--host=${pg.socketDir} --port=${pg.port} --username=backup --no-password`;
  assert.ok(
    result.stdout.includes(
      `pg_dump ${at} --format=custom --compress=0 --create --dbname=${PG_DATABASE} > ${host.stagingDir}/.postgresql.new/${PG_DATABASE}.dump`,
    ),
    result.stdout,
  );
  assert.ok(
    result.stdout.includes(`pg_dumpall ${at} --globals-only > ${host.stagingDir}/.postgresql.new/globals.sql`),
    result.stdout,
  );
  assert.match(result.stdout, /duplicity incremental .* rsync:\/\/root@127\.0\.0\.1:\d+\/\/\S+\/postgresql$/m);
  assert.deepEqual(await target.listFiles('postgresql'), before);
});

test('restore brings back the backup after rows were deleted and a table dropped, and its printed undo puts the damage back', async () => {
  await pg.sql('DROP TABLE orders; DELETE FROM customers WHERE id % 3 = 0;', PG_DATABASE);
  const damaged = await pg.fingerprint(PG_DATABASE);
  assert.notEqual(damaged, atBackup);

  const result = await host.run(['restore', 'postgresql', '--yes']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(await pg.fingerprint(PG_DATABASE), atBackup, 'the data is the backup');
  assert.match(result.stdout, /^Restored postgresql from the backup of \d{4}-\d{2}-\d{2}T/m);
  const customers = Number(await pg.sql('SELECT count(*) FROM customers', PG_DATABASE));
  const orders = Number(await pg.sql('SELECT count(*) FROM orders', PG_DATABASE));
  assert.match(result.stdout, new RegExp(`^\\s+public\\.customers\\s+${customers} rows$`, 'm'));
  assert.match(result.stdout, new RegExp(`^\\s+public\\.orders\\s+${orders} rows$`, 'm'));
  assert.equal(
    await pg.sql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${PG_DATABASE}'`),
    'app',
    'the database keeps its owner',
  );
  await assertNoLeftovers();

  const safety = /^\s+previous state saved in (\S+\.dump)$/m.exec(result.stdout)?.[1];
  assert.ok(safety, result.stdout);
  assert.ok(safety.startsWith(join(host.restoreDir, 'safety', `postgresql-${PG_DATABASE}-`)), safety);
  const undo = /^\s+undo: (.+)$/m.exec(result.stdout)?.[1];
  assert.ok(undo, result.stdout);
  assert.ok(undo.includes(safety), undo);
  // As root would paste it into a shell.
  const undone = await execa('bash', ['-euo', 'pipefail', '-c', undo], { reject: false, stdin: 'ignore', all: true });
  assert.equal(undone.exitCode, 0, undone.all);
  assert.equal(await pg.fingerprint(PG_DATABASE), damaged, 'the undo puts back the state before the restore');

  const again = await host.run(['restore', 'postgresql', '--yes']);
  assert.equal(again.exitCode, 0, again.stdout + again.stderr);
  assert.equal(await pg.fingerprint(PG_DATABASE), atBackup);
  await assertNoLeftovers();
});

test('restore --database --into creates the new database from the backup and leaves the original untouched', async () => {
  await pg.change(PG_DATABASE, 0.05);
  const live = await pg.fingerprint(PG_DATABASE);
  assert.notEqual(live, atBackup);
  const copy = `${PG_DATABASE}_restored`;

  const result = await host.run(['restore', 'postgresql', '--database', PG_DATABASE, '--into', copy, '--yes']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(await pg.fingerprint(copy), atBackup, 'the new database holds the backup');
  assert.equal(await pg.fingerprint(PG_DATABASE), live, 'the original is untouched');
  assert.match(result.stdout, new RegExp(`^${PG_DATABASE} → ${copy}:$`, 'm'));
  assert.match(result.stdout, /\(no earlier database to save\)/);
  assert.equal(
    await pg.sql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${copy}'`),
    'app',
    'the new database belongs to the owner the archive names',
  );
  assert.equal(
    await pg.sql("SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'", copy),
    'app',
    'and so do its tables',
  );

  const twice = await host.run(['restore', 'postgresql', '--database', PG_DATABASE, '--into', copy, '--yes']);
  assert.equal(twice.exitCode, 2, twice.stdout + twice.stderr);
  assert.match(twice.stderr, new RegExp(`database ${copy} already exists; --into needs a new name`));
  assert.equal(await pg.fingerprint(copy), atBackup);
  assert.equal(await pg.fingerprint(PG_DATABASE), live);

  await pg.sql(`DROP DATABASE ${copy}`);
  await assertNoLeftovers();
});

test('verify --import as root loads the newest backup into a scratch database and leaves no database or role behind', async () => {
  const before = await pg.databases();
  const result = await host.run(['verify', '--import']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /^\[ ok \] postgresql, backup of \S+ /m);
  assert.match(
    result.stdout,
    new RegExp(`${PG_DATABASE}\\.dump complete \\(pg_restore read every archive to its end\\), globals\\.sql complete`),
  );
  assert.match(
    result.stdout,
    new RegExp(`${PG_DATABASE} imports into a scratch database: 2 table\\(s\\), ${rowsAtBackup} row\\(s\\)`),
  );
  assert.deepEqual(await pg.databases(), before);
  await assertNoLeftovers();
  assert.deepEqual(
    (await readdir(host.restoreDir)).filter((name) => name.startsWith('verify-')),
    [],
  );
});

test('status lists postgresql with its last run, and list shows its restore points', async () => {
  const status = await host.run(['status']);
  assert.equal(status.exitCode, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /^postgresql: OK$/m);
  assert.match(status.stdout, /^\s+last run\s+.* incremental OK, .* uploaded/m);
  assert.match(status.stdout, /^\s+newest full\s+.*chain of 2 set\(s\)/m);

  const list = await host.run(['list', 'postgresql']);
  assert.equal(list.exitCode, 0, list.stderr);
  assert.match(list.stdout, /^postgresql: rsync:\/\/\S+\/postgresql$/m);
  const rows = list.stdout.split('\n').filter((line) => /^\s+\d{4}-\d{2}-\d{2} /.test(line));
  assert.deepEqual(
    rows.map((row) => row.trim().split(/\s+/)[2]),
    ['full', 'incremental'],
  );
  for (const row of rows) assert.match(row, /\d+(\.\d)? (B|KiB|MiB)$/);
});
