// A fleet rolled out with deploy/ansible, as an operations team runs it: one backup server and three
// database hosts, each a booted Debian 13 (systemd as PID 1) with its own MariaDB and InfluxDB and its
// own data; ansible-playbook on this machine reaches them over ssh with an inventory this test writes
// (host keys pinned in the controller's known_hosts, no trust on first use). Proven: a host without a
// passphrase source and a server on a wrong port stop the play with the variable, server and port
// named; the first play succeeds and the second changes nothing; every daemon (Type=notify) is active
// and its first backup lands as a full in its own directory on the server; one host's key can neither
// list, read nor write another's directory, with rsync or ssh; a lost host is rebuilt and restored by
// executing backup_restore.md section 7a, and its data equals what it was; state absent removes the
// agent and withdraws its access while its backups stay.
//
// The machines share the host's network (container.ts), so each listens on its own free loopback port:
// sshd, InfluxDB; MariaDB has no TCP at all. Their packages come from one layer made once
// (container.ts ensureLayer): the database servers, python3 and sudo for Ansible, and the dependencies
// of the package under test, so that the play's own apt runs install the agent without downloading.
//
// Needs root, debootstrap, systemd-nspawn and ansible-playbook; without them it fails, it does not skip.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { freePort } from '../harness/ports.js';
import { startAptRepository } from './apt-repository.js';
import { declaredVariables, runbookBlocks, usedVariables } from '../harness/runbook-blocks.js';
import {
  bootContainer,
  type Container,
  ensureLayer,
  influxQuery,
  influxWrite,
  missingPrerequisite,
  packageUnderTest,
  writeInfluxUnits,
} from './container.js';

const REPO = new URL('../../', import.meta.url).pathname;
const PLAYBOOK_DIR = join(REPO, 'deploy', 'ansible');
const VERSION = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const AGENTS = ['db1', 'db2', 'db3'] as const;
type Agent = (typeof AGENTS)[number];
const SERVER = 'backup1';
const BASE_DIR = '/srv/backup-agent';
const UNIT = 'backup-agent.service';
const STANDIN = 'telegraf-standin.service';
const MYSQL_DB = 'agama';
const INFLUX_DB = 'telegraf';
const STATE_FILE = '/var/lib/backup-agent/state.json';
const SSH_KEY = '/etc/backup-agent/id_ed25519';
const KNOWN_HOSTS = '/etc/backup-agent/known_hosts';
const PLAY_TIMEOUT_MS = 20 * 60_000;

interface Machine {
  container: Container;
  readonly sshPort: number;
}
interface AgentMachine extends Machine {
  readonly influx: { readonly rpc: number; readonly http: number };
}
/** What the tests read of the agent's state file. */
interface AgentState {
  readonly sources: Record<
    string,
    { readonly lastSuccess: { readonly kind: string; readonly startedAt: string } | null }
  >;
}
interface Play {
  readonly exitCode: number;
  readonly output: string;
  readonly ms: number;
  /** PLAY RECAP per host: ok, changed, unreachable, failed, … */
  readonly recap: ReadonlyMap<string, Readonly<Record<string, number>>>;
}

describe('a fleet rolled out with Ansible', () => {
  const started = Date.now();
  const timings: string[] = [];
  let dir: string;
  let deb: string;
  let layer: string;
  let server: Machine;
  const agents = new Map<Agent, AgentMachine>();
  let serverKey = '';

  const agent = (name: Agent): AgentMachine => {
    const found = agents.get(name);
    assert.ok(found, `no machine for ${name}`);
    return found;
  };
  const run = (
    machine: Machine,
    argv: readonly [string, ...string[]],
    okExitCodes: readonly number[] = [0],
    input?: string,
  ) => machine.container.run(argv, { okExitCodes, timeoutMs: 10 * 60_000, ...(input === undefined ? {} : { input }) });
  /** argv as the backup user, as the agent's own ssh and rsync run. */
  const asBackup = (machine: Machine, argv: readonly string[]) =>
    run(
      machine,
      ['setpriv', '--reuid=backup', '--regid=backup', '--init-groups', '--', ...argv],
      [0, 1, 2, 5, 10, 12, 23, 255],
    );
  const mysql = async (machine: Machine, sql: string) =>
    (await run(machine, ['mariadb', '--batch', '--skip-column-names', '-e', sql])).stdout;
  const influxUrl = (machine: AgentMachine) => `http://127.0.0.1:${machine.influx.http}`;

  /** What a user compares before and after a restore: checksums, counts and sums of every table and series. */
  async function fingerprint(machine: AgentMachine): Promise<string> {
    const checksum = await mysql(machine, `CHECKSUM TABLE ${MYSQL_DB}.metrics, ${MYSQL_DB}.events EXTENDED`);
    const counts = await mysql(
      machine,
      `SELECT COUNT(*), SUM(v), MIN(name) FROM ${MYSQL_DB}.metrics; SELECT COUNT(*), MAX(what) FROM ${MYSQL_DB}.events`,
    );
    const points = await influxQuery(
      machine.container,
      influxUrl(machine),
      INFLUX_DB,
      'SELECT COUNT(value), SUM(value) FROM cpu, mem',
    );
    return JSON.stringify({ checksum: checksum.trim(), counts: counts.trim(), points: JSON.parse(points) as unknown });
  }

  /** Boots a machine from the layer with sshd on its own port, reachable as root with the controller's key. */
  async function bootMachine(label: string, sshPort: number): Promise<Machine> {
    const container = await bootContainer({ label: `fleet-${label}`, layer, sharedAptArchives: false });
    const machine = { container, sshPort };
    await run(
      machine,
      ['tee', '/etc/ssh/sshd_config.d/e2e.conf'],
      [0],
      `Port ${sshPort}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n`,
    );
    await run(machine, ['ssh-keygen', '-A']);
    await run(machine, ['install', '-d', '-m', '0700', '/root/.ssh']);
    await run(
      machine,
      ['tee', '/root/.ssh/authorized_keys'],
      [0],
      await readFile(join(dir, 'controller_key.pub'), 'utf8'),
    );
    await run(machine, ['systemctl', 'enable', '--now', 'ssh']);
    await pinForController(label, machine);
    return machine;
  }

  /**
   * The controller's known_hosts, one line per machine read from the machine itself, as an operator
   * checks a fingerprint; a rebuilt machine's line replaces the lost one's.
   */
  const controllerKnownHosts = new Map<number, string>();
  async function pinForController(label: string, machine: Machine): Promise<void> {
    const key = (await run(machine, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).stdout
      .split(' ')
      .slice(0, 2)
      .join(' ');
    if (label === SERVER) serverKey = key;
    controllerKnownHosts.set(machine.sshPort, `[127.0.0.1]:${machine.sshPort} ${key}`);
    await writeFile(join(dir, 'known_hosts'), [...controllerKnownHosts.values(), ''].join('\n'));
  }

  /** A database host as its own provisioning leaves it: MariaDB, InfluxDB and telegraf's stand-in running, empty. */
  async function bootAgent(name: Agent, sshPort: number, influx: AgentMachine['influx']): Promise<AgentMachine> {
    const machine: AgentMachine = { ...(await bootMachine(name, sshPort)), influx };
    await writeInfluxUnits(machine.container, influx, STANDIN);
    await run(machine, ['systemctl', 'daemon-reload']);
    await run(machine, ['systemctl', 'enable', '--now', 'mariadb', 'influxdb', STANDIN]);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ping = await run(
        machine,
        ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `${influxUrl(machine)}/ping`],
        [0, 7, 52, 56],
      );
      if (ping.stdout.trim() === '204') break;
      assert.ok(Date.now() < deadline, `influxd on ${name} did not answer /ping`);
      await sleep(500);
    }
    return machine;
  }

  /** Distinct data per host: the host's number is in every value. */
  async function seed(name: Agent, machine: AgentMachine): Promise<void> {
    const n = AGENTS.indexOf(name) + 1;
    await mysql(
      machine,
      `CREATE DATABASE ${MYSQL_DB}; USE ${MYSQL_DB};` +
        'CREATE TABLE metrics (id INT PRIMARY KEY, name VARCHAR(64), v BIGINT) ENGINE=InnoDB;' +
        `INSERT INTO metrics SELECT seq, MD5(CONCAT('${name}', seq)), seq * ${n} FROM seq_1_to_${5000 * n};` +
        'CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, what TEXT) ENGINE=InnoDB;' +
        `INSERT INTO events (what) SELECT CONCAT('${name} event ', seq) FROM seq_1_to_${300 * n};`,
    );
    await influxQuery(machine.container, influxUrl(machine), INFLUX_DB, `CREATE DATABASE ${INFLUX_DB}`, 'POST');
    const base = 1_764_000_000;
    await influxWrite(
      machine.container,
      influxUrl(machine),
      INFLUX_DB,
      Array.from(
        { length: 1000 * n },
        (_, i) => `${i % 2 === 0 ? 'cpu' : 'mem'},host=${name} value=${i * n} ${base + i}`,
      ),
    );
  }

  /** The inventory an operator keeps: hosts, their ports, the package, the passphrases' directory. */
  async function writeInventory(
    path: string,
    agentVars: Partial<Record<Agent, Record<string, unknown>>> = {},
  ): Promise<string> {
    const hosts = Object.fromEntries(
      [...agents.entries()].map(([name, machine]) => [
        name,
        {
          ansible_port: machine.sshPort,
          backup_agent_config: {
            // keep_full 2 (the least the agent takes): the retention test's third full removes the first chain through rrsync.
            agent: { full_day: 'sun', keep_full: 2 },
            mysql: { databases: [MYSQL_DB] },
            influxdb: {
              databases: [INFLUX_DB],
              host: `127.0.0.1:${machine.influx.rpc}`,
              http_url: influxUrl(machine),
              stop_services: [STANDIN.replace(/\.service$/, '')],
            },
          },
          ...agentVars[name],
        },
      ]),
    );
    const inventory = {
      all: {
        vars: {
          ansible_host: '127.0.0.1',
          ansible_user: 'root',
          ansible_python_interpreter: '/usr/bin/python3',
          ansible_ssh_private_key_file: join(dir, 'controller_key'),
          ansible_ssh_common_args: `-o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes`,
        },
        children: {
          backup_servers: { hosts: { [SERVER]: { ansible_port: server.sshPort } } },
          backup_agents: {
            vars: {
              backup_agent_deb: deb,
              backup_agent_passphrase_dir: join(dir, 'passphrases'),
              backup_agent_server_address: '127.0.0.1',
              backup_agent_server_port: server.sshPort,
            },
            hosts,
          },
        },
      },
    };
    // JSON is YAML.
    await writeFile(path, JSON.stringify(inventory, null, 2));
    return path;
  }

  /** The controller's environment: plain output, no ssh connection left behind, temporary files in the test's directory. */
  function controllerEnv(): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: dir,
      LANG: 'C.UTF-8',
      // The roles' filter plugin would leave a __pycache__ in the source tree.
      PYTHONDONTWRITEBYTECODE: '1',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_PIPELINING: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
      // ControlPersist would keep an ssh master running after the play.
      ANSIBLE_SSH_ARGS: '-o ControlMaster=no',
    };
  }

  function recapOf(output: string): Map<string, Record<string, number>> {
    const recap = new Map<string, Record<string, number>>();
    const section = output.split(/^PLAY RECAP \*+$/m)[1] ?? '';
    for (const match of section.matchAll(/^(\S+)\s+:\s+(.+)$/gm)) {
      const counts = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1] ?? '', Number(m[2])]),
      );
      recap.set(match[1] ?? '', counts);
    }
    return recap;
  }

  async function playbook(args: readonly string[], what: string): Promise<Play> {
    const t0 = Date.now();
    const result = await execa('ansible-playbook', [join(PLAYBOOK_DIR, 'site.yml'), ...args], {
      cwd: dir,
      env: controllerEnv(),
      extendEnv: false,
      reject: false,
      all: true,
      timeout: PLAY_TIMEOUT_MS,
    });
    const ms = Date.now() - t0;
    timings.push(`${what} ${(ms / 1000).toFixed(0)} s`);
    return { exitCode: result.exitCode ?? -1, output: result.all, ms, recap: recapOf(result.all) };
  }

  /** A runbook block on the controller, in bash exactly as written, with the fleet settings in its environment. */
  async function runbookOnController(block: string, settings: Record<string, string>): Promise<Play> {
    const t0 = Date.now();
    const result = await execa('bash', ['-euo', 'pipefail', '-c', block], {
      cwd: dir,
      env: { ...controllerEnv(), ...settings },
      extendEnv: false,
      reject: false,
      all: true,
      timeout: PLAY_TIMEOUT_MS,
    });
    return { exitCode: result.exitCode ?? -1, output: result.all, ms: Date.now() - t0, recap: recapOf(result.all) };
  }

  async function readState(machine: Machine): Promise<AgentState | null> {
    const result = await run(machine, ['cat', STATE_FILE], [0, 1]);
    return result.exitCode === 0 && result.stdout.trim() !== '' ? (JSON.parse(result.stdout) as AgentState) : null;
  }

  /** Waits until both sources of the host have a success that started after `since`, and returns their kinds. */
  async function waitForBackup(name: Agent, since: Date): Promise<Record<string, string>> {
    const machine = agent(name);
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      const state = await readState(machine);
      const kinds = Object.fromEntries(
        ['mysql', 'influxdb'].map((source) => {
          const success = state?.sources[source]?.lastSuccess ?? null;
          return [source, success !== null && new Date(success.startedAt) > since ? success.kind : ''];
        }),
      );
      if (Object.values(kinds).every((kind) => kind !== '')) return kinds;
      if (Date.now() > deadline) {
        const journal = await run(machine, ['journalctl', '--no-pager', '-o', 'cat', '-u', UNIT], [0, 1]);
        assert.fail(`${name}: no backup of both sources after ${since.toISOString()}\n${journal.stdout.slice(-4000)}`);
      }
      await sleep(2000);
    }
  }

  /** Files below a host's directory on the server: "owner mode path", sorted. */
  async function serverFiles(name: Agent): Promise<string[]> {
    const listing = await run(server, ['find', `${BASE_DIR}/${name}`, '-printf', '%u %m %P %s\\n']);
    return listing.stdout
      .split('\n')
      .filter((line) => line !== '')
      .sort();
  }

  before(async () => {
    const missing = await missingPrerequisite();
    if (missing !== undefined) throw new Error(`cannot run the fleet e2e test: ${missing}`);
    const ansible = await execa('ansible-playbook', ['--version'], { reject: false });
    assert.equal(ansible.exitCode, 0, 'ansible-playbook is missing: scripts/install-deps.sh installs ansible-core');
    timings.push(`controller: ${ansible.stdout.split('\n')[0] ?? ''}`);
    // Not below /tmp: the controller machine (Debian 13) mounts a tmpfs there, which would hide the
    // copies of these files at the same paths.
    dir = await mkdtemp('/var/tmp/fleet-e2e-');
    deb = await packageUnderTest(VERSION);
    await execa('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'fleet-e2e controller',
      '-f',
      join(dir, 'controller_key'),
    ]);
    const t0 = Date.now();
    const depends = (await execa('dpkg-deb', ['--field', deb, 'Depends'])).stdout.trim();
    layer = await ensureLayer({
      name: 'fleet-host',
      packages: ['python3', 'python3-apt', 'sudo', 'openssh-server', 'mariadb-server', 'influxdb', 'curl', 'procps'],
      satisfy: depends,
      disable: ['ssh.service', 'mariadb.service', 'influxdb.service'],
      // The agent and root reach MariaDB through its socket; port 3306 stays free.
      files: { '/etc/mysql/mariadb.conf.d/99-e2e.cnf': '[mysqld]\nskip-networking\n' },
    });
    timings.push(`layer ready ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const t1 = Date.now();
    const ports = async () => ({ ssh: await freePort(), rpc: await freePort(), http: await freePort() });
    const serverPort = await freePort();
    const planned = await Promise.all(AGENTS.map(async (name) => [name, await ports()] as const));
    const [serverMachine, ...agentMachines] = await Promise.all([
      bootMachine(SERVER, serverPort),
      ...planned.map(([name, port]) => bootAgent(name, port.ssh, { rpc: port.rpc, http: port.http })),
    ]);
    server = serverMachine;
    planned.forEach(([name], index) => {
      const machine = agentMachines[index];
      assert.ok(machine);
      agents.set(name, machine);
    });
    await Promise.all(AGENTS.map((name) => seed(name, agent(name))));
    timings.push(`4 machines booted and seeded ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    console.log(`# package ${basename(deb)}; work directory ${dir}`);
  });

  after(async () => {
    await Promise.allSettled([
      server?.container.destroy(),
      ...[...agents.values()].map((machine) => machine.container.destroy()),
    ]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    console.log(`# ${timings.join('; ')}; e2e wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  test('a host without a passphrase source stops the play, naming the variables, before anything changes', async () => {
    const inventory = await writeInventory(join(dir, 'no-passphrase.yml'), {
      db1: { backup_agent_passphrase_dir: '' },
    });
    const play = await playbook(['-i', inventory, '--limit', 'db1'], 'play without a passphrase (db1)');
    assert.equal(play.exitCode, 2, play.output);
    assert.match(play.output, /no passphrase for db1: set backup_agent_passphrase_dir .* or backup_agent_passphrase/s);
    assert.equal(play.recap.get('db1')?.['changed'], 0, play.output);
    const installed = await run(agent('db1'), ['dpkg-query', '--show', 'backup-agent'], [0, 1]);
    assert.equal(installed.exitCode, 1, 'the package was installed although the play stopped');
  });

  test("a wrong server port fails the host's check, naming the server and the port; nothing is started", async () => {
    const closed = await freePort();
    const inventory = await writeInventory(join(dir, 'wrong-port.yml'), { db1: { backup_agent_server_port: closed } });
    const play = await playbook(['-i', inventory, '--limit', `db1,${SERVER}`], 'play with a wrong server port (db1)');
    assert.equal(play.exitCode, 2, play.output);
    assert.match(play.output, /backup-agent check failed/);
    assert.ok(
      play.output.includes(
        `[FAIL] target mysql: writing to rsync://bk-db1@127.0.0.1:${closed}/backups/mysql failed: the target is unreachable: ssh: connect to host 127.0.0.1 port ${closed}: Connection refused`,
      ),
      play.output,
    );
    assert.equal((await run(agent('db1'), ['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
    assert.equal((await run(agent('db1'), ['systemctl', 'is-enabled', UNIT], [1])).stdout.trim(), 'disabled');
    console.log(`# wrong port: ${/\[FAIL\] target mysql[^"]*"(?:, "[^"]*fix:[^"]*)?/.exec(play.output)?.[0] ?? ''}`);
  });

  test('the first play succeeds on every host and the second changes nothing', async () => {
    const inventory = await writeInventory(join(dir, 'hosts.yml'));
    const first = await playbook(['-i', inventory], 'first play (server + 3 hosts)');
    assert.equal(first.exitCode, 0, first.output);
    for (const host of [SERVER, ...AGENTS]) {
      assert.equal(first.recap.get(host)?.['failed'], 0, `${host}: ${first.output.slice(-3000)}`);
    }
    const second = await playbook(['-i', inventory], 'second play');
    assert.equal(second.exitCode, 0, second.output);
    for (const host of [SERVER, ...AGENTS]) {
      const counts = second.recap.get(host);
      assert.ok(counts, `no recap line for ${host}`);
      assert.equal(counts['changed'], 0, `${host} changed on the second run:\n${second.output}`);
      assert.equal(counts['failed'], 0);
    }
    console.log(`# second play recap:\n${second.output.split(/^PLAY RECAP \*+$/m)[1]?.trim() ?? ''}`);
  });

  test("Debian 13's ansible-core, as the controller, plays the same fleet and changes nothing", async () => {
    const controllerLayer = await ensureLayer({
      name: 'fleet-controller',
      packages: ['ansible-core', 'openssh-client'],
      disable: [],
    });
    const controller = await bootContainer({
      label: 'fleet-controller',
      layer: controllerLayer,
      sharedAptArchives: false,
    });
    try {
      // The same files at the same paths: the inventory names them (key, known_hosts, passphrases, package).
      for (const path of [dir, PLAYBOOK_DIR, deb]) {
        await mkdir(dirname(join(controller.rootDir, path)), { recursive: true });
        await cp(path, join(controller.rootDir, path), { recursive: true });
      }
      const version = (await controller.run(['ansible-playbook', '--version'])).stdout.split('\n')[0] ?? '';
      const t0 = Date.now();
      const played = await controller.run(
        ['ansible-playbook', join(PLAYBOOK_DIR, 'site.yml'), '-i', join(dir, 'hosts.yml')],
        {
          okExitCodes: [0, 1, 2, 4, 8],
          env: { ...controllerEnv(), PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
          timeoutMs: PLAY_TIMEOUT_MS,
        },
      );
      timings.push(`play from Debian 13's ${version} ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      const output = played.stdout + played.stderr;
      assert.equal(played.exitCode, 0, output);
      const warnings = output.split('\n').filter((line) => /^\[(DEPRECATION )?WARNING\]/.test(line));
      console.log(`# ${version}: ${warnings.length} warning(s)${warnings.map((line) => `\n#   ${line}`).join('')}`);
      const recap = recapOf(output);
      for (const host of [SERVER, ...AGENTS]) {
        assert.equal(recap.get(host)?.['changed'], 0, `${host} changed under ${version}:\n${output}`);
      }
    } finally {
      await controller.destroy();
    }
  });

  test("every daemon is active (Type=notify) and its first backup lands as a full in the host's own directory", async () => {
    for (const name of AGENTS) {
      const machine = agent(name);
      const shown = await run(machine, ['systemctl', 'show', '--property=Type,ActiveState,UnitFileState,User', UNIT]);
      assert.deepEqual(shown.stdout.trim().split('\n').sort(), [
        'ActiveState=active',
        'Type=notify',
        'UnitFileState=enabled',
        'User=backup',
      ]);
      // The server's own host key, pinned by the play: no ssh-keyscan on first contact.
      assert.equal((await run(machine, ['cat', KNOWN_HOSTS])).stdout, `[127.0.0.1]:${server.sshPort} ${serverKey}\n`);
      assert.deepEqual(await waitForBackup(name, new Date(0)), { mysql: 'full', influxdb: 'full' });
    }
    for (const name of AGENTS) {
      const files = await serverFiles(name);
      const account = `bk-${name}`;
      for (const source of ['mysql', 'influxdb']) {
        assert.ok(
          files.some((line) =>
            new RegExp(`^${account} [0-7]+ backups/${source}/duplicity-full\\.[0-9TZ]+\\.manifest\\.gpg `).test(line),
          ),
          `${name}: no full of ${source} on the server:\n${files.join('\n')}`,
        );
      }
      // Everything the host wrote is its account's, and only below backups/.
      for (const line of files.filter((entry) => entry.split(' ')[2]?.startsWith('backups/'))) {
        assert.ok(line.startsWith(`${account} `), line);
      }
      assert.ok(
        files.some((line) => line.startsWith('root 644 .ssh/authorized_keys ')),
        files.join('\n'),
      );
    }
  });

  test("a host's key cannot list, read or write another host's directory, with rsync or ssh", async () => {
    const db1 = agent('db1');
    const before = await serverFiles('db2');
    const ssh = `ssh -i ${SSH_KEY} -o UserKnownHostsFile=${KNOWN_HOSTS} -o StrictHostKeyChecking=yes -o BatchMode=yes -p ${server.sshPort}`;
    const refused: string[] = [];
    const attempt = async (what: string, argv: readonly string[], refusal: RegExp) => {
      const result = await asBackup(db1, argv);
      const said = `${result.stdout}${result.stderr}`;
      assert.notEqual(result.exitCode, 0, `${what} succeeded:\n${said}`);
      assert.match(said, refusal, what);
      assert.doesNotMatch(result.stdout, /duplicity-/, `${what} listed db2's backups`);
      const reason = said.split('\n').find((line) => refusal.test(line)) ?? '';
      refused.push(`${what}: exit ${result.exitCode}, "${reason.trim()}"`);
    };
    const deny = /Permission denied \(publickey\)/;
    await attempt('rsync list as bk-db2', ['rsync', '--list-only', '-e', ssh, 'bk-db2@127.0.0.1:backups/'], deny);
    await attempt(
      'rsync read as bk-db2',
      ['rsync', '-r', '-e', ssh, 'bk-db2@127.0.0.1:backups/', '/tmp/stolen/'],
      deny,
    );
    await attempt('ssh shell as bk-db2', [...ssh.split(' '), 'bk-db2@127.0.0.1', 'ls', 'backups'], deny);
    // Its own account, pointed at db2's directory: rrsync keeps it in its own.
    await attempt(
      'rsync list ../db2 as bk-db1',
      ['rsync', '--list-only', '-e', ssh, 'bk-db1@127.0.0.1:../db2/backups/'],
      /\.\.|denied|refus|No such/i,
    );
    await attempt(
      'rsync list by absolute path as bk-db1',
      ['rsync', '--list-only', '-r', '-e', ssh, `bk-db1@127.0.0.1:${BASE_DIR}/db2/backups/`],
      /No such file|change_dir|denied/i,
    );
    await attempt(
      'rsync write ../db2 as bk-db1',
      ['rsync', '-e', ssh, '/etc/hostname', 'bk-db1@127.0.0.1:../db2/backups/planted'],
      /\.\.|denied|refus/i,
    );
    await attempt(
      'rsync write its own authorized_keys as bk-db1',
      ['rsync', '-e', ssh, `${SSH_KEY}.pub`, 'bk-db1@127.0.0.1:.ssh/authorized_keys'],
      /Permission denied|failed/i,
    );
    await attempt(
      'ssh command as bk-db1',
      [...ssh.split(' '), 'bk-db1@127.0.0.1', 'cat', `${BASE_DIR}/db2/.ssh/authorized_keys`],
      /rrsync|rsync|not allowed|SSH_ORIGINAL_COMMAND/i,
    );
    assert.deepEqual(await serverFiles('db2'), before, "db2's directory changed");
    console.log(`# isolation attempts from db1, each refused:\n#   ${refused.join('\n#   ')}`);
  });

  test("retention removes the host's oldest chain through rrsync; fulls run as root from /root", async () => {
    const fulls = async () =>
      (await serverFiles('db1'))
        .map((line) => /backups\/mysql\/(duplicity-full\.[0-9TZ]+)\.manifest\.gpg /.exec(line)?.[1])
        .filter((name) => name !== undefined);
    const [first, ...others] = await fulls();
    assert.ok(first !== undefined && others.length === 0, (await fulls()).join('\n'));
    for (let round = 0; round < 2; round++) {
      const ran = await run(agent('db1'), ['bash', '-c', 'cd /root && backup-agent run --full --source mysql'], [0, 1]);
      assert.equal(ran.exitCode, 0, `${ran.stdout}\n${ran.stderr}`);
    }
    const after = await fulls();
    assert.equal(after.length, 2, after.join('\n'));
    assert.ok(!after.includes(first), `the oldest full ${first} is still on the server`);
  });

  test('a lost host is rebuilt and restored by backup_restore.md section 7a; its data comes back', async () => {
    const blocks = await runbookBlocks();
    const block = (name: string) => {
      const found = blocks.get(name);
      assert.ok(found !== undefined, `backup_restore.md has no block marked runbook:${name}`);
      return found;
    };
    const inventory = await writeInventory(join(dir, 'hosts.yml'));
    const settings = { PLAYBOOK_DIR, INVENTORY: inventory, LOST_HOST: 'db3' };
    assert.deepEqual(declaredVariables(block('fleet-settings')).sort(), Object.keys(settings).sort());
    for (const name of ['fleet-rebuild', 'fleet-resume']) {
      for (const used of usedVariables(block(name)))
        assert.ok(used in settings, `runbook:${name} uses $${used}, which fleet-settings does not set`);
    }
    assert.deepEqual(
      usedVariables(block('fleet-restore')),
      [],
      'runbook:fleet-restore runs on the host, without settings',
    );

    const lost = agent('db3');
    const original = await fingerprint(lost);
    const drill: string[] = [];
    const step = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      const value = await body();
      drill.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return value;
    };

    // 1. The disk is gone; a new machine, same inventory name and address, databases installed and empty.
    await step('destroy', () => lost.container.destroy());
    const fresh = await step('boot a fresh host and its empty databases', () =>
      bootAgent('db3', lost.sshPort, lost.influx),
    );
    agents.set('db3', fresh);
    assert.equal((await mysql(fresh, `SHOW DATABASES LIKE '${MYSQL_DB}'`)).trim(), '');
    // 2. The playbook, with the restore pending.
    const rebuild = await step('play with the restore pending (db3 + server)', () =>
      runbookOnController(block('fleet-rebuild'), settings),
    );
    assert.equal(rebuild.exitCode, 0, rebuild.output);
    assert.match(rebuild.output, /full/, 'the play did not show the restore points');
    assert.equal((await run(fresh, ['systemctl', 'is-enabled', UNIT], [1])).stdout.trim(), 'disabled');
    assert.equal((await run(fresh, ['systemctl', 'is-active', UNIT], [3])).stdout.trim(), 'inactive');
    // 3. The restore, on the host.
    const restored = await step('restore mysql and influxdb', () =>
      run(fresh, ['bash', '-euo', 'pipefail', '-c', `cd /root\n${block('fleet-restore')}`], [0, 1]),
    );
    assert.equal(restored.exitCode, 0, `${restored.stdout}\n${restored.stderr}`);
    assert.equal(await fingerprint(fresh), original);
    // 4. The play again: check passes, the daemon runs and backs up into the same directory.
    const since = new Date();
    const resume = await step('play to resume (db3 + server)', () =>
      runbookOnController(block('fleet-resume'), settings),
    );
    assert.equal(resume.exitCode, 0, resume.output);
    assert.equal((await run(fresh, ['systemctl', 'is-active', UNIT])).stdout.trim(), 'active');
    const kinds = await step('first backup after the rebuild', () => waitForBackup('db3', since));
    assert.ok(
      Object.values(kinds).every((kind) => kind === 'full' || kind === 'incremental'),
      JSON.stringify(kinds),
    );
    timings.push(`lost-host drill: ${drill.join(', ')} (backups after the rebuild: ${JSON.stringify(kinds)})`);
    console.log(`# lost-host drill: ${drill.join('; ')}`);
  });

  test('state absent removes the agent, withdraws its key and keeps its backups on the server', async () => {
    const inventory = await writeInventory(join(dir, 'absent.yml'), { db2: { backup_agent_state: 'absent' } });
    const backups = (await serverFiles('db2')).filter((line) => line.split(' ')[2]?.startsWith('backups/'));
    const play = await playbook(['-i', inventory, '--limit', `db2,${SERVER}`], 'state absent (db2 + server)');
    assert.equal(play.exitCode, 0, play.output);
    const db2 = agent('db2');
    assert.equal((await run(db2, ['dpkg-query', '--show', 'backup-agent'], [1])).exitCode, 1);
    assert.equal((await run(db2, ['systemctl', 'is-active', UNIT], [3, 4])).stdout.trim(), 'inactive');
    const after = await serverFiles('db2');
    assert.deepEqual(
      after.filter((line) => line.split(' ')[2]?.startsWith('backups/')),
      backups,
    );
    assert.ok(!after.some((line) => line.includes('.ssh/authorized_keys')), after.join('\n'));
    // The key stays on the host (apt purge keeps /etc/backup-agent); the server no longer takes it.
    const ssh = `ssh -i ${SSH_KEY} -o UserKnownHostsFile=${KNOWN_HOSTS} -o BatchMode=yes -p ${server.sshPort}`;
    const listed = await run(db2, ['rsync', '--list-only', '-e', ssh, 'bk-db2@127.0.0.1:backups/'], [12, 255]);
    assert.match(listed.stderr, /Permission denied \(publickey\)/);
  });

  test('reinstalled from a signed apt repository, the host is back in its own directory', async () => {
    const repository = await startAptRepository(dir, deb);
    try {
      const inventory = await writeInventory(join(dir, 'apt.yml'), {
        db2: {
          backup_agent_deb: '',
          backup_agent_apt_repository: repository.line,
          backup_agent_apt_key: repository.keyFile,
        },
      });
      const play = await playbook(
        ['-i', inventory, '--limit', `db2,${SERVER}`],
        'install from the apt repository (db2 + server)',
      );
      assert.equal(play.exitCode, 0, play.output);
      assert.ok(
        repository.requests.includes(basename(deb)) || repository.requests.includes(`./${basename(deb)}`),
        repository.requests.join(' '),
      );
      const db2 = agent('db2');
      assert.equal(
        (await run(db2, ['dpkg-query', '--show', '--showformat=${Version}', 'backup-agent'])).stdout,
        VERSION,
      );
      assert.equal((await run(db2, ['systemctl', 'is-active', UNIT])).stdout.trim(), 'active');
      assert.ok((await serverFiles('db2')).some((line) => line.startsWith('root 644 .ssh/authorized_keys ')));
    } finally {
      await repository.stop();
    }
  });
});
