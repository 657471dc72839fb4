// Executes backup_restore.md: every block marked `<!-- runbook:NAME -->` runs in bash exactly as
// written, with the settings block's variables taken from this test's environment, against real
// servers. A runbook command that stops working fails here, for the agent path and the manual one.
import assert from 'node:assert/strict';
import { readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { AGENT, type AgentHost, INFLUX_DATABASE, MYSQL_DATABASE, makeAgentHost } from './harness/agent.js';
import { type InfluxDb, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { makeTempDir, removeDir } from './harness/temp-dir.js';

const RUNBOOK = new URL('../backup_restore.md', import.meta.url);

let mariadb: MariaDb;
let influx: InfluxDb;
let target: SshTarget;
let host: AgentHost;
let bin: string;
let blocks: Map<string, string>;
let mysqlBackedUp = '';
let influxBackedUp = '';

/** The fenced block right after each `<!-- runbook:NAME -->` marker. */
function runbookBlocks(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- runbook:([a-z-]+) -->\n```sh\n([\s\S]*?)\n```/g)) {
    found.set(match[1] ?? '', match[2] ?? '');
  }
  return found;
}

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
  };
}

/** Runs the named blocks in one bash, as root would paste them, with the settings in the environment. */
async function runBlocks(...names: string[]): Promise<{ exitCode: number; output: string }> {
  const script = names.map((name) => {
    const block = blocks.get(name);
    assert.ok(block !== undefined, `backup_restore.md has no block marked runbook:${name}`);
    return block;
  });
  const result = await execa('bash', ['-euo', 'pipefail', '-c', script.join('\n')], {
    env: { ...settings(), PATH: `${bin}:${process.env['PATH'] ?? ''}` },
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: 600_000,
  });
  return { exitCode: result.exitCode ?? -1, output: result.all };
}

before(async () => {
  blocks = runbookBlocks(await readFile(RUNBOOK, 'utf8'));
  [mariadb, influx, target] = await Promise.all([startMariaDb(), startInfluxDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 1500);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 1500);
  host = await makeAgentHost({ mariadb, influx, target });
  // `backup-agent` on PATH, as the package installs it.
  bin = await makeTempDir('runbook-bin');
  await symlink(AGENT, join(bin, 'backup-agent'));

  const backup = await host.run(['run']);
  assert.equal(backup.exitCode, 0, backup.stdout + backup.stderr);
  mysqlBackedUp = await mariadb.fingerprint(MYSQL_DATABASE);
  influxBackedUp = await influx.fingerprint(INFLUX_DATABASE);
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), influx?.stop(), target?.stop(), host?.remove(), removeDir(bin)]);
});

test('the settings block names exactly the variables the runbook commands use', () => {
  const declared = [...(blocks.get('settings') ?? '').matchAll(/^(?:export )?([A-Z_]+)=/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(settings()).sort());
  const used = new Set(
    [...blocks.entries()]
      .filter(([name]) => name !== 'settings')
      .flatMap(([, block]) => [...block.matchAll(/\$\{?([A-Z_]+)/g)].map((m) => m[1])),
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
