// The daemon on a freshly booted Debian 13 (systemd as PID 1), the user's whole experience of issue 5:
// apt-get install of the .deb with mariadb-server, influxdb and postgresql, the README's Configure
// steps, check, `systemctl enable --now`, a full and then an incremental backup run by the daemon on
// its schedule, a restore of the three databases after destroying them, a slot skipped while root's
// restore holds the run lock, a stop in the middle of a run, a reboot across a scheduled slot with the catch-up that
// follows, and the unit's exposure score. Monitoring as the README sets it up: Debian's own
// prometheus-node-exporter, installed first, reads the agent's metrics file from its textfile
// directory, which the hardened unit writes (ReadWritePaths=, and the ACL entry postinst grants).
// `check` names a configured path the unit's sandbox would not let the daemon write, and passes
// once a `systemctl edit` drop-in opens it.
//
// The container shares the host's network namespace (container.ts: no --private-network), so nothing
// in it may listen on a default port: the services are kept from starting during apt (policy-rc.d, as
// in Debian's own container images), then MariaDB gets skip-networking (the agent uses the socket),
// InfluxDB, PostgreSQL, sshd and node_exporter get free ports on 127.0.0.1 before they are started.
// PostgreSQL keeps TCP: root's restore loads the archive in a password login over 127.0.0.1
// (src/sources/postgresql/session-role.ts); the dump logs in through the socket (peer authentication,
// role backup), whose name carries the port. The rsync target is the container itself: an account
// `target` reached through that sshd.
//
// The trigger: `[agent] schedule = 0 * * * * *` (every minute, seconds field) and full_day set to a
// weekday three days away, so the first run is a full (no chain on the target) and the next ones
// are incrementals.
//
// Needs root, debootstrap and systemd-nspawn; without them it fails, it does not skip. Builds the
// .deb with scripts/build-deb.sh, or takes the one named by BACKUP_AGENT_DEB.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKUP_GRANT } from '../../src/sources/postgresql/dump-errors.js';
import { SESSION_ROLE } from '../../src/sources/postgresql/session-role.js';
import { freePort } from '../harness/ports.js';
import {
  aptGet,
  authorizeOnTarget,
  bootContainer,
  type Container,
  missingPrerequisite,
  packageUnderTest,
  influxQuery as queryInflux,
  influxWrite as writeInflux,
  writeInfluxUnits,
} from './container.js';

const REPO = new URL('../../', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const MAX_EXPOSURE = 2.5;
const UNIT = 'backup-agent.service';
const STANDIN = 'telegraf-standin.service';
const MYSQL_DB = 'agama';
const INFLUX_DB = 'telegraf';
const PG_DB = 'shop';
const SOURCES = ['mysql', 'influxdb', 'postgresql'] as const;
const STATE_FILE = '/var/lib/backup-agent/state.json';
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const RUN_TIMEOUT_MS = 10 * 60_000;
const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
const METRICS_FILE = `${TEXTFILE_DIR}/backup_agent.prom`;

/** The ```sh blocks of the README's Configure section, in order. */
function readmeConfigureBlocks(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.split(/^## Configure$/m)[1]?.split(/^### /m)[0];
  assert.ok(section, 'README.md has no "## Configure" section');
  const blocks = [...section.matchAll(/^ *```sh\n([\s\S]*?)^ *```$/gm)].map((match) =>
    (match[1] ?? '')
      .split('\n')
      .map((line) => line.replace(/^ {3}/, ''))
      .join('\n'),
  );
  assert.equal(blocks.length, 5, 'the Configure section should have 5 command blocks');
  return blocks;
}

interface SourceRecord {
  readonly startedAt: string;
  readonly result: string;
  readonly kind: string | null;
}
interface StateJson {
  readonly lastRun: { readonly result: string; readonly startedAt: string; readonly reason: string | null } | null;
  readonly catchUp: { readonly slot: string; readonly startedAt: string } | null;
  readonly sources: Partial<Record<(typeof SOURCES)[number], { readonly lastSuccess: SourceRecord | null }>>;
}

describe('the daemon on a freshly booted Debian 13', () => {
  const started = Date.now();
  let container: Container;
  let deb: string;
  let sshPort = 0;
  let influxRpc = 0;
  let influxHttp = 0;
  let exporterPort = 0;
  let pgPort = 0;
  /** The cluster Debian created, e.g. 17/main. */
  let pgCluster = { version: '', name: '' };
  /** Time of the PostgreSQL steps (not the apt download), to keep the test's total in check. */
  const pgMs: Record<string, number> = {};
  const timed = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await body();
    } finally {
      pgMs[what] = (pgMs[what] ?? 0) + Date.now() - t0;
    }
  };
  let exposure = Number.NaN;
  let original: string;

  const run = (argv: readonly [string, ...string[]], okExitCodes?: readonly number[], input?: string) =>
    container.run(argv, {
      okExitCodes: okExitCodes ?? [0],
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 20 * 60_000,
      ...(input === undefined ? {} : { input }),
    });
  const sh = (script: string) => run(['sh', '-ec', script]);
  const writeFile = async (path: string, content: string) => {
    await run(['tee', path], [0], content);
  };
  const mysql = async (sql: string, db?: string) =>
    (await run(['mariadb', '--batch', '--skip-column-names', ...(db === undefined ? [] : [db]), '-e', sql])).stdout;
  /** psql as the superuser postgres through the socket; several statements run in one transaction. */
  const psql = async (sql: string, db = 'postgres') =>
    (
      await run([
        'runuser',
        '-u',
        'postgres',
        '--',
        'psql',
        '--no-psqlrc',
        '--quiet',
        '--no-align',
        '--tuples-only',
        '--set=ON_ERROR_STOP=1',
        `--port=${pgPort}`,
        `--dbname=${db}`,
        `--command=${sql}`,
      ])
    ).stdout;
  const influxUrl = () => `http://127.0.0.1:${influxHttp}`;
  const influxQuery = async (q: string, method: 'GET' | 'POST' = 'GET') =>
    JSON.parse(await queryInflux(container, influxUrl(), INFLUX_DB, q, method)) as unknown;
  const influxWrite = (lines: string[]) => writeInflux(container, influxUrl(), INFLUX_DB, lines);
  const readState = async (): Promise<StateJson | null> => {
    const result = await run(['cat', STATE_FILE], [0, 1]);
    if (result.exitCode !== 0 || result.stdout.trim() === '') return null;
    return JSON.parse(result.stdout) as StateJson;
  };
  const statusText = async () =>
    (await run(['systemctl', 'show', '--value', '--property=StatusText', UNIT])).stdout.trim();
  // --boot: after the reboot, the lines of the earlier boot must not satisfy an assertion.
  const journal = async (unit = UNIT) =>
    (await run(['journalctl', '--no-pager', '-o', 'cat', '--boot', '-u', unit], [0, 1])).stdout;
  const waitFor = async <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        const tail = (await journal().catch(() => '')).slice(-4000);
        throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n--- journal (tail) ---\n${tail}`);
      }
      await sleep(1000);
    }
  };
  const childProcesses = async () =>
    (
      await run(
        ['pgrep', '-a', '-u', 'backup', '-f', 'duplicity|mariadb-dump|influxd|pg_dump|psql|gpg|ssh|rsync'],
        [0, 1],
      )
    ).stdout.trim();

  async function fingerprint(): Promise<string> {
    const checksums = await mysql(`CHECKSUM TABLE ${MYSQL_DB}.metrics, ${MYSQL_DB}.events EXTENDED`);
    const counts = await mysql(
      `SELECT (SELECT COUNT(*) FROM ${MYSQL_DB}.metrics), (SELECT COUNT(*) FROM ${MYSQL_DB}.events), (SELECT SUM(v) FROM ${MYSQL_DB}.metrics)`,
    );
    const influx = await influxQuery('SELECT COUNT(value), SUM(value) FROM cpu, mem');
    return JSON.stringify({
      checksums: checksums.trim(),
      counts: counts.trim(),
      influx,
      postgresql: await pgFingerprint(),
    });
  }

  /**
   * Every table of shop in name order: its owner, row count and the md5 of its rows (as text,
   * sorted), then the sequences' positions and the database's owner.
   */
  async function pgFingerprint(): Promise<string> {
    const tables = (
      await psql(
        "SELECT format('%I.%I', schemaname, tablename) || ' ' || tableowner FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        PG_DB,
      )
    )
      .split('\n')
      .filter((line) => line !== '');
    const lines: string[] = [];
    for (const line of tables) {
      const [table = ''] = line.split(' ');
      const rows = await psql(
        `SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM ${table} t`,
        PG_DB,
      );
      lines.push(`${line} ${rows.trim()}`);
    }
    const sequences = await psql(
      "SELECT string_agg(format('%I.%I %s', schemaname, sequencename, last_value), ', ' ORDER BY 1) FROM pg_sequences",
      PG_DB,
    );
    const owner = await psql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${PG_DB}'`);
    lines.push(`sequences: ${sequences.trim()}`, `owner: ${owner.trim()}`);
    return lines.join('\n');
  }

  /** The state once every source has a success that started after `after`. */
  async function waitForSuccessSince(after: Date, what: string): Promise<StateJson> {
    return waitFor(what, RUN_TIMEOUT_MS, async () => {
      const state = await readState();
      const done = SOURCES.every((source) => {
        const success = state?.sources[source]?.lastSuccess ?? null;
        return success !== null && new Date(success.startedAt) > after;
      });
      return done && state !== null ? state : undefined;
    });
  }

  async function waitForSuccessfulRun(after: Date, kind: 'full' | 'incremental'): Promise<StateJson> {
    const state = await waitForSuccessSince(
      after,
      `a successful ${kind} run of every source started after ${after.toISOString()}`,
    );
    for (const source of SOURCES) {
      assert.equal(
        state.sources[source]?.lastSuccess?.kind,
        kind,
        `${source}: ${JSON.stringify(state.sources[source])}`,
      );
    }
    return state;
  }

  /** Stops the daemon while it is idle: runs start at second 0 of each minute. */
  async function stopWhileIdle(): Promise<void> {
    await waitFor('an idle moment of the daemon', RUN_TIMEOUT_MS, async () => {
      const second = new Date().getUTCSeconds();
      return second >= 5 && second <= 45 && (await statusText()).startsWith('idle') ? true : undefined;
    });
    await run(['systemctl', 'stop', UNIT]);
    assert.equal((await run(['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
  }

  before(async () => {
    const missing = await missingPrerequisite();
    if (missing !== undefined) throw new Error(`cannot run the daemon e2e test: ${missing}`);
    deb = await packageUnderTest(VERSION);
    console.log(`# package ${basename(deb)}: ${(statSync(deb).size / 1024).toFixed(0)} KiB`);
    [sshPort, influxRpc, influxHttp, exporterPort, pgPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    container = await bootContainer({ label: 'daemon' });
    console.log(
      `# container ${container.name} booted in ${(container.bootMs / 1000).toFixed(1)} s (${container.systemState}); ` +
        `host network shared: sshd on 127.0.0.1:${sshPort}, influxd RPC ${influxRpc}, HTTP ${influxHttp}, ` +
        `node_exporter ${exporterPort}, PostgreSQL ${pgPort}, MariaDB socket only`,
    );
    await container.copyIn(deb, `/root/${basename(deb)}`);
  });

  after(async () => {
    await container?.destroy();
    const pgTotal = Object.values(pgMs).reduce((sum, ms) => sum + ms, 0);
    console.log(
      `# postgresql steps (besides apt) took ${(pgTotal / 1000).toFixed(1)} s: ${Object.entries(pgMs)
        .map(([what, ms]) => `${what} ${(ms / 1000).toFixed(1)} s`)
        .join(', ')}`,
    );
    console.log(`# exposure ${exposure}; e2e wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  test('apt-get install ./backup-agent_*.deb mariadb-server influxdb postgresql succeeds; the service is installed, not enabled', async () => {
    const t0 = Date.now();
    // No service may start on the host's network with its default port: keep them stopped during apt.
    await writeFile('/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n');
    await run(['chmod', '0755', '/usr/sbin/policy-rc.d']);
    await aptGet(container, ['update', '-q']);
    // node_exporter before the agent: postinst's configure grants the backup user its directory
    // (package.test.ts installs it after the agent, through the trigger).
    await aptGet(container, ['install', '-y', '-q', '--no-install-recommends', 'prometheus-node-exporter']);
    await aptGet(container, [
      'install',
      '-y',
      '-q',
      `/root/${basename(deb)}`,
      'mariadb-server',
      'influxdb',
      'postgresql',
    ]);
    // The test's own tools and the target's sshd.
    await aptGet(container, ['install', '-y', '-q', '--no-install-recommends', 'openssh-server', 'curl', 'procps']);
    await run(['rm', '/usr/sbin/policy-rc.d']);
    console.log(`# apt-get install took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // Debian created the cluster main; policy-rc.d kept it from starting on the default port.
    const clusters = (await run(['pg_lsclusters', '--no-header'])).stdout.trim().split('\n');
    assert.equal(clusters.length, 1, clusters.join('\n'));
    const [version = '', name = '', port = '', status = ''] = (clusters[0] ?? '').split(/\s+/);
    assert.deepEqual([name, port, status], ['main', '5432', 'down'], clusters[0]);
    pgCluster = { version, name };
    assert.equal(
      (await run(['dpkg-query', '--show', '--showformat=${Version}', 'backup-agent'])).stdout.trim(),
      VERSION,
    );
    assert.equal((await run(['systemctl', 'is-enabled', UNIT], [1])).stdout.trim(), 'disabled');
    assert.equal((await run(['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
  });

  test('the databases, the stand-in for telegraf and the target sshd start on free ports', async () => {
    // MariaDB: the socket only (the agent and root's restore client use it).
    await writeFile('/etc/mysql/mariadb.conf.d/99-e2e.cnf', '[mysqld]\nskip-networking\n');
    // InfluxDB 1.x reads INFLUXDB_<SECTION>_<KEY> from the environment.
    await writeInfluxUnits(container, { rpc: influxRpc, http: influxHttp }, STANDIN);
    await writeFile(
      '/etc/ssh/sshd_config.d/e2e.conf',
      `Port ${sshPort}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n`,
    );
    await run(['sshd', '-t']);
    // PostgreSQL: a free port on 127.0.0.1 (the socket in /var/run/postgresql is named after it too).
    // listen_addresses in conf.d: pg_conftool writes 127.0.0.1 unquoted, which the server refuses.
    await timed('cluster setup', async () => {
      await run(['pg_conftool', pgCluster.version, pgCluster.name, 'set', 'port', String(pgPort)]);
      await writeFile(
        `/etc/postgresql/${pgCluster.version}/${pgCluster.name}/conf.d/e2e.conf`,
        "listen_addresses = '127.0.0.1'\n",
      );
    });
    // Debian's node_exporter reads ARGS from here; its textfile directory stays the default.
    await writeFile('/etc/default/prometheus-node-exporter', `ARGS="--web.listen-address=127.0.0.1:${exporterPort}"\n`);
    await run(['systemctl', 'daemon-reload']);
    await run(['systemctl', 'enable', '--now', 'mariadb', 'influxdb', STANDIN]);
    const pgUnit = `postgresql@${pgCluster.version}-${pgCluster.name}`;
    await timed('cluster setup', () => run(['systemctl', 'enable', '--now', 'postgresql', pgUnit]));
    await run(['systemctl', 'restart', 'ssh', 'prometheus-node-exporter']);
    await waitFor('influxd to answer /ping', 120_000, async () => {
      const ping = await run(
        ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `${influxUrl()}/ping`],
        [0, 7, 52, 56],
      );
      return ping.stdout.trim() === '204' ? true : undefined;
    });
    await influxQuery(`CREATE DATABASE ${INFLUX_DB}`, 'POST');

    // The data: two tables, and two measurements with fixed timestamps.
    await mysql(`CREATE DATABASE ${MYSQL_DB}`);
    await mysql(
      'CREATE TABLE metrics (id INT PRIMARY KEY, name VARCHAR(64), v BIGINT) ENGINE=InnoDB;' +
        'INSERT INTO metrics SELECT seq, MD5(seq), seq * 7 FROM seq_1_to_50000;' +
        'CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, what TEXT) ENGINE=InnoDB;' +
        "INSERT INTO events (what) SELECT CONCAT('event ', seq) FROM seq_1_to_2000;",
      MYSQL_DB,
    );
    // shop: two tables with a foreign key and a serial column, deterministic rows.
    await timed('seeding shop', async () => {
      await psql(`CREATE DATABASE ${PG_DB}`);
      await psql(
        [
          'CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, balance numeric(12,2) NOT NULL, note text);',
          'CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, amount numeric(12,2) NOT NULL, created timestamptz NOT NULL);',
          "INSERT INTO customers (name, balance, note) SELECT 'customer ' || g, (g * 37 % 100000) / 100.0, md5(g::text) || E' O''Brien \\\\ tab\\there' FROM generate_series(1, 3000) g;",
          "INSERT INTO orders SELECT g, 1 + g * 7 % 3000, (g * 13 % 5000) / 10.0, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 5000) g;",
          'CREATE INDEX orders_customer ON orders (customer_id);',
          'CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 400;',
        ].join('\n'),
        PG_DB,
      );
    });
    assert.equal((await psql('SELECT count(*) FROM customers', PG_DB)).trim(), '3000');
    const base = 1_764_000_000;
    await influxWrite(
      Array.from({ length: 3000 }, (_, i) => `${i % 2 === 0 ? 'cpu' : 'mem'},host=h${i % 5} value=${i} ${base + i}`),
    );

    // The target account on this same host.
    await run(['useradd', '--create-home', '--shell', '/bin/sh', 'target']);
    await run(['usermod', '-p', '*', 'target']);
    assert.equal(
      (
        await run(['systemctl', 'is-active', 'mariadb', 'influxdb', STANDIN, 'ssh', 'prometheus-node-exporter', pgUnit])
      ).stdout
        .trim()
        .split('\n')
        .join(' '),
      'active active active active active active',
    );
    assert.equal(
      (await psql("SELECT current_setting('port') || ' ' || current_setting('listen_addresses')")).trim(),
      `${pgPort} 127.0.0.1`,
    );
  });

  test("configured with the README's own steps; backup-agent check passes", async () => {
    const [mysqlBlock, postgresqlBlock, targetBlock, passphraseBlock, checkBlock] = readmeConfigureBlocks() as [
      string,
      string,
      string,
      string,
      string,
    ];
    // 1. MySQL user and .my.cnf, verbatim.
    await sh(mysqlBlock);
    assert.equal((await run(['stat', '--format=%a %U %G', '/var/backups/.my.cnf'])).stdout.trim(), '600 backup backup');
    // 1. (PostgreSQL) The role, verbatim; psql finds the cluster on its port through PGPORT. The
    // grant is the one the agent's own hints quote.
    assert.match(postgresqlBlock, /^runuser -u postgres -- psql -c /m);
    assert.ok(postgresqlBlock.includes(BACKUP_GRANT), `the README's grant differs from ${BACKUP_GRANT}`);
    await timed('role and grant', () =>
      container.run(['sh', '-ec', postgresqlBlock], { env: { PGPORT: String(pgPort) }, timeoutMs: 60_000 }),
    );
    assert.equal(
      (
        await psql(
          "SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = 'backup' AND r.rolcanlogin AND NOT r.rolsuper",
        )
      ).trim(),
      'pg_read_all_data',
    );
    // 2. The ssh key; the target is this container's sshd on a free port.
    const keyscan = /^ssh-keyscan backup\.example\.org /m;
    assert.match(targetBlock, keyscan, 'the README no longer runs ssh-keyscan backup.example.org');
    await sh(targetBlock.replace(keyscan, `ssh-keyscan -p ${sshPort} 127.0.0.1 `));
    // "add /etc/backup-agent/id_ed25519.pub to ~/.ssh/authorized_keys of the account on the target"
    await authorizeOnTarget(container);
    assert.match(
      (await run(['cat', '/etc/backup-agent/known_hosts'])).stdout,
      new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshPort} ssh-ed25519 `, 'm'),
    );
    // 3. The passphrase, verbatim.
    await sh(passphraseBlock);
    assert.equal(
      (await run(['stat', '--format=%a %U %G', '/etc/backup-agent/passphrase'])).stdout.trim(),
      '640 root backup',
    );
    // 4. Edit /etc/backup-agent.ini.
    const fullDay = WEEKDAYS[(new Date().getUTCDay() + 3) % 7] ?? 'sun';
    await run([
      'sed',
      '-i',
      '-e',
      's|^schedule = .*|schedule = 0 * * * * *|',
      '-e',
      `s|^full_day = .*|full_day = ${fullDay}|`,
      '-e',
      `s|^url = .*|url = rsync://target@127.0.0.1:${sshPort}/backups|`,
      '-e',
      `/^\\[influxdb\\]$/,/^\\[/s|^host = .*|host = 127.0.0.1:${influxRpc}|`,
      '-e',
      `/^\\[postgresql\\]$/,/^\\[/s|^port = .*|port = ${pgPort}|`,
      '-e',
      `s|^http_url = .*|http_url = http://127.0.0.1:${influxHttp}|`,
      '-e',
      's|^stop_services = .*|stop_services = telegraf-standin|',
      '-e',
      `s|^textfile =.*|textfile = ${METRICS_FILE}|`,
      '/etc/backup-agent.ini',
    ]);
    const ini = (await run(['cat', '/etc/backup-agent.ini'])).stdout;
    assert.match(ini, new RegExp(`^textfile = ${METRICS_FILE}$`, 'm'));
    assert.match(ini, /^schedule = 0 \* \* \* \* \*$/m);
    assert.match(ini, new RegExp(`^url = rsync://target@127\\.0\\.0\\.1:${sshPort}/backups$`, 'm'));
    assert.match(ini, /^stop_services = telegraf-standin$/m);
    assert.match(ini, /^databases = agama$/m);
    assert.match(ini, /^databases = telegraf$/m);
    const pgSection = ini.split(/^\[postgresql\]$/m)[1]?.split(/^\[/m)[0] ?? '';
    assert.match(pgSection, /^enabled = true$/m);
    assert.match(pgSection, new RegExp(`^databases = ${PG_DB}$`, 'm'));
    assert.match(pgSection, /^host = \/var\/run\/postgresql$/m);
    assert.match(pgSection, new RegExp(`^port = ${pgPort}$`, 'm'));
    assert.match(pgSection, /^user = *$/m);
    assert.match(pgSection, /^admin_user = postgres$/m);

    // As the agent user first: what the configuration allows, independent of the switch from root.
    assert.match(checkBlock, /^backup-agent check\b/m);
    const check = await run(['runuser', '-u', 'backup', '--', 'backup-agent', 'check'], [0, 1, 78]);
    console.log(check.stdout.replace(/^/gm, '#   '));
    assert.equal(check.exitCode, 0, `backup-agent check failed:\n${check.stdout}\n${check.stderr}`);
    assert.match(check.stdout, /^\[ ok \] metrics file: /m);
    assert.match(
      check.stdout,
      new RegExp(
        `^\\[ ok \\] postgresql access: PostgreSQL answers at /var/run/postgresql:${pgPort} and role backup can read and lock every table of ${PG_DB}$`,
        'm',
      ),
    );
    assert.match(check.stdout, /^\[ ok \] programs: .*pg_dump/m);
    assert.match(
      check.stdout,
      /^\[ ok \] unit sandbox: backup-agent\.service lets the daemon write .*\/var\/lib\/prometheus\/node-exporter/m,
    );
    assert.match(checkBlock, /^backup-agent run --dry-run\b/m);
    const dry = await run(['runuser', '-u', 'backup', '--', 'backup-agent', 'run', '--dry-run'], [0, 1]);
    assert.equal(dry.exitCode, 0, `dry run failed:\n${dry.stdout}\n${dry.stderr}`);
    assert.match(dry.stdout, /full/);
    assert.match(dry.stdout, /pg_dump/);
  });

  test('as root, as the README runs them: check and run --dry-run switch to the backup user', async () => {
    // README: "Run as root, run, list, check, verify and status switch to the backup user first".
    const check = await run(['backup-agent', 'check'], [0, 1, 78]);
    assert.equal(check.exitCode, 0, `backup-agent check as root failed:\n${check.stdout}\n${check.stderr}`);
    const dry = await run(['backup-agent', 'run', '--dry-run'], [0, 1]);
    assert.equal(dry.exitCode, 0, `backup-agent run --dry-run as root failed:\n${dry.stdout}\n${dry.stderr}`);
  });

  test("a staging_dir outside the unit's sandbox fails check, naming it and the fix; the drop-in fixes it", async () => {
    const moved = '/srv/backup-staging';
    const dropIn = '/etc/systemd/system/backup-agent.service.d/override.conf';
    await run(['install', '-d', '-o', 'backup', '-g', 'backup', '-m', '0750', moved]);
    await run(['sed', '-i', `s|^staging_dir = .*|staging_dir = ${moved}|`, '/etc/backup-agent.ini']);
    try {
      const refused = await run(['backup-agent', 'check'], [0, 1]);
      console.log(
        refused.stdout
          .split('\n')
          .filter((line) => /unit sandbox|^ +fix: systemctl edit/.test(line))
          .map((line) => `#   ${line}`)
          .join('\n'),
      );
      assert.equal(refused.exitCode, 1, refused.stdout);
      assert.match(
        refused.stdout,
        new RegExp(
          `^\\[FAIL\\] unit sandbox: .*agent\\.staging_dir = ${moved} is read-only under ProtectSystem=strict`,
          'm',
        ),
      );
      assert.match(
        refused.stdout,
        new RegExp(
          `^ +fix: systemctl edit backup-agent, add the lines "\\[Service\\]" and "ReadWritePaths=${moved}"`,
          'm',
        ),
      );

      // What `systemctl edit backup-agent` leaves behind: the drop-in, then a daemon-reload.
      await run(['mkdir', '-p', '/etc/systemd/system/backup-agent.service.d']);
      await writeFile(dropIn, `[Service]\nReadWritePaths=${moved}\n`);
      await run(['systemctl', 'daemon-reload']);
      const passed = await run(['backup-agent', 'check'], [0, 1]);
      assert.equal(passed.exitCode, 0, passed.stdout);
      assert.match(passed.stdout, new RegExp(`^\\[ ok \\] unit sandbox: .*${moved}`, 'm'));
    } finally {
      await run([
        'sed',
        '-i',
        's|^staging_dir = .*|staging_dir = /var/lib/backup-agent/staging|',
        '/etc/backup-agent.ini',
      ]);
      await run(['rm', '-f', dropIn]);
      await run(['systemctl', 'daemon-reload']);
    }
  });

  test('systemctl enable --now: active (running), READY through Type=notify, STATUS shown', async () => {
    assert.match(readmeConfigureBlocks()[4] ?? '', /^systemctl enable --now backup-agent$/m);
    // Type=notify: the start job only completes on READY=1.
    await run(['systemctl', 'enable', '--now', 'backup-agent']);
    assert.equal((await run(['systemctl', 'is-enabled', UNIT])).stdout.trim(), 'enabled');
    const show = (await run(['systemctl', 'show', '--property=Type,ActiveState,SubState,NotifyAccess', UNIT])).stdout;
    assert.match(show, /^Type=notify$/m);
    assert.match(show, /^ActiveState=active$/m);
    assert.match(show, /^SubState=running$/m);
    const status = (await run(['systemctl', 'status', '--no-pager', UNIT], [0, 3])).stdout;
    console.log(
      status
        .split('\n')
        .slice(0, 8)
        .map((line) => `#   ${line}`)
        .join('\n'),
    );
    assert.match(status, /Active: active \(running\)/);
    assert.match(status, /Status: "(idle|running)/);
    assert.match(await journal(), /daemon ready/);
  });

  test('the daemon runs a full backup on its schedule, then an incremental after a change', async () => {
    const enabledAt = new Date(Date.now() - 5_000);
    const full = await waitForSuccessfulRun(enabledAt, 'full');
    console.log(`# full run by the daemon: ${full.sources.mysql?.lastSuccess?.startedAt} (${full.lastRun?.result})`);
    assert.equal(full.sources.postgresql?.lastSuccess?.result, 'ok', JSON.stringify(full.sources.postgresql));

    await mysql(
      "INSERT INTO metrics SELECT seq, MD5(seq), seq * 3 FROM seq_50001_to_52000; UPDATE events SET what = 'changed' WHERE id <= 100;",
      MYSQL_DB,
    );
    await influxWrite(Array.from({ length: 500 }, (_, i) => `cpu,host=new value=${10_000 + i} ${1_764_100_000 + i}`));
    await psql(
      "UPDATE customers SET balance = balance + 1 WHERE id <= 100; INSERT INTO customers (name, balance) SELECT 'new ' || g, g FROM generate_series(1, 50) g; INSERT INTO orders SELECT g, 3000 + g % 50 + 1, g / 10.0, timestamptz '2026-02-01 00:00:00+00' + g * interval '1 second' FROM generate_series(5001, 5200) g;",
      PG_DB,
    );
    original = await fingerprint();
    const changedAt = new Date();
    const incremental = await waitForSuccessfulRun(changedAt, 'incremental');
    console.log(`# incremental run by the daemon: ${incremental.sources.mysql?.lastSuccess?.startedAt}`);
    await stopWhileIdle();

    for (const source of SOURCES) {
      const list = await run(['runuser', '-u', 'backup', '--', 'backup-agent', 'list', source]);
      console.log(list.stdout.trim().replace(/^/gm, `#   ${source}: `));
      assert.match(list.stdout, /full/);
      assert.match(list.stdout, /incremental/);
    }
    assert.match(await journal(), /scheduled|catch-up/);
  });

  test("Debian's node_exporter serves the daemon's metrics from its textfile directory, without a scrape error", async () => {
    const state = await readState();
    const success = state?.sources.mysql?.lastSuccess;
    assert.ok(success, JSON.stringify(state));
    // Written by the daemon under the unit (UMask=0077), readable by node_exporter's own user.
    assert.equal((await run(['stat', '--format=%U %a', METRICS_FILE])).stdout.trim(), 'backup 644');
    const metrics = (await run(['curl', '-sS', '--fail', `http://127.0.0.1:${exporterPort}/metrics`])).stdout;
    const value = (series: string) =>
      metrics
        .split('\n')
        .find((text) => text.startsWith(`${series} `))
        ?.slice(series.length + 1);
    console.log(
      metrics
        .split('\n')
        .filter((text) => /^backup_agent_last_success|^node_textfile/.test(text))
        .map((text) => `#   ${text}`)
        .join('\n'),
    );
    // Go prints the values in exponent form (1.7645e+09): compared as numbers.
    assert.equal(
      Number(value('backup_agent_last_success_timestamp_seconds{source="mysql"}')),
      Math.floor(new Date(success.startedAt).getTime() / 1000),
    );
    assert.equal(Number(value('backup_agent_last_run_success{source="influxdb"}')), 1);
    assert.equal(Number(value('backup_agent_last_run_success{source="postgresql"}')), 1);
    // node_exporter 1.9 labels the file with its path (1.5: its name).
    assert.match(metrics, /^node_textfile_mtime_seconds\{file="[^"]*backup_agent\.prom"\} \S+$/m);
    assert.equal(value('node_textfile_scrape_error'), '0');
  });

  test('after the data is destroyed, restore mysql, influxdb and postgresql bring it back equal', async () => {
    assert.ok(original, 'no fingerprint from the backup step');
    const pgOriginal = (JSON.parse(original) as { postgresql: string }).postgresql;
    await mysql(`DROP DATABASE ${MYSQL_DB}`);
    await influxQuery(`DROP DATABASE ${INFLUX_DB}`, 'POST');
    await psql(`DROP DATABASE ${PG_DB}`);
    assert.notEqual(await fingerprint().catch(() => 'gone'), original);

    const mysqlRestore = await run(['backup-agent', 'restore', 'mysql', '--yes']);
    console.log(
      mysqlRestore.stdout
        .trim()
        .split('\n')
        .slice(-6)
        .map((line) => `#   ${line}`)
        .join('\n'),
    );

    const pidBefore = (await run(['systemctl', 'show', '--value', '--property=MainPID', STANDIN])).stdout.trim();
    let sawStopped = false;
    let restoring = true;
    const watcher = (async () => {
      while (restoring) {
        const state = (await run(['systemctl', 'is-active', STANDIN], [0, 3])).stdout.trim();
        if (state !== 'active') sawStopped = true;
        await sleep(200);
      }
    })();
    const influxRestore = await run(['backup-agent', 'restore', 'influxdb', '--yes']).finally(() => {
      restoring = false;
    });
    await watcher;
    console.log(
      influxRestore.stdout
        .trim()
        .split('\n')
        .slice(-6)
        .map((line) => `#   ${line}`)
        .join('\n'),
    );
    const pidAfter = (await run(['systemctl', 'show', '--value', '--property=MainPID', STANDIN])).stdout.trim();
    assert.equal((await run(['systemctl', 'is-active', STANDIN])).stdout.trim(), 'active', 'the stand-in runs again');
    assert.notEqual(pidAfter, pidBefore, 'the stand-in was restarted');
    assert.ok(
      sawStopped || /Stopped|Stopping/.test(await journal(STANDIN)),
      'the stand-in was stopped during the restore',
    );
    assert.match(await journal(STANDIN), /Stopp/);

    const pgRestore = await timed('restore', () => run(['backup-agent', 'restore', 'postgresql', '--yes'], [0, 1]));
    console.log(
      pgRestore.stdout
        .trim()
        .split('\n')
        .slice(-6)
        .map((line) => `#   ${line}`)
        .join('\n'),
    );
    assert.equal(pgRestore.exitCode, 0, `${pgRestore.stdout}\n${pgRestore.stderr}`);
    assert.equal(await timed('fingerprint', pgFingerprint), pgOriginal);
    // Nothing of the restore's machinery stays behind: the login role and the work database.
    assert.equal((await psql(`SELECT rolname FROM pg_roles WHERE rolname = '${SESSION_ROLE}'`)).trim(), '');
    assert.equal((await psql("SELECT datname FROM pg_database WHERE datname LIKE 'restoring\\_%'")).trim(), '');
    assert.notEqual((await psql('SELECT count(*) FROM big_orders', PG_DB)).trim(), '0', 'the view is back');

    assert.equal(await fingerprint(), original);
  });

  test('a slot that comes due during a root restore is skipped, "restore by pid N in progress"; nothing is uploaded', async () => {
    // Under the real unit (ProtectProc=invisible, PrivateUsers=yes) root's restore is invisible to
    // the daemon: only the kernel's lock can tell it that the restore is alive.
    const targetFiles = async () =>
      (await run(['find', '/home/target/backups', '-type', 'f', '-printf', '%P %s %T@\n'])).stdout
        .split('\n')
        .filter((line) => line !== '')
        .sort()
        .join('\n');
    const before = await targetFiles();
    // The restore takes the lock, then waits at its confirmation prompt until the test answers:
    // script(1) gives it the terminal it asks on (the command string is script's, run by sh).
    const restore = container.start([
      'script',
      '--quiet',
      '--return',
      '--command',
      'backup-agent restore mysql',
      '/dev/null',
    ]);
    const restoreExit = once(restore, 'exit');
    let output = '';
    restore.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    restore.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let restorePid = '';
    try {
      await waitFor('the restore asking for confirmation', 120_000, () =>
        Promise.resolve(/Go on\? \[y\/N\]/.test(output) ? true : undefined),
      );
      await run(['systemctl', 'start', UNIT]);
      // The catch-up 30 s after the start, or the next minute's slot, whichever comes first.
      const skipped = await waitFor(
        'a run skipped because of the restore',
        120_000,
        async () =>
          /run skipped: restore by pid (\d+) in progress, started \S+ \(backup-agent restore mysql\)/.exec(
            await journal(),
          ) ?? undefined,
      );
      restorePid = skipped[1] ?? '';
      const holder = (await run(['ps', '-o', 'user=,args=', '-p', restorePid], [0, 1])).stdout.trim();
      assert.match(holder, /^root .*backup-agent restore mysql$/, `pid ${restorePid} is not the restore`);
      // What `backup-agent status` shows: recorded just after the journal line.
      await waitFor('the skip in the state file', 10_000, async () => {
        const last = (await readState())?.lastRun;
        return last?.result === 'skipped' && last.reason?.startsWith(`restore by pid ${restorePid} in progress`)
          ? true
          : undefined;
      });
      assert.equal(await targetFiles(), before, 'something was uploaded while the restore held the lock');

      restore.stdin?.write('y\n');
      const [code] = (await restoreExit) as [number | null];
      assert.equal(code, 0, output.slice(-3000));
      assert.equal(await targetFiles(), before, 'something was uploaded during the restore');
      assert.equal(await fingerprint(), original);
      console.log(`# ${skipped[0]}`);
    } finally {
      restore.stdin?.end();
      if (restore.exitCode === null) {
        if (restorePid !== '') await run(['kill', restorePid], [0, 1]);
        restore.kill('SIGKILL');
      }
    }
    await stopWhileIdle();
  });

  test('systemctl stop in the middle of a run: clean stop, no child process left', async () => {
    // More data, so that a run lasts a while.
    await mysql(
      'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(32), b CHAR(40)) ENGINE=InnoDB;' +
        'INSERT INTO bulk SELECT seq, MD5(seq), SHA1(seq) FROM seq_1_to_400000;',
      MYSQL_DB,
    );
    await run(['systemctl', 'start', UNIT]);
    const children = await waitFor('a running backup with its child processes', RUN_TIMEOUT_MS, async () => {
      // A dump or an upload, not the version probes or the listing of the target at the start of a run.
      const status = await statusText();
      if (!/^running .*(dump|upload)/.test(status)) return undefined;
      const found = (await childProcesses())
        .split('\n')
        .filter((line) => line !== '' && !/--version|--list-only/.test(line));
      return found.length > 0 ? found.join('\n') : undefined;
    });
    console.log(`# stopping during: ${await statusText()}\n${children.replace(/^/gm, '#   ')}`);
    const t0 = Date.now();
    await run(['systemctl', 'stop', UNIT]);
    console.log(`# systemctl stop took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const show = (await run(['systemctl', 'show', '--property=ActiveState,Result,ExecMainStatus', UNIT])).stdout;
    assert.match(show, /^ActiveState=inactive$/m);
    assert.match(show, /^Result=success$/m);
    assert.match(show, /^ExecMainStatus=0$/m);
    assert.equal(await childProcesses(), '', 'child processes outlived the daemon');
    // A half-written dump is not left as the staged one: dumps go to .<source>.new first.
    const partial = await run(['find', '/var/lib/backup-agent/staging', '-maxdepth', '1', '-name', '.*.new']);
    assert.equal(partial.stdout.trim(), '', 'a partial dump was left in the staging directory');
    const state = await readState();
    assert.equal(state?.lastRun?.result, 'interrupted', JSON.stringify(state?.lastRun));
    assert.match(await journal(), /daemon stopped/);
  });

  test('started again after the interrupted run, the daemon completes a backup', async () => {
    const restartedAt = new Date();
    await run(['systemctl', 'start', UNIT]);
    const state = await waitForSuccessSince(restartedAt, 'a successful run after the restart');
    console.log(`# after the restart: ${JSON.stringify(state.lastRun)}`);
    await stopWhileIdle();
    assert.equal(await childProcesses(), '');
  });

  test('rebooted across a scheduled slot, the enabled daemon comes back by itself and catches up', async () => {
    // A daily slot one to two minutes ahead; the machine is off from before the slot until after it,
    // as a host switched off or rebuilt at night.
    const slot = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 60_000);
    await run([
      'sed',
      '-i',
      '-e',
      `s|^schedule = .*|schedule = 0 ${slot.getUTCMinutes()} ${slot.getUTCHours()} * * *|`,
      '/etc/backup-agent.ini',
    ]);
    assert.match((await run(['cat', '/etc/backup-agent.ini'])).stdout, /^timezone = UTC$/m);
    await run(['systemctl', 'start', UNIT]);
    assert.match(await statusText(), /^idle/);
    await container.reboot({ offUntil: new Date(slot.getTime() + 10_000) });
    console.log(
      `# rebooted across the slot ${slot.toISOString()}: up again in ${(container.bootMs / 1000).toFixed(1)} s (${container.systemState})`,
    );

    // Nobody starts it: enabled, it comes up with the machine.
    assert.equal((await run(['systemctl', 'is-active', UNIT], [0, 3])).stdout.trim(), 'active');
    const state = await waitForSuccessSince(slot, 'the catch-up run after the reboot');
    assert.equal(new Date(state.catchUp?.slot ?? 0).getTime(), slot.getTime(), JSON.stringify(state.catchUp));
    const log = await journal();
    assert.match(log, /catching up: the slot of .* passed without a successful backup/);
    console.log(`# catch-up after the reboot: ${JSON.stringify(state.lastRun)}`);
    await stopWhileIdle();
  });

  test(`systemd-analyze security exposure is at most ${MAX_EXPOSURE}`, async () => {
    const result = await run(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const match = /Overall exposure level for backup-agent\.service: (\d+\.\d+)/.exec(result.stdout);
    assert.ok(match?.[1], `no exposure line in:\n${result.stdout.slice(-500)}`);
    exposure = Number(match[1]);
    console.log(`# systemd-analyze security ${UNIT}: exposure ${exposure}`);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}`);
  });
});
