// A root restore of InfluxDB stopped by SIGTERM half-way, on a freshly booted Debian 13 (systemd as
// PID 1: the only place where a service the restore stops can really be stopped and started). The
// stand-in for telegraf named in influxdb.stop_services runs again afterwards, the restore exits 143
// naming the state the database is in, no process of the backup user is left (ssh master and
// gpg-agent included), and the next restore brings the data back.
//
// To be hit half-way every time, the restore is slowed down: a wrapper /usr/local/bin/influxd (the
// agent's fixed PATH looks there first) waits before `influxd restore`, after the safety backup and
// the drop, while the stand-in is stopped. It is removed for the next restore.
//
// The container shares the host's network (container.ts), so influxd and sshd get free ports on
// 127.0.0.1; the services are kept from starting during apt (policy-rc.d). The target is the
// container itself: an account `target` reached through its sshd. MySQL is disabled: this is about
// the InfluxDB restore's services.
//
// Needs root, debootstrap and systemd-nspawn; without them it fails, it does not skip. Builds the
// .deb with scripts/build-deb.sh, or takes the one named by BACKUP_AGENT_DEB.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../harness/ports.js';
import {
  authorizeOnTarget,
  bootContainer,
  type Container,
  missingPrerequisite,
  influxQuery as queryInflux,
  influxWrite,
  packageUnderTest,
  writeInfluxUnits,
} from './container.js';

const REPO = new URL('../../', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const STANDIN = 'telegraf-standin';
const INFLUX_DB = 'telegraf';
const POINTS = 20_000;
const SLOW_INFLUXD = '/usr/local/bin/influxd';
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

describe('an InfluxDB restore stopped by SIGTERM on a booted Debian 13', () => {
  let container: Container;
  let sshPort = 0;
  let influxRpc = 0;
  let influxHttp = 0;

  const run = (argv: readonly [string, ...string[]], okExitCodes: readonly number[] = [0], input?: string) =>
    container.run(argv, {
      okExitCodes,
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 20 * 60_000,
      ...(input === undefined ? {} : { input }),
    });
  const writeFile = async (path: string, content: string) => {
    await run(['tee', path], [0], content);
  };
  const influxUrl = () => `http://127.0.0.1:${influxHttp}`;
  const influxQuery = (q: string, method: 'GET' | 'POST' = 'GET') =>
    queryInflux(container, influxUrl(), INFLUX_DB, q, method);
  const pointCount = () => influxQuery('SELECT COUNT(value) FROM cpu');
  const standinState = async () => (await run(['systemctl', 'is-active', STANDIN], [0, 3])).stdout.trim();
  const backupUserProcesses = async () => (await run(['pgrep', '-a', '-u', 'backup'], [0, 1])).stdout.trim();

  before(async () => {
    const missing = await missingPrerequisite();
    if (missing !== undefined) throw new Error(`cannot run the restore-cancel e2e test: ${missing}`);
    const deb = await packageUnderTest(VERSION);
    [sshPort, influxRpc, influxHttp] = [await freePort(), await freePort(), await freePort()];
    container = await bootContainer({ label: 'restore-cancel' });
    console.log(`# container ${container.name} booted in ${(container.bootMs / 1000).toFixed(1)} s`);
    await container.copyIn(deb, `/root/${basename(deb)}`);

    // No service may start on the host's network with its default port: kept stopped during apt.
    await writeFile('/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n');
    await run(['chmod', '0755', '/usr/sbin/policy-rc.d']);
    await run(['apt-get', 'update', '-q']);
    await run(['apt-get', 'install', '-y', '-q', `/root/${basename(deb)}`, 'influxdb']);
    await run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'openssh-server', 'curl', 'procps']);
    await run(['rm', '/usr/sbin/policy-rc.d']);

    await writeInfluxUnits(container, { rpc: influxRpc, http: influxHttp }, `${STANDIN}.service`);
    await writeFile('/etc/ssh/sshd_config.d/e2e.conf', `Port ${sshPort}\nListenAddress 127.0.0.1\n`);
    await run(['systemctl', 'daemon-reload']);
    await run(['systemctl', 'enable', '--now', 'influxdb', STANDIN]);
    await run(['systemctl', 'restart', 'ssh']);
    const deadline = Date.now() + 120_000;
    while ((await run(['curl', '-sS', '-o', '/dev/null', `${influxUrl()}/ping`], [0, 7, 52, 56])).exitCode !== 0) {
      if (Date.now() > deadline) throw new Error('influxd did not answer /ping');
      await sleep(1000);
    }
    await influxQuery(`CREATE DATABASE ${INFLUX_DB}`, 'POST');
    const base = 1_764_000_000;
    await influxWrite(
      container,
      influxUrl(),
      INFLUX_DB,
      Array.from({ length: POINTS }, (_, i) => `cpu,host=h${i % 50} value=${i} ${base + i}`),
    );

    // The README's target steps: an ssh key for backup, authorised on the target account.
    await run(['useradd', '--create-home', '--shell', '/bin/sh', 'target']);
    await run(['usermod', '-p', '*', 'target']);
    await run(['install', '-d', '-m', '0750', '-o', 'root', '-g', 'backup', '/etc/backup-agent']);
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '/etc/backup-agent/id_ed25519']);
    await run(['chown', 'backup:backup', '/etc/backup-agent/id_ed25519', '/etc/backup-agent/id_ed25519.pub']);
    await authorizeOnTarget(container);
    const hostKey = (await run(['ssh-keyscan', '-p', String(sshPort), '127.0.0.1'])).stdout;
    await writeFile('/etc/backup-agent/known_hosts', hostKey);
    await writeFile('/etc/backup-agent/passphrase', 'a passphrase for the restore-cancel test\n');
    await run(['chown', 'root:backup', '/etc/backup-agent/passphrase']);
    await run(['chmod', '0640', '/etc/backup-agent/passphrase']);
    const ini = [
      '[agent]',
      `full_day = ${WEEKDAYS[(new Date().getUTCDay() + 3) % 7] ?? 'sun'}`,
      '[target]',
      `url = rsync://target@127.0.0.1:${sshPort}/backups`,
      '[mysql]',
      'enabled = false',
      '[influxdb]',
      `databases = ${INFLUX_DB}`,
      `host = 127.0.0.1:${influxRpc}`,
      `http_url = ${influxUrl()}`,
      `stop_services = ${STANDIN}`,
      '',
    ].join('\n');
    await writeFile('/etc/backup-agent.ini', ini);

    const backup = await run(['backup-agent', 'run'], [0, 1]);
    assert.equal(backup.exitCode, 0, `backup-agent run failed:\n${backup.stdout}\n${backup.stderr}`);
  });

  after(async () => {
    await container?.destroy();
  });

  test('the stopped stand-in for telegraf runs again, nothing is left, and the next restore brings the data back', async () => {
    const points = await pointCount();
    assert.equal(await standinState(), 'active');

    await writeFile(SLOW_INFLUXD, '#!/bin/sh\nif [ "$1" = restore ]; then sleep 600; fi\nexec /usr/bin/influxd "$@"\n');
    await run(['chmod', '0755', SLOW_INFLUXD]);
    const restore = container.start(['backup-agent', 'restore', 'influxdb', '--yes']);
    let stderr = '';
    restore.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    restore.stdout?.resume();
    const exited = once(restore, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const deadline = Date.now() + 10 * 60_000;
    while ((await run(['pgrep', '-f', `${SLOW_INFLUXD} restore -portable`], [0, 1])).exitCode !== 0) {
      if (Date.now() > deadline) throw new Error(`the restore never reached influxd:\n${stderr}`);
      await sleep(50);
    }
    assert.equal(await standinState(), 'inactive', 'the restore stopped the stand-in');
    await run(['pkill', '-TERM', '-u', 'root', '-f', 'backup-agent restore influxdb']);
    const [code] = await exited;

    assert.equal(code, 143, stderr);
    assert.match(stderr, /SIGTERM received/);
    assert.match(stderr, /telegraf-standin restarted/, 'the error names the service state');
    assert.match(
      stderr,
      /was dropped and is not \(fully\) restored; its previous state is in \/var\/lib\/backup-agent-restore\/safety\//,
    );
    assert.equal(await standinState(), 'active', 'the stand-in runs again');
    assert.equal(await backupUserProcesses(), '', 'no process of the backup user (ssh master, gpg-agent) is left');

    await run(['rm', SLOW_INFLUXD]);
    const again = await run(['backup-agent', 'restore', 'influxdb', '--yes'], [0, 1]);
    assert.equal(again.exitCode, 0, `the next restore failed:\n${again.stdout}\n${again.stderr}`);
    assert.equal(await pointCount(), points, 'the next restore brings every point back');
    assert.equal(await standinState(), 'active');
    assert.equal(await backupUserProcesses(), '');
  });
});
