// The shipped alert rules against a real scrape, on a freshly booted Debian 13: the .deb's daemon
// backs up MariaDB and InfluxDB every minute, Debian's prometheus-node-exporter reads its metrics
// file, and Debian's prometheus scrapes node_exporter every 2 s with the rules the package installed
// (/usr/share/backup-agent/backup-agent.rules.yml). MariaDB is stopped: BackupAgentSourceFailing goes
// to firing for this host and mysql only, and nothing else fires. MariaDB is started again: at the
// next successful run the alert resolves. Everything is asserted through Prometheus' HTTP API, as a
// dashboard or Alertmanager would see it.
//
// The container shares the host's network (container.ts), so every server gets a free loopback
// port and the test reaches Prometheus from the host. Needs root, debootstrap and systemd-nspawn;
// without them it fails, it does not skip. Builds the .deb with scripts/build-deb.sh, or takes the
// one named by BACKUP_AGENT_DEB.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../harness/ports.js';
import {
  aptGet,
  authorizeOnTarget,
  bootContainer,
  type Container,
  influxQuery,
  influxWrite,
  missingPrerequisite,
  packageUnderTest,
  writeInfluxUnits,
} from './container.js';

const REPO = new URL('../../', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const RULES = '/usr/share/backup-agent/backup-agent.rules.yml';
const METRICS_FILE = '/var/lib/prometheus/node-exporter/backup_agent.prom';
const STANDIN = 'telegraf-standin.service';
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const STEP_TIMEOUT = { timeout: 20 * 60_000 };

interface Alert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly state: string;
}

describe('the shipped alert rules in a real Prometheus, scraping a booted Debian 13', () => {
  const started = Date.now();
  let container: Container;
  let deb: string;
  let sshPort = 0;
  let influxRpc = 0;
  let influxHttp = 0;
  let exporterPort = 0;
  let prometheusPort = 0;
  let instance = '';

  const run = (argv: readonly [string, ...string[]], okExitCodes: readonly number[] = [0], input?: string) =>
    container.run(argv, { okExitCodes, timeoutMs: 20 * 60_000, ...(input === undefined ? {} : { input }) });
  const writeFile = (path: string, content: string) => run(['tee', path], [0], content);
  const mysql = (sql: string) => run(['mariadb', '--batch', '-e', sql]);

  /** GET on Prometheus' HTTP API (v1), from the host; the `data` of a successful answer. */
  async function prometheus<T>(path: string): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    assert.equal(body.status, 'success', `${path}: ${body.error ?? response.status}`);
    return body.data;
  }
  const alerts = async () => (await prometheus<{ alerts: Alert[] }>('alerts')).alerts;
  const query = (promql: string) =>
    prometheus<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `query?query=${encodeURIComponent(promql)}`,
    );

  async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        const journal = await run(['journalctl', '--no-pager', '-o', 'cat', '-u', 'backup-agent'], [0, 1]);
        const metrics = await run(['cat', METRICS_FILE], [0, 1]);
        throw new Error(
          `timed out after ${timeoutMs / 1000} s waiting for ${what}\n--- alerts ---\n${JSON.stringify(await alerts().catch(String))}` +
            `\n--- ${METRICS_FILE} ---\n${metrics.stdout}\n--- journal (tail) ---\n${journal.stdout.slice(-3000)}`,
        );
      }
      await sleep(2000);
    }
  }

  /** The value Prometheus has for backup_agent_last_run_success of the source, once it has one. */
  async function lastRunSuccess(source: string): Promise<string | undefined> {
    const { result } = await query(`backup_agent_last_run_success{source="${source}"}`);
    return result[0]?.value[1];
  }

  before(async () => {
    const missing = await missingPrerequisite();
    if (missing !== undefined) throw new Error(`cannot run the alerts e2e test: ${missing}`);
    deb = await packageUnderTest(VERSION);
    [sshPort, influxRpc, influxHttp, exporterPort, prometheusPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    instance = `127.0.0.1:${exporterPort}`;
    container = await bootContainer({ label: 'alerts' });
    console.log(
      `# container ${container.name} booted in ${(container.bootMs / 1000).toFixed(1)} s; ` +
        `node_exporter ${instance}, prometheus 127.0.0.1:${prometheusPort}`,
    );
    await container.copyIn(deb, `/root/${basename(deb)}`);
  });

  after(async () => {
    await container?.destroy();
    console.log(`# alerts e2e wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  test('the package, the databases, node_exporter and prometheus are installed and running', STEP_TIMEOUT, async () => {
    const t0 = Date.now();
    // No service may start on the host's network with its default port: keep them stopped during apt.
    await writeFile('/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n');
    await run(['chmod', '0755', '/usr/sbin/policy-rc.d']);
    await aptGet(container, ['update', '-q']);
    await aptGet(container, ['install', '-y', '-q', '--no-install-recommends', 'prometheus-node-exporter']);
    await aptGet(container, ['install', '-y', '-q', `/root/${basename(deb)}`, 'mariadb-server', 'influxdb']);
    await aptGet(container, ['install', '-y', '-q', '--no-install-recommends', 'prometheus', 'openssh-server', 'curl']);
    await run(['rm', '/usr/sbin/policy-rc.d']);
    console.log(`# apt-get install took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    assert.match((await run(['cat', RULES])).stdout, /alert: BackupAgentSourceFailing/);

    await writeFile('/etc/mysql/mariadb.conf.d/99-e2e.cnf', '[mysqld]\nskip-networking\n');
    await writeInfluxUnits(container, { rpc: influxRpc, http: influxHttp }, STANDIN);
    await writeFile('/etc/ssh/sshd_config.d/e2e.conf', `Port ${sshPort}\nListenAddress 127.0.0.1\n`);
    await writeFile('/etc/default/prometheus-node-exporter', `ARGS="--web.listen-address=${instance}"\n`);
    // What the README asks of the Prometheus server: the shipped file under rule_files.
    await writeFile(
      '/etc/prometheus/prometheus.yml',
      [
        'global:',
        '  scrape_interval: 2s',
        '  evaluation_interval: 2s',
        'rule_files:',
        `  - ${RULES}`,
        'scrape_configs:',
        '  - job_name: node',
        '    static_configs:',
        `      - targets: ['${instance}']`,
        '',
      ].join('\n'),
    );
    await writeFile('/etc/default/prometheus', `ARGS="--web.listen-address=127.0.0.1:${prometheusPort}"\n`);
    const config = await run(['promtool', 'check', 'config', '/etc/prometheus/prometheus.yml']);
    assert.match(config.stdout, /SUCCESS: 7 rules found/);
    await run(['systemctl', 'daemon-reload']);
    await run(['systemctl', 'enable', '--now', 'mariadb', 'influxdb', STANDIN]);
    await run(['systemctl', 'restart', 'ssh', 'prometheus-node-exporter', 'prometheus']);

    await mysql(
      'CREATE DATABASE agama; USE agama; CREATE TABLE t (id INT PRIMARY KEY, v TEXT);' +
        'INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_2000;' +
        "CREATE USER 'backup'@'localhost' IDENTIFIED BY 'e2e-password';" +
        "GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON agama.* TO 'backup'@'localhost';",
    );
    await run(['install', '-m', '0600', '-o', 'backup', '-g', 'backup', '/dev/null', '/var/backups/.my.cnf']);
    await writeFile('/var/backups/.my.cnf', '[client]\nuser = backup\npassword = e2e-password\n');
    await waitFor('influxd to answer', 120_000, async () =>
      (await influxQuery(container, `http://127.0.0.1:${influxHttp}`, 'telegraf', 'CREATE DATABASE telegraf', 'POST'))
        ? true
        : undefined,
    );
    // An empty InfluxDB backup fails the dump check: some points.
    await influxWrite(
      container,
      `http://127.0.0.1:${influxHttp}`,
      'telegraf',
      Array.from({ length: 200 }, (_, i) => `cpu,host=h${i % 3} value=${i} ${1_764_000_000 + i}`),
    );
    const rules = await waitFor('prometheus to load the rules', 120_000, async () => {
      const { groups } = await prometheus<{ groups: { name: string; rules: { name: string; health: string }[] }[] }>(
        'rules',
      );
      return groups.length > 0 ? groups : undefined;
    });
    assert.deepEqual(
      rules.flatMap((group) => group.rules.map((rule) => `${group.name}/${rule.name}`)),
      [
        'backup-agent/backup_agent:dump_shrink:ratio',
        'backup-agent/BackupAgentSourceFailing',
        'backup-agent/BackupAgentSourceStale',
        'backup-agent/BackupAgentMetricsStale',
        'backup-agent/BackupAgentMetricsUnreadable',
        'backup-agent/BackupAgentFullOverdue',
        'backup-agent/BackupAgentBackupShrank',
      ],
    );
  });

  test(
    'the daemon backs up every minute and Prometheus sees both sources succeed, with no alert',
    STEP_TIMEOUT,
    async () => {
      await run(['install', '-d', '-m', '0750', '-o', 'root', '-g', 'backup', '/etc/backup-agent']);
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '/etc/backup-agent/id_ed25519']);
      await run(['chown', 'backup:backup', '/etc/backup-agent/id_ed25519', '/etc/backup-agent/id_ed25519.pub']);
      const scan = await run(['ssh-keyscan', '-p', String(sshPort), '127.0.0.1']);
      await writeFile('/etc/backup-agent/known_hosts', scan.stdout);
      await run(['useradd', '--create-home', '--shell', '/bin/sh', 'target']);
      await run(['usermod', '-p', '*', 'target']);
      await authorizeOnTarget(container);
      await run(['install', '-m', '0640', '-o', 'root', '-g', 'backup', '/dev/null', '/etc/backup-agent/passphrase']);
      await writeFile('/etc/backup-agent/passphrase', 'e2e passphrase, not secret\n');
      await run([
        'sed',
        '-i',
        '-e',
        's|^schedule = .*|schedule = 0 * * * * *|',
        '-e',
        // A run every minute cannot promise a nightly deadline; the alerts do not depend on one.
        's|^deadline = .*|deadline =|',
        '-e',
        `s|^full_day = .*|full_day = ${WEEKDAYS[(new Date().getUTCDay() + 3) % 7] ?? 'sun'}|`,
        '-e',
        `s|^url = .*|url = rsync://target@127.0.0.1:${sshPort}/backups|`,
        '-e',
        `/^\\[influxdb\\]$/,/^\\[/s|^host = .*|host = 127.0.0.1:${influxRpc}|`,
        '-e',
        // These alerts are about MariaDB and InfluxDB; the example's PostgreSQL section is switched off.
        '/^\\[postgresql\\]$/,/^\\[/s|^enabled = .*|enabled = false|',
        '-e',
        `s|^http_url = .*|http_url = http://127.0.0.1:${influxHttp}|`,
        '-e',
        's|^stop_services = .*|stop_services = telegraf-standin|',
        '-e',
        `s|^textfile =.*|textfile = ${METRICS_FILE}|`,
        '/etc/backup-agent.ini',
      ]);
      const check = await run(['backup-agent', 'check'], [0, 1, 78]);
      assert.equal(check.exitCode, 0, `backup-agent check failed:\n${check.stdout}\n${check.stderr}`);
      await run(['systemctl', 'enable', '--now', 'backup-agent']);

      await waitFor('Prometheus to see a successful run of both sources', 10 * 60_000, async () =>
        (await lastRunSuccess('mysql')) === '1' && (await lastRunSuccess('influxdb')) === '1' ? true : undefined,
      );
      const { result } = await query('backup_agent_last_run_success');
      assert.deepEqual(result.map((sample) => sample.metric['instance']).sort(), [instance, instance]);
      assert.deepEqual(await alerts(), []);
    },
  );

  test('MariaDB stopped: BackupAgentSourceFailing fires for this host and mysql only', STEP_TIMEOUT, async () => {
    const brokenAt = Date.now();
    await run(['systemctl', 'stop', 'mariadb']);
    const firing = await waitFor('BackupAgentSourceFailing to fire', 5 * 60_000, async () => {
      const now = await alerts();
      return now.some((alert) => alert.state === 'firing') ? now : undefined;
    });
    console.log(`# firing ${((Date.now() - brokenAt) / 1000).toFixed(0)} s after MariaDB stopped`);
    console.log(`#   ${JSON.stringify(firing)}`);
    assert.deepEqual(
      firing.map((alert) => ({ state: alert.state, labels: alert.labels })),
      [
        {
          state: 'firing',
          labels: {
            alertname: 'BackupAgentSourceFailing',
            instance,
            job: 'node',
            severity: 'warning',
            source: 'mysql',
          },
        },
      ],
    );
    assert.equal(firing[0]?.annotations['summary'], `mysql backup failed on ${instance}`);
    assert.match(firing[0]?.annotations['description'] ?? '', /backup-agent run --source mysql/);
    assert.equal(await lastRunSuccess('influxdb'), '1', 'influxdb kept succeeding meanwhile');
  });

  test('MariaDB started again: the next successful run resolves the alert', STEP_TIMEOUT, async () => {
    assert.equal((await alerts())[0]?.state, 'firing', 'the failing alert fires before the fix');
    const fixedAt = Date.now();
    await run(['systemctl', 'start', 'mariadb']);
    await waitFor('the alert to resolve', 5 * 60_000, async () => ((await alerts()).length === 0 ? true : undefined));
    console.log(`# resolved ${((Date.now() - fixedAt) / 1000).toFixed(0)} s after MariaDB started`);
    assert.equal(await lastRunSuccess('mysql'), '1');
    const { result } = await query('ALERTS{alertstate="firing"}');
    assert.deepEqual(result, []);
  });
});
