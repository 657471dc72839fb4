// Executes backup_restore.md: every block marked `<!-- runbook:NAME -->` runs in bash exactly as
// written, with the settings block's variables taken from this test's environment, against real
// servers. A runbook command that stops working fails here, for the agent path and the manual one.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { AGENT, type AgentHost, INFLUX_DATABASE, MYSQL_DATABASE, PG_DATABASE, makeAgentHost } from './harness/agent.js';
import { type InfluxDb, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type Postgres, startPostgres } from './harness/postgres.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { declaredVariables, runbookBlocks, usedVariables } from './harness/runbook-blocks.js';
import { makeTempDir, removeDir } from './harness/temp-dir.js';

let mariadb: MariaDb;
let influx: InfluxDb;
let pg: Postgres;
let target: SshTarget;
let host: AgentHost;
let bin: string;
let blocks: Map<string, string>;
let mysqlBackedUp = '';
let influxBackedUp = '';
let pgBackedUp = '';

function settings(): Record<string, string> {
  return {
    BACKUP_AGENT_CONFIG: host.configFile,
    TARGET_URL: target.url,
    SSH_KEY: target.clientKey,
    KNOWN_HOSTS: target.knownHosts,
    PASSPHRASE_FILE: host.passphraseFile,
    GNUPG_HOME: host.gnupgHome,
    MYSQL_DB: MYSQL_DATABASE,
    INFLUX_DB: INFLUX_DATABASE,
    INFLUX_RPC: influx.rpcAddress,
    INFLUX_HTTP: influx.httpUrl,
    // The test server's socket; on a Debian host root's plain `mariadb` finds the default one.
    MYSQL: `mariadb --defaults-file=${host.adminCnf}`,
    MYSQLDUMP: `mariadb-dump --defaults-file=${host.adminCnf}`,
    PG_DB: PG_DATABASE,
    // The test server's socket dir and port; on a Debian host the clients' defaults find the cluster.
    PSQL: `runuser -u postgres -- psql --host=${pg.socketDir} --port=${pg.port}`,
    PG_DUMP: `runuser -u postgres -- pg_dump --host=${pg.socketDir} --port=${pg.port}`,
    PG_RESTORE: `runuser -u postgres -- pg_restore --host=${pg.socketDir} --port=${pg.port}`,
  };
}

/** Runs the named blocks in one bash, as root would paste them, with the settings in the environment. */
async function runBlocks(...names: string[]): Promise<{ exitCode: number; output: string }> {
  return runScript(names.map(block).join('\n'));
}

function block(name: string): string {
  const found = blocks.get(name);
  assert.ok(found !== undefined, `backup_restore.md has no block marked runbook:${name}`);
  return found;
}

async function runScript(script: string): Promise<{ exitCode: number; output: string }> {
  const result = await execa('bash', ['-euo', 'pipefail', '-c', script], {
    env: { ...settings(), PATH: `${bin}:${process.env['PATH'] ?? ''}` },
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: 600_000,
  });
  return { exitCode: result.exitCode ?? -1, output: result.all };
}

before(async () => {
  blocks = await runbookBlocks();
  [mariadb, influx, pg, target] = await Promise.all([
    startMariaDb(),
    startInfluxDb(),
    startPostgres(),
    startSshTarget(),
  ]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 1500);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 1500);
  await pg.seed(PG_DATABASE, 1500);
  host = await makeAgentHost({ mariadb, influx, postgres: pg, target });
  // `backup-agent` on PATH, as the package installs it.
  bin = await makeTempDir('runbook-bin');
  await symlink(AGENT, join(bin, 'backup-agent'));

  const backup = await host.run(['run']);
  assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
  mysqlBackedUp = await mariadb.fingerprint(MYSQL_DATABASE);
  influxBackedUp = await influx.fingerprint(INFLUX_DATABASE);
  pgBackedUp = await pg.fingerprint(PG_DATABASE);
});

after(async () => {
  await Promise.allSettled([
    mariadb?.stop(),
    influx?.stop(),
    pg?.stop(),
    target?.stop(),
    host?.remove(),
    removeDir(bin),
  ]);
});

test('the settings block names exactly the variables the runbook commands use', () => {
  assert.deepEqual(declaredVariables(blocks.get('settings') ?? '').sort(), Object.keys(settings()).sort());
  // fleet-*: section 7a, run on the Ansible controller by test/e2e/fleet.test.ts with its own settings.
  const used = new Set(
    [...blocks.entries()]
      .filter(([name]) => name !== 'settings' && !name.startsWith('fleet-'))
      .flatMap(([, block]) => usedVariables(block)),
  );
  for (const name of used) {
    if (['PASSPHRASE', 'GNUPGHOME', 'WORK', 'SAFE', 'STOPPED'].includes(name ?? '')) continue;
    assert.ok(name !== undefined && name in settings(), `runbook uses $${name}, which the settings block does not set`);
  }
});

test('agent path: list, restore mysql and influxdb, point-in-time and the checks work as written', async () => {
  const list = await runBlocks('list');
  assert.equal(list.exitCode, 0, list.output);
  assert.match(list.output, /full/);

  await mariadb.sql('DELETE FROM orders', MYSQL_DATABASE);
  const mysql = await runBlocks('agent-mysql');
  assert.equal(mysql.exitCode, 0, mysql.output);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), mysqlBackedUp);

  await influx.dropDatabase(INFLUX_DATABASE);
  const influxRestore = await runBlocks('agent-influxdb');
  assert.equal(influxRestore.exitCode, 0, influxRestore.output);
  assert.equal(await influx.fingerprint(INFLUX_DATABASE), influxBackedUp);

  const pit = await runBlocks('point-in-time');
  assert.equal(pit.exitCode, 0, pit.output);
  assert.equal(await mariadb.fingerprint(`${MYSQL_DATABASE}_pit`), mysqlBackedUp);
  await mariadb.sql(`DROP DATABASE ${MYSQL_DATABASE}_pit`);

  const check = await runBlocks('check');
  assert.equal(check.exitCode, 0, check.output);
  assert.match(check.output, /customers/);
  assert.match(check.output, /"name":"measurements"/);
});

test('manual fallback: plain duplicity, sha256sum, mariadb and influxd restore the same data', async () => {
  await mariadb.sql('DELETE FROM customers WHERE id % 2 = 0', MYSQL_DATABASE);
  const mysql = await runBlocks('manual-download-mysql', 'manual-restore-mysql', 'manual-cleanup');
  assert.equal(mysql.exitCode, 0, mysql.output);
  assert.match(mysql.output, /agama\.sql: OK/);
  assert.match(mysql.output, /-- Dump completed/);
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), mysqlBackedUp);

  await influx.dropDatabase(INFLUX_DATABASE);
  const influxRestore = await runBlocks('manual-download-influxdb', 'manual-restore-influxdb', 'manual-cleanup');
  assert.equal(influxRestore.exitCode, 0, influxRestore.output);
  assert.match(influxRestore.output, /\.manifest: OK/);
  assert.equal(await influx.fingerprint(INFLUX_DATABASE), influxBackedUp);
});

/** The owner of a database and whether the role the seed granted to can read a table: what globals.sql and --create bring back. */
async function ownerAndGrant(database: string): Promise<string> {
  const owner = await pg.sql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${database}'`);
  const grant = await pg.sql("SELECT has_table_privilege('app_reader', 'public.orders', 'SELECT')", database);
  return `${owner} ${grant}`;
}

test('agent path, PostgreSQL: restore, point-in-time into a new database and the checks work as written', async () => {
  await pg.sql('DELETE FROM orders WHERE id % 2 = 0', PG_DATABASE);
  const restore = await runBlocks('agent-postgresql');
  assert.equal(restore.exitCode, 0, restore.output);
  assert.equal(await pg.fingerprint(PG_DATABASE), pgBackedUp);
  assert.match(restore.output, /pg_restore --host=127\.0\.0\.1 .*--username=backup_agent_restore/);
  assert.match(restore.output, /^\s+public\.orders\s+1500 rows$/m);
  assert.match(restore.output, /^\s+undo: runuser -u postgres -- dropdb /m);
  assert.equal(await ownerAndGrant(PG_DATABASE), 'app t');

  const pit = await runBlocks('point-in-time-postgresql');
  assert.equal(pit.exitCode, 0, pit.output);
  assert.equal(await pg.fingerprint(`${PG_DATABASE}_pit`), pgBackedUp);
  assert.equal(await pg.fingerprint(PG_DATABASE), pgBackedUp);
  await pg.sql(`DROP DATABASE ${PG_DATABASE}_pit`);

  const check = await runBlocks('check-postgresql');
  assert.equal(check.exitCode, 0, check.output);
  assert.match(check.output, /^ public\s+\| customers\s+\|\s+1500$/m);
  assert.match(check.output, /^ public\s+\| orders\s+\|\s+1500$/m);
  assert.match(check.output, new RegExp(`^ ${PG_DATABASE}\\s+\\| app\\s+\\|`, 'm'));
});

test('manual fallback, PostgreSQL: on a server that lost the database and its roles, duplicity, sha256sum, globals.sql and pg_restore bring back the same data', async () => {
  await pg.sql(`DROP DATABASE ${PG_DATABASE} WITH (FORCE)`);
  await pg.sql('DROP ROLE app_reader; DROP ROLE app;');
  const lost = await runBlocks(
    'manual-download-postgresql',
    'manual-check-globals-postgresql',
    'manual-load-globals-postgresql',
    'manual-restore-postgresql',
    'manual-cleanup',
  );
  assert.equal(lost.exitCode, 0, lost.output);
  assert.match(lost.output, new RegExp(`${PG_DATABASE}\\.dump: OK`));
  assert.match(lost.output, /globals\.sql: OK/);
  assert.match(lost.output, new RegExp(`^;\\s+dbname: ${PG_DATABASE}$`, 'm'));
  // What the review line shows: the one superuser, and the backup role's membership.
  assert.match(lost.output, /^\d+:ALTER ROLE postgres WITH SUPERUSER /m);
  assert.match(lost.output, /^\d+:GRANT pg_read_all_data TO backup /m);
  assert.equal(await pg.fingerprint(PG_DATABASE), pgBackedUp);
  assert.equal(await ownerAndGrant(PG_DATABASE), 'app t', 'the roles and the owner came back');

  // Over a live, damaged database: the safety copy is taken first, then the backup replaces it.
  await pg.sql('DELETE FROM customers WHERE id > 1000 AND id NOT IN (SELECT customer_id FROM orders)', PG_DATABASE);
  await pg.sql('DROP TABLE orders', PG_DATABASE);
  const damaged = await runBlocks('manual-download-postgresql', 'manual-restore-postgresql', 'manual-cleanup');
  assert.equal(damaged.exitCode, 0, damaged.output);
  assert.equal(await pg.fingerprint(PG_DATABASE), pgBackedUp);
  assert.equal(await ownerAndGrant(PG_DATABASE), 'app t');
});

test("the runbook's globals.sql check refuses a file cut short, a psql command or a statement it does not expect", async () => {
  const dir = await makeTempDir('runbook-globals');
  try {
    await mkdir(join(dir, 'postgresql'));
    // What pg_dumpall writes for this server, with its \\restrict guard and its trailer.
    const dumped = await execa('runuser', [
      '-u',
      'postgres',
      '--',
      'pg_dumpall',
      `--host=${pg.socketDir}`,
      `--port=${pg.port}`,
      '--globals-only',
    ]);
    const globals = `${dumped.stdout}\n`;
    const trailer = '\n--\n-- PostgreSQL database cluster dump complete\n--\n\n';
    assert.ok(globals.endsWith(trailer), 'pg_dumpall ends with its trailer');
    const body = globals.slice(0, -trailer.length);
    const marker = join(dir, 'ran');
    const cases: [string, string][] = [
      ['genuine', globals],
      ['cut short', body],
      ['a shell command', `${body}\n\\! touch ${marker}\n${trailer}`],
      ['a shell command after a statement', `${body}\nCREATE ROLE x; \\! touch ${marker}\n${trailer}`],
      ['two statements on a line', `${body}\nCREATE ROLE x; COPY (SELECT 1) TO PROGRAM 'touch ${marker}';\n${trailer}`],
      ['another kind of statement', `${body}\nSELECT pg_read_file('/etc/shadow');\n${trailer}`],
    ];
    for (const [name, text] of cases) {
      await writeFile(join(dir, 'postgresql', 'globals.sql'), text);
      const checked = await runScript(`SAFE=${dir}\n${block('manual-check-globals-postgresql')}`);
      if (name === 'genuine') assert.equal(checked.exitCode, 0, `${name}: ${checked.output}`);
      else assert.notEqual(checked.exitCode, 0, `${name} passed the check:\n${checked.output}`);
    }
  } finally {
    await removeDir(dir);
  }
});
