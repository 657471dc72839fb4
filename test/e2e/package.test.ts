// The .deb on a freshly booted Debian 13 (systemd as PID 1): install, what the package leaves on the
// system, the unit's verification and exposure score, a sandbox probe, Debian's prometheus-node-exporter
// installed afterwards (the package's trigger gives the running daemon its textfile directory),
// remove and purge.
// The daemon's own steps (enable --now, a backup through the daemon, restore, reboot) are proven by
// daemon.test.ts.
//
// Needs root, debootstrap and systemd-nspawn (scripts/install-deps.sh); without them it fails, it
// does not skip. Builds the .deb from the working tree with scripts/build-deb.sh, or takes the one
// named by BACKUP_AGENT_DEB. First run on a machine: ~5 min for the build root, ~2 min for the boot
// root (both cached under /var/cache/backup-agent-build).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../harness/ports.js';
import { aptGet, bootContainer, type Container, missingPrerequisite, packageUnderTest } from './container.js';

const REPO = new URL('../../', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const MAX_EXPOSURE = 2.5;
const UNIT = 'backup-agent.service';
const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
const METRICS_FILE = `${TEXTFILE_DIR}/backup_agent.prom`;

describe('the .deb on a freshly booted Debian 13', () => {
  const started = Date.now();
  let container: Container;
  let deb: string;
  const inContainer = (argv: readonly [string, ...string[]], okExitCodes?: readonly number[]) =>
    container.run(argv, { okExitCodes: okExitCodes ?? [0], env: { DEBIAN_FRONTEND: 'noninteractive' } });
  const stat = async (path: string) => (await inContainer(['stat', '--format=%a %U %G', path])).stdout.trim();
  const exists = async (path: string) => (await inContainer(['test', '-e', path], [0, 1])).exitCode === 0;
  const mainPid = async () =>
    (await inContainer(['systemctl', 'show', '--value', '--property=MainPID', UNIT])).stdout.trim();
  const acl = async (path: string) =>
    (await inContainer(['getfacl', '--absolute-names', '--omit-header', path])).stdout;

  before(async () => {
    const missing = await missingPrerequisite();
    if (missing !== undefined) throw new Error(`cannot run the package test: ${missing}`);
    deb = await packageUnderTest(VERSION);
    const size = statSync(deb).size;
    console.log(
      `# package ${basename(deb)}: ${(size / 1024).toFixed(0)} KiB, built ${statSync(deb).mtime.toISOString()}`,
    );
    container = await bootContainer({ label: 'package' });
    console.log(
      `# container ${container.name} booted in ${(container.bootMs / 1000).toFixed(1)} s (${container.systemState})`,
    );
    await container.copyIn(deb, `/root/${basename(deb)}`);
  });

  after(async () => {
    await container?.destroy();
    console.log(`# e2e wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  test('apt-get install ./backup-agent_*.deb succeeds on the fresh system', async () => {
    const t0 = Date.now();
    await aptGet(container, ['update', '-q']);
    // As an operator would: recommends included (mariadb-client).
    await aptGet(container, ['install', '-y', '-q', `/root/${basename(deb)}`]);
    const installedSize = (
      await inContainer(['dpkg-query', '--show', '--showformat=${Installed-Size}', 'backup-agent'])
    ).stdout.trim();
    console.log(
      `# installed in ${((Date.now() - t0) / 1000).toFixed(0)} s with its dependencies; Installed-Size ${installedSize} KiB`,
    );
    const version = (
      await inContainer(['dpkg-query', '--show', '--showformat=${Version}', 'backup-agent'])
    ).stdout.trim();
    assert.equal(version, VERSION);
  });

  test('the service is installed but neither enabled nor started', async () => {
    assert.equal((await inContainer(['systemctl', 'is-enabled', UNIT], [1])).stdout.trim(), 'disabled');
    assert.equal((await inContainer(['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
    const fragment = (await inContainer(['systemctl', 'show', '--property=FragmentPath', UNIT])).stdout.trim();
    assert.equal(fragment, `FragmentPath=/usr/lib/systemd/system/${UNIT}`);
  });

  test('/etc/backup-agent.ini is a conffile, 0640 root:backup; state and cache dirs 0750 backup:backup', async () => {
    assert.equal(await stat('/etc/backup-agent.ini'), '640 root backup');
    const conffiles = (await inContainer(['dpkg-query', '--show', '--showformat=${Conffiles}', 'backup-agent'])).stdout;
    assert.match(conffiles, /^ \/etc\/backup-agent\.ini [0-9a-f]{32}$/m);
    const ini = (await inContainer(['cat', '/etc/backup-agent.ini'])).stdout;
    assert.match(ini, /^\[agent\]$/m);
    assert.match(ini, /^staging_dir = \/var\/lib\/backup-agent\/staging$/m);
    assert.equal(await stat('/var/lib/backup-agent'), '750 backup backup');
    assert.equal(await stat('/var/cache/backup-agent'), '750 backup backup');
  });

  test('backup-agent --help and --version work, as root and as backup; man page and docs are there', async () => {
    const help = await inContainer(['backup-agent', '--help']);
    assert.match(help.stdout, /Usage: backup-agent/);
    assert.match(help.stdout, /78 +the configuration is invalid/);
    assert.equal((await inContainer(['backup-agent', '--version'])).stdout.trim(), VERSION);
    assert.equal(
      (await inContainer(['runuser', '-u', 'backup', '--', 'backup-agent', '--version'])).stdout.trim(),
      VERSION,
    );
    assert.ok(await exists('/usr/share/man/man8/backup-agent.8.gz'));
    assert.ok(await exists('/usr/share/doc/backup-agent/copyright'));
    assert.ok(await exists('/usr/share/doc/backup-agent/changelog.gz'));
  });

  test('the sd-notify addon ships and loads on Debian 13 node from the bundle', async () => {
    const listed = (await inContainer(['dpkg', '-L', 'backup-agent'])).stdout;
    assert.match(listed, /\/notify\.node$/m);
    const script =
      "const n = require('node:module').createRequire('/usr/lib/backup-agent/main.mjs')('sd-notify'); console.log(typeof n.ready, n.watchdogInterval());";
    assert.equal((await inContainer(['node', '-e', script])).stdout.trim(), 'function 0');
  });

  test('systemd-analyze verify is clean', async () => {
    // verify runs `man` for each Documentation=man: link; a minbase system has no man-db, and then
    // every unit fails that check. A standard Debian install has it: so does this test.
    await aptGet(container, ['install', '-y', '-q', '--no-install-recommends', 'man-db']);
    const result = await inContainer(['systemd-analyze', 'verify', `/usr/lib/systemd/system/${UNIT}`], [0, 1]);
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '', 'systemd-analyze verify printed something');
    assert.equal(result.exitCode, 0);
  });

  test(`systemd-analyze security exposure is at most ${MAX_EXPOSURE}`, async () => {
    // Exit code is non-zero when the score is above the (default 100) threshold only.
    const result = await inContainer(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const match = /Overall exposure level for backup-agent\.service: (\d+\.\d+)/.exec(result.stdout);
    assert.ok(match?.[1], `no exposure line in:\n${result.stdout.slice(-500)}`);
    const score = Number(match[1]);
    console.log(`# systemd-analyze security ${UNIT} (systemd ${await systemdVersion()}): exposure ${score}`);
    assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}`);
  });

  test("the unit's sandbox lets the agent's children run (setpriv --pdeathsig, duplicity, gpg, ssh, rsync)", async () => {
    // The installed unit with its [Service] sandbox, but a oneshot that runs each child program the
    // agent uses, the way run-command.ts starts them. SystemCallErrorNumber= is dropped: a call the
    // filter denies kills the program with SIGSYS here, so the test names any such call's program
    // instead of the EPERM the real unit would turn it into.
    const unit = (await inContainer(['cat', `/usr/lib/systemd/system/${UNIT}`])).stdout;
    const probe = sandboxProbe(unit);
    await container.run(['tee', '/run/systemd/system/backup-agent-probe.service'], { input: probe });
    await inContainer(['systemctl', 'daemon-reload']);
    const started = await inContainer(['systemctl', 'start', 'backup-agent-probe.service'], [0, 1]);
    const journal = (await inContainer(['journalctl', '--no-pager', '-o', 'cat', '-u', 'backup-agent-probe.service']))
      .stdout;
    assert.equal(started.exitCode, 0, `probe failed:\n${journal}`);
    assert.match(journal, /duplicity \d/);
    assert.match(journal, /OpenSSH_/);
    assert.match(journal, /mariadb-dump from/);
    assert.match(journal, /sandbox-probe: writable/);
    assert.doesNotMatch(journal, /SIGSYS|status=31/);
  });

  test('prometheus-node-exporter installed while the daemon runs: the trigger grants its directory and restarts the daemon into it', async () => {
    // The least the daemon starts with. Its runs fail here (no databases), which does not matter:
    // it writes the metrics file when it starts.
    await inContainer([
      'sed',
      '-i',
      '-e',
      's|^url = .*|url = rsync://nobody@127.0.0.1:1/backups|',
      '-e',
      `s|^textfile =.*|textfile = ${METRICS_FILE}|`,
      '/etc/backup-agent.ini',
    ]);
    await inContainer(['systemctl', 'start', UNIT]);
    const before = await mainPid();
    // node_exporter starts at once on install: on a free loopback port, as the host network is shared.
    const port = await freePort();
    await container.run(['tee', '/etc/default/prometheus-node-exporter'], {
      input: `ARGS="--web.listen-address=127.0.0.1:${port}"\n`,
    });
    const install = await aptGet(container, [
      'install',
      '-y',
      '-q',
      '--no-install-recommends',
      '-o',
      'Dpkg::Options::=--force-confold',
      'prometheus-node-exporter',
      'curl',
    ]);
    assert.match(install.stdout, /Processing triggers for backup-agent/);
    assert.match(
      install.stdout,
      /backup-agent: restarting the service so that it can write \/var\/lib\/prometheus\/node-exporter/,
    );
    const after = await mainPid();
    assert.notEqual(after, before, 'the daemon was not restarted');
    assert.equal((await inContainer(['systemctl', 'is-active', UNIT])).stdout.trim(), 'active');

    // Owner and mode as its package made them, plus the backup user's entry (the mask shows as group).
    assert.equal(await stat(TEXTFILE_DIR), '775 root root');
    const entries = await acl(TEXTFILE_DIR);
    assert.match(entries, /^user:backup:rwx$/m);
    assert.match(entries, /^group::r-x$/m);
    assert.match(entries, /^other::r-x$/m);

    let metrics = '';
    for (let attempt = 0; attempt < 30 && !/backup_agent\.prom/.test(metrics); attempt++) {
      await sleep(1000);
      metrics = (await inContainer(['curl', '-sS', `http://127.0.0.1:${port}/metrics`], [0, 7])).stdout;
    }
    assert.equal(await stat(METRICS_FILE), '644 backup backup');
    assert.match(metrics, /^node_textfile_mtime_seconds\{file="[^"]*backup_agent\.prom"\} \S+$/m);
    // Read and parsed; its series come with the first run (daemon.test.ts).
    assert.match(metrics, /^node_textfile_scrape_error 0$/m);
    // A later node_exporter upgrade finds the daemon's sandbox complete: no second restart.
    await aptGet(container, [
      'install',
      '-y',
      '-q',
      '--reinstall',
      '-o',
      'Dpkg::Options::=--force-confold',
      'prometheus-node-exporter',
    ]);
    assert.equal(await mainPid(), after, 'restarted although its sandbox already had the directory');
    await inContainer(['systemctl', 'stop', UNIT]);
  });

  test('an upgrade (reinstall) keeps the enablement and does not start a stopped service', async () => {
    // postinst try-restarts on upgrade: a running service is restarted, a stopped one stays stopped.
    await inContainer(['systemctl', 'enable', UNIT]);
    await aptGet(container, ['install', '-y', '-q', '--reinstall', `/root/${basename(deb)}`]);
    assert.equal((await inContainer(['systemctl', 'is-enabled', UNIT])).stdout.trim(), 'enabled');
    assert.equal((await inContainer(['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
    await inContainer(['systemctl', 'disable', UNIT]);
  });

  test('apt-get remove keeps data and the conffile; purge removes state and cache but keeps staging dumps', async () => {
    // What a running agent would have left behind.
    for (const dir of ['/var/lib/backup-agent/staging/mysql', '/var/cache/backup-agent/duplicity']) {
      await inContainer(['runuser', '-u', 'backup', '--', 'mkdir', '-p', dir]);
    }
    for (const file of [
      '/var/lib/backup-agent/state.json',
      '/var/lib/backup-agent/staging/mysql/agama.sql',
      '/var/cache/backup-agent/duplicity/x',
    ]) {
      await inContainer(['runuser', '-u', 'backup', '--', 'touch', file]);
    }

    await aptGet(container, ['remove', '-y', '-q', 'backup-agent']);
    assert.equal(await exists('/usr/bin/backup-agent'), false);
    assert.doesNotMatch(await acl(TEXTFILE_DIR), /backup/, "remove takes back the backup user's ACL entry");
    assert.equal(await stat(TEXTFILE_DIR), '755 root root');
    assert.equal(await exists(`/usr/lib/systemd/system/${UNIT}`), false);
    assert.equal(await exists('/etc/backup-agent.ini'), true, 'remove keeps the conffile');
    assert.equal(await exists('/var/lib/backup-agent/state.json'), true, 'remove keeps state');
    assert.equal(await exists('/var/cache/backup-agent/duplicity/x'), true, 'remove keeps the cache');

    await aptGet(container, ['purge', '-y', '-q', 'backup-agent']);
    assert.equal(await exists('/etc/backup-agent.ini'), false, 'purge removes the conffile');
    assert.equal(await exists('/var/lib/backup-agent/state.json'), false, 'purge removes state.json');
    assert.equal(await exists('/var/cache/backup-agent'), false, 'purge removes the cache');
    assert.equal(await exists('/var/lib/backup-agent/staging/mysql/agama.sql'), true, 'purge keeps the staging dumps');
    // After a purge dpkg forgets the package: "no packages found" (exit 1), or status not-installed.
    const status = await inContainer(
      ['dpkg-query', '--show', '--showformat=${db:Status-Abbrev}', 'backup-agent'],
      [0, 1],
    );
    assert.ok(status.exitCode === 1 || /^[up]n/.test(status.stdout), `still known to dpkg: ${status.stdout}`);
  });

  async function systemdVersion(): Promise<string> {
    return /systemd (\d+)/.exec((await inContainer(['systemctl', '--version'])).stdout)?.[1] ?? '?';
  }
});

/** The unit turned into a oneshot that starts the agent's child programs inside its sandbox. */
function sandboxProbe(unit: string): string {
  const service = unit.split(/^\[Service\]$/m)[1]?.split(/^\[Install\]$/m)[0];
  assert.ok(service, 'the unit has no [Service] section');
  const dropped =
    /^(Type|NotifyAccess|ExecStart|ExecReload|WatchdogSec|Restart|RestartSec|RestartPreventExitStatus|TimeoutStopSec|KillMode|SystemCallErrorNumber)=/;
  const kept = service.split('\n').filter((line) => !dropped.test(line));
  const wrap = ['/usr/bin/setpriv', '--pdeathsig', 'TERM', '--'];
  const commands = [
    ['/usr/bin/backup-agent', '--version'],
    [...wrap, '/usr/bin/duplicity', '--version'],
    // gpg creates no --homedir itself; the agent makes its gnupg_home the same way.
    [...wrap, '/usr/bin/mkdir', '--mode=0700', '/var/lib/backup-agent/gnupg-probe'],
    [...wrap, '/usr/bin/gpg', '--homedir', '/var/lib/backup-agent/gnupg-probe', '--batch', '--list-keys'],
    [...wrap, '/usr/bin/ssh', '-V'],
    [...wrap, '/usr/bin/rsync', '--version'],
    // mariadb-client comes with the package's Recommends.
    [...wrap, '/usr/bin/mariadb-dump', '--version'],
    [...wrap, '/usr/bin/touch', '/var/lib/backup-agent/probe', '/var/cache/backup-agent/probe'],
    ['/usr/bin/echo', 'sandbox-probe: writable'],
    [
      ...wrap,
      '/usr/bin/rm',
      '-r',
      '/var/lib/backup-agent/probe',
      '/var/cache/backup-agent/probe',
      '/var/lib/backup-agent/gnupg-probe',
    ],
  ];
  return [
    '[Unit]',
    'Description=backup-agent sandbox probe (e2e test)',
    '[Service]',
    'Type=oneshot',
    ...commands.map((argv) => `ExecStart=${argv.join(' ')}`),
    ...kept,
    '',
  ].join('\n');
}
