// The PostgreSQL engine against a real PostgreSQL 15: the dump runs as the backup user (in a child
// process of uid 34, as the agent does after dropping root), restore and scratch import run as
// root with the clients as `postgres`. What is asserted is what an operator checks: the archive
// proves complete, the data comes back, a forged archive runs nothing on the server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { pino } from 'pino';
import { BackupFailedError, UsageError } from '../src/errors.js';
import type { EngineTools } from '../src/sources/engine.js';
import { proveArchive } from '../src/sources/postgresql/archive.js';
import { postgresqlEngine } from '../src/sources/postgresql/engine.js';
import type { PostgresqlSection } from '../src/sources/postgresql/keys.js';
import { SESSION_ROLE } from '../src/sources/postgresql/session-role.js';
import { CommandRunner } from '../src/system/run-command.js';
import { type Postgres, startPostgres } from './harness/postgres.js';
import { backupUser, chownToBackup, makeTempDir, removeDir } from './harness/temp-dir.js';

const ROOT = new URL('..', import.meta.url).pathname;
const DEADLINE = { ms: 600_000, step: 'postgresql dump' };
const PASSWORD = `pw-${randomBytes(9).toString('hex')}`;

let pg: Postgres;
let work: string;

interface ChildResult {
  readonly error?: { readonly message: string; readonly hint?: string };
  readonly result?: string;
  readonly logs: readonly Record<string, unknown>[];
}

function section(overrides: Partial<PostgresqlSection> = {}): PostgresqlSection {
  return {
    enabled: true,
    databases: ['shop'],
    host: pg.socketDir,
    port: pg.port,
    user: '',
    passfile: '',
    admin_user: 'postgres',
    ...overrides,
  };
}

/** The engine's backup side in a node process of the backup user, as the agent runs it. */
async function asBackup(
  op: 'dump' | 'preflight' | 'verifyAccess',
  config: PostgresqlSection,
  dir: string,
): Promise<ChildResult> {
  const script = `
    const { postgresqlEngine } = await import(${JSON.stringify(join(ROOT, 'src/sources/postgresql/engine.ts'))});
    const { CommandRunner } = await import(${JSON.stringify(join(ROOT, 'src/system/run-command.ts'))});
    const { runDump } = await import(${JSON.stringify(join(ROOT, 'src/sources/dump.ts'))});
    const { pino } = await import('pino');
    const logs = [];
    const logger = pino({ level: 'debug' }, { write: (line) => logs.push(JSON.parse(line)) });
    const runner = new CommandRunner(logger, new AbortController().signal);
    const request = JSON.parse(process.env.PG_TEST_REQUEST);
    const source = await postgresqlEngine.source(request.config);
    const out = { logs };
    try {
      if (request.op === 'dump')
        await runDump(runner, source, await source.dumpSteps(runner, request.dir), request.dir, request.deadline);
      else if (request.op === 'preflight') await source.preflight(runner);
      else out.result = await source.verifyAccess(runner, request.dir);
    } catch (error) {
      out.error = { message: error.message, hint: error.hint };
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const { uid, gid } = await backupUser();
  const child = await execa(
    'setpriv',
    [
      `--reuid=${uid}`,
      `--regid=${gid}`,
      '--init-groups',
      '--',
      process.execPath,
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ],
    {
      cwd: ROOT,
      env: { PG_TEST_REQUEST: JSON.stringify({ op, config, dir, deadline: DEADLINE }), HOME: '/var/backups' },
      extendEnv: false,
      reject: false,
    },
  );
  assert.equal(child.exitCode, 0, child.stderr);
  return JSON.parse(child.stdout) as ChildResult;
}

async function stagingDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { mode: 0o700 });
  await chownToBackup(dir);
  return dir;
}

async function dumpAsBackup(name: string, config = section()): Promise<string> {
  const dir = await stagingDir(name);
  const outcome = await asBackup('dump', config, dir);
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  const warnings = outcome.logs.filter((line) => line['level'] === 40).map((line) => String(line['msg']));
  assert.deepEqual(warnings, [], 'the documented grant covers everything');
  return dir;
}

function tools(): EngineTools {
  const logger = pino({ level: 'silent' });
  return {
    runner: new CommandRunner(logger, new AbortController().signal),
    cleanup: new CommandRunner(logger, new AbortController().signal),
    logger,
    deadline: (step) => ({ ms: 600_000, step }),
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Nothing a restore made for itself is left: no work or scratch database, no login role. */
async function assertNoLeftovers(): Promise<void> {
  assert.deepEqual(
    (await pg.databases()).filter((name) => name.startsWith('restoring_') || name.includes('scratch')),
    [],
  );
  assert.ok(!(await pg.roles()).includes(SESSION_ROLE), 'the restore login role was dropped');
}

/** What a hostile backup user can do to a downloaded archive: replace SQL in its table of contents, length kept. */
async function forge(source: string, target: string, payload: string): Promise<void> {
  const bytes = await readFile(source);
  const start = bytes.indexOf("COMMENT ON TABLE public.customers IS '");
  assert.ok(start > 0, 'the archive carries the comment to overwrite');
  const end = bytes.indexOf("';\n", start) + 3;
  const length = end - start;
  assert.ok(payload.length + 2 <= length, `payload fits in ${length} bytes`);
  const replacement = Buffer.from(`${payload}--${'-'.repeat(length - payload.length - 3)}\n`);
  assert.equal(replacement.length, length);
  await writeFile(target, Buffer.concat([bytes.subarray(0, start), replacement, bytes.subarray(end)]));
}

before(async () => {
  pg = await startPostgres();
  work = await makeTempDir('pg-engine');
  await pg.createBackupRole();
  await pg.seed('shop', 2000);
  await pg.seed('crm', 300);
});

after(async () => {
  await Promise.allSettled([pg?.stop(), removeDir(work)]);
});

test('backup as the backup user over the socket dumps every database, proves it complete, and unchanged data gives (nearly) the same bytes', async () => {
  const config = section({ databases: ['shop', 'crm'] });
  const check = await asBackup('verifyAccess', config, work);
  assert.equal(check.error, undefined, JSON.stringify(check.error));
  assert.match(check.result ?? '', /role backup can read and lock every table of shop, crm/);

  const first = await dumpAsBackup('first', config);
  const firstDumps = ['shop.dump', 'crm.dump'].map((name) => join(first, name));
  for (const file of [...firstDumps, join(first, 'globals.sql')]) assert.ok(await exists(file), file);
  assert.match(await readFile(join(first, 'globals.sql'), 'utf8'), /CREATE ROLE app;/);
  assert.match(
    await postgresqlEngine.proveDumps(first, ['shop', 'crm'], tools()),
    /shop\.dump, crm\.dump complete .*globals\.sql complete/,
  );

  await new Promise((resolve) => setTimeout(resolve, 1100));
  const second = await dumpAsBackup('second', config);
  const differing = await execa('cmp', ['-l', firstDumps[0] ?? '', join(second, 'shop.dump')], { reject: false });
  const offsets = differing.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Number(line.trim().split(/\s+/)[0]) - 1);
  // The only difference is the creation time in the header (7 ints of 5 bytes after byte 16).
  assert.ok(offsets.length > 0 && offsets.length <= 14, `${offsets.length} bytes differ`);
  assert.ok(
    offsets.every((offset) => offset >= 16 && offset < 51),
    `differing bytes at ${offsets.join(', ')}`,
  );
  console.log(
    `unchanged data, two dumps of shop.dump: ${offsets.length} byte(s) differ, all in the header's timestamp`,
  );
});

test('a passfile others can read is refused; with mode 0600 a password login over 127.0.0.1 dumps, and the password is in no argv', async () => {
  await pg.sql(`CREATE ROLE bkpw LOGIN PASSWORD '${PASSWORD}'; GRANT pg_read_all_data TO bkpw;`);
  const etc = await stagingDir('etc');
  const passfile = join(etc, 'pgpass');
  await writeFile(passfile, `127.0.0.1:${pg.port}:*:bkpw:${PASSWORD}\n`);
  const { uid, gid } = await backupUser();
  await chown(passfile, uid, gid);
  await chmod(passfile, 0o640);
  const config = section({ host: '127.0.0.1', user: 'bkpw', passfile });

  const refused = await asBackup('preflight', config, etc);
  assert.ok(refused.error, 'refused');
  assert.match(
    refused.error.message,
    new RegExp(`passfile ${passfile} is readable or writable by group or others \\(mode 0640\\)`),
  );
  assert.equal(refused.error.hint, `run chmod 600 ${passfile}`);

  await chmod(passfile, 0o600);
  const dir = await stagingDir('password');
  const outcome = await asBackup('dump', config, dir);
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  const argvs = outcome.logs
    .filter((line) => Array.isArray(line['argv']))
    .map((line) => (line['argv'] as string[]).join(' '));
  assert.ok(argvs.some((argv) => argv.startsWith('pg_dump --host=127.0.0.1') && argv.includes('--username=bkpw')));
  assert.ok(
    argvs.filter((argv) => argv.includes('--host=')).every((argv) => argv.includes('--no-password')),
    'no client that logs in may prompt',
  );
  assert.ok(!JSON.stringify(outcome.logs).includes(PASSWORD), 'the password is in no log line');
  await postgresqlEngine.proveDumps(dir, ['shop'], tools());
});

test('an archive cut short fails the completeness proof the dump and proveDumps use', async () => {
  const dir = await dumpAsBackup('whole');
  const cutDir = await makeTempDir('pg-cut');
  try {
    const whole = await readFile(join(dir, 'shop.dump'));
    for (const keep of [whole.length - 1, Math.floor(whole.length / 2)]) {
      await writeFile(join(cutDir, 'shop.dump'), whole.subarray(0, keep));
      await assert.rejects(
        proveArchive(tools().runner, join(cutDir, 'shop.dump'), 'shop', DEADLINE, undefined, 'stopped early'),
        (error: unknown) => error instanceof BackupFailedError && /is cut short or damaged/.test(error.message),
      );
      await assert.rejects(
        postgresqlEngine.proveDumps(cutDir, ['shop'], tools()),
        /shop\.dump is cut short or damaged: its data does not read to the end: .*end of file/,
      );
      await removeDir(join(cutDir, 'shop.dump'));
    }
  } finally {
    await removeDir(cutDir);
  }
});

test('restore brings back the dumped data with its owner, keeps a safety copy whose undo works, and --into leaves the original alone', async (t) => {
  const atDump = await pg.fingerprint('shop');
  const dir = await dumpAsBackup('restore');
  await pg.change('shop', 0.05);
  const changed = await pg.fingerprint('shop');
  assert.notEqual(changed, atDump);
  const safetyDir = await makeTempDir('pg-safety');
  t.after(() => removeDir(safetyDir));
  const restorer = await postgresqlEngine.restorer(section(), tools());
  const request = { database: 'shop', dir, safetyDir, stamp: '20260101T000000Z', showProgress: false };

  assert.ok(
    restorer
      .plannedCommands(request)
      .some((line) => line.includes('pg_restore') && line.includes(`--username=${SESSION_ROLE}`)),
  );
  const restored = await restorer.restore(request);
  assert.equal(await pg.fingerprint('shop'), atDump, 'the data is what the dump held');
  assert.deepEqual(restored.contents, [
    { name: 'public.customers', count: 2000, unit: 'rows' },
    { name: 'public.orders', count: 2000, unit: 'rows' },
  ]);
  assert.equal(await pg.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'"), 'app');
  assert.equal(await pg.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'", 'shop'), 'app');
  assert.equal(await pg.sql("SELECT has_table_privilege('app_reader', 'public.orders', 'SELECT')", 'shop'), 't');
  assert.equal(restored.safetyCopy, join(safetyDir, 'postgresql-shop-20260101T000000Z.dump'));
  assert.ok((await stat(restored.safetyCopy)).size > 0);
  await assertNoLeftovers();

  assert.ok(restored.undo);
  await execa('sh', ['-c', restored.undo]);
  assert.equal(await pg.fingerprint('shop'), changed, 'the undo puts back the state before the restore');
  assert.equal(await pg.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'"), 'app');

  const copy = await restorer.restore({ ...request, into: 'shop_copy' });
  assert.equal(copy.safetyCopy, null);
  assert.equal(await pg.fingerprint('shop_copy'), atDump);
  assert.equal(await pg.fingerprint('shop'), changed, 'the original is untouched');

  await assert.rejects(
    restorer.restore({ ...request, into: 'crm' }),
    (error: unknown) =>
      error instanceof UsageError && /crm already exists; --into needs a new name/.test(error.message),
  );
  assert.equal(await pg.fingerprint('shop'), changed);
  await assertNoLeftovers();
});

test('a forged archive that tries to run a program or write a file runs nothing, and the live database stays as it was', async () => {
  const dir = await dumpAsBackup('hostile');
  const live = await pg.fingerprint('shop');
  const forged = await makeTempDir('pg-forged');
  const safetyDir = await makeTempDir('pg-safety');
  const restorer = await postgresqlEngine.restorer(section(), tools());
  const marker = join(tmpdir(), `pg-hostile-${randomBytes(6).toString('hex')}`);
  const payloads = [
    `RESET ROLE; COPY (SELECT 1) TO PROGRAM 'touch ${marker}';`,
    `SET ROLE postgres; COPY (SELECT 1) TO '${marker}';`,
    `SELECT lo_export(lo_from_bytea(0, 'x'), '${marker}');`,
  ];
  try {
    for (const payload of payloads) {
      await forge(join(dir, 'shop.dump'), join(forged, 'shop.dump'), payload);
      // The forged archive is well-formed: it passes the completeness proof, only the server can refuse it.
      await postgresqlEngine.proveDumps(forged, ['shop'], tools());
      await assert.rejects(
        restorer.restore({ database: 'shop', dir: forged, safetyDir, stamp: '20260101T000001Z', showProgress: false }),
        (error: unknown) =>
          error instanceof BackupFailedError &&
          /permission denied|must be superuser|privileges of the pg_/.test(error.message) &&
          /state now: database shop untouched/.test(error.hint ?? ''),
      );
      assert.equal(await exists(marker), false, `no file from: ${payload}`);
      assert.equal(await pg.fingerprint('shop'), live, 'the live database is untouched');
      await assertNoLeftovers();
      await removeDir(join(forged, 'shop.dump'));
    }
  } finally {
    await Promise.all([removeDir(forged), removeDir(safetyDir), removeDir(marker)]);
  }
});

test('a scratch import proves the archive loads and leaves no scratch database behind, also when it fails', async () => {
  const dir = await dumpAsBackup('scratch');
  const restorer = await postgresqlEngine.restorer(section(), tools());
  const rows = Number(await pg.sql('SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders)', 'shop'));
  assert.equal(
    await restorer.importScratch('shop', dir, 'shop_scratch_1'),
    `shop imports into a scratch database: 2 table(s), ${rows} row(s)`,
  );
  await assertNoLeftovers();

  const forged = await makeTempDir('pg-forged');
  try {
    await forge(join(dir, 'shop.dump'), join(forged, 'shop.dump'), 'SELECT 1/0;');
    await assert.rejects(restorer.importScratch('shop', forged, 'shop_scratch_2'), /division by zero/);
    await assertNoLeftovers();
  } finally {
    await removeDir(forged);
  }
});

test('an unchanged database costs duplicity one block, and 1 % of rows changed costs far less than a full (figures printed)', async () => {
  await pg.seed('big', 20000);
  const config = section({ databases: ['big'] });
  const before = await dumpAsBackup('big-before', config);
  const same = await dumpAsBackup('big-same', config);
  await pg.change('big', 0.01);
  const after = await dumpAsBackup('big-after', config);
  // The delta duplicity itself would upload: its librsync, with the block size it picks for the file.
  const delta = async (from: string, to: string): Promise<number> => {
    const result = await execa('/usr/bin/python3', [
      '-c',
      [
        'import sys',
        'from duplicity import diffdir, librsync',
        'from os.path import getsize',
        'sig = librsync.SigFile(open(sys.argv[1], "rb"), diffdir.get_block_size(getsize(sys.argv[1]))).read()',
        'print(len(librsync.DeltaFile(sig, open(sys.argv[2], "rb")).read()))',
      ].join('\n'),
      from,
      to,
    ]);
    return Number(result.stdout.trim());
  };
  const size = (await stat(join(before, 'big.dump'))).size;
  const unchanged = await delta(join(before, 'big.dump'), join(same, 'big.dump'));
  const changed = await delta(join(before, 'big.dump'), join(after, 'big.dump'));
  const cmp = await execa('cmp', ['-l', join(before, 'big.dump'), join(after, 'big.dump')], { reject: false });
  const differing = cmp.stdout.split('\n').filter((line) => /^\s*\d+/.test(line)).length;
  console.log(
    `big.dump: ${size} bytes; librsync delta unchanged ${unchanged} bytes, after 1 % of rows changed ${changed} bytes (${((100 * changed) / size).toFixed(1)} %); cmp -l: ${differing} differing byte positions`,
  );
  assert.ok(unchanged < 4096, 'an unchanged database costs about one block');
  // Updates spread evenly over the table: each breaks a block, and PostgreSQL moves an updated row
  // to another page, so it also shows up elsewhere in the COPY stream.
  assert.ok(changed < size / 2, 'a 1 % change is far from a new full');
});
