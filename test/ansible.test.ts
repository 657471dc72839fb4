// The Ansible roles in deploy/ansible, without booting any host: the playbook parses, ansible-lint
// passes, the role's defaults and key table are those `npm run docs` makes from the agent's key
// tables, the ini file the role writes is one the agent's own loader accepts (values it must quote
// included), and bad input stops the play before it changes anything: an unknown variable or key
// (naming the closest known one), no passphrase source (naming the variables), two hosts that would
// share a directory on the server. The failing plays run site.yml itself in check mode, against this
// machine (connection local), so a check that stopped working could still not change it.
// ansible-core comes from scripts/install-deps.sh (Debian's package); without it these tests fail.
// ansible-lint too (the same script installs it). Runs as root, as the suite does (the ini is root:backup).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import {
  ANSIBLE_CONFIG_DEFAULTS,
  ANSIBLE_KEY_TABLE,
  renderAnsibleConfigDefaults,
  renderAnsibleKeyTable,
} from '../scripts/ansible-defaults.js';
import { parseConfig } from '../src/config/load.js';
import { ENGINES } from '../src/sources/registry.js';

const ANSIBLE_DIR = fileURLToPath(new URL('../deploy/ansible/', import.meta.url));
const SITE = join(ANSIBLE_DIR, 'site.yml');
const EXAMPLE_INVENTORY = join(ANSIBLE_DIR, 'inventory/example/hosts.yml');
const EXAMPLE_AGENTS = ['db1.example.org', 'db2.example.org', 'db3.example.org'];
const TIMEOUT = { timeout: 120_000 };

let dir: string;

// Includes the role's own task files, as its main entry point does, with the ini written to the test's directory.
const RENDER_PLAYBOOK = `---
- name: Render backup-agent.ini as the backup_agent role does
  hosts: backup_agents
  gather_facts: false
  tasks:
    - name: Check the variables
      ansible.builtin.include_role:
        name: backup_agent
        tasks_from: validate
    - name: Write the ini file
      ansible.builtin.include_role:
        name: backup_agent
        tasks_from: config
      vars:
        __backup_agent_ini_path: '{{ render_dir }}/{{ inventory_hostname }}.ini'
`;

before(async () => {
  const found = await execa('ansible-playbook', ['--version'], { reject: false });
  assert.equal(found.exitCode, 0, 'ansible-playbook is missing: scripts/install-deps.sh installs ansible-core');
  dir = await mkdtemp(join(tmpdir(), 'ansible-test-'));
  await writeFile(join(dir, 'render.yml'), RENDER_PLAYBOOK);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** ansible-playbook on this machine: plain output, its temporary files in the test's directory. */
function playbook(args: readonly string[]) {
  return execa('ansible-playbook', args, {
    cwd: ANSIBLE_DIR,
    reject: false,
    all: true,
    env: {
      ANSIBLE_ROLES_PATH: join(ANSIBLE_DIR, 'roles'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_LOCALHOST_WARNING: 'false',
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
      ANSIBLE_REMOTE_TEMP: join(dir, 'ansible-remote'),
    },
  });
}

/** A playbook against this machine (connection local) for the inventory's hosts in `limit`. */
function playbookHere(file: string, inventory: string, limit: string, args: readonly string[]) {
  return playbook([file, '--inventory', inventory, '--limit', limit, '--connection', 'local', ...args]);
}

/** site.yml against this machine in check mode; only plays that must fail during validation run it. */
function siteInCheckMode(inventory: string, limit: string, extraVars: Record<string, unknown>) {
  return playbookHere(SITE, inventory, limit, [
    '--check',
    // Already root: no sudo, which a CI machine may not have. Passphrases, should a play get that
    // far, go to the test's directory rather than beside the example inventory.
    '--extra-vars',
    JSON.stringify({ ansible_become: false, backup_agent_passphrase_dir: join(dir, 'passphrases'), ...extraVars }),
  ]);
}

async function renderIni(inventory: string, limit: string) {
  const renderDir = join(dir, `render-${Date.now()}`);
  await mkdir(renderDir);
  const played = await playbookHere(join(dir, 'render.yml'), inventory, limit, [
    '--extra-vars',
    JSON.stringify({ render_dir: renderDir }),
  ]);
  assert.equal(played.exitCode, 0, played.all);
  return (host: string) => readFile(join(renderDir, `${host}.ini`), 'utf8');
}

test('the role defaults and key table are those npm run docs makes from the key tables', async () => {
  assert.equal(
    await readFile(ANSIBLE_CONFIG_DEFAULTS, 'utf8'),
    await renderAnsibleConfigDefaults(ENGINES),
    'deploy/ansible/roles/backup_agent/defaults/main/config.yml is out of date: run npm run docs',
  );
  assert.equal(
    await readFile(ANSIBLE_KEY_TABLE, 'utf8'),
    await renderAnsibleKeyTable(ENGINES),
    'deploy/ansible/roles/backup_agent/vars/main/config_keys.yml is out of date: run npm run docs',
  );
});

test('ansible-playbook --syntax-check accepts the example playbook', TIMEOUT, async () => {
  const checked = await playbook(['--syntax-check', SITE, '--inventory', EXAMPLE_INVENTORY]);
  assert.equal(checked.exitCode, 0, checked.all);
});

test('ansible-lint passes on deploy/ansible', TIMEOUT, async () => {
  const found = await execa('ansible-lint', ['--version'], { reject: false });
  assert.equal(found.exitCode, 0, 'ansible-lint is not installed: run scripts/install-deps.sh');
  // --offline: no collection installs and no version check over the network.
  const linted = await execa('ansible-lint', ['--offline', '--nocolor'], {
    cwd: ANSIBLE_DIR,
    reject: false,
    all: true,
  });
  assert.equal(linted.exitCode, 0, linted.all);
});

test(
  "the example inventory's ini files are valid configurations pointing at each host's own directory",
  TIMEOUT,
  async () => {
    const ini = await renderIni(EXAMPLE_INVENTORY, 'backup_agents');
    for (const host of EXAMPLE_AGENTS) {
      const config = parseConfig(await ini(host), `${host}.ini`, ENGINES);
      const account = `bk-${host.replaceAll('.', '-')}`;
      assert.equal(config.target.url.user, account);
      assert.equal(config.target.url.host, 'backup1.example.org');
      assert.equal(config.target.url.path, 'backups');
      assert.equal(config.agent.full_day, 'auto');
      assert.deepEqual(config.sources['mysql']?.databases, ['agama']);
      assert.deepEqual(config.sources['influxdb']?.databases, ['telegraf']);
      assert.equal(config.sources['postgresql']?.enabled, false);
    }
  },
);

test('values of every YAML type, and those the ini must quote, reach the agent unchanged', TIMEOUT, async () => {
  const inventory = join(dir, 'quoting');
  await mkdir(join(inventory, 'group_vars'), { recursive: true });
  const longHost = 'a-database-host-with-a-name-longer-than-an-account.example.org';
  await writeFile(
    join(inventory, 'hosts.yml'),
    `all:\n  children:\n    backup_servers:\n      hosts:\n        backup1:\n    backup_agents:\n      hosts:\n        ${longHost}:\n`,
  );
  // Unquoted `on:` is YAML 1.1's boolean true: the role takes it back as notify.on.
  await writeFile(
    join(inventory, 'group_vars', 'backup_agents.yml'),
    `backup_agent_passphrase_dir: /nonexistent
backup_agent_server_address: 2001:db8::1
backup_agent_server_port: 2222
backup_agent_config:
  agent:
    catch_up: false
    keep_full: 6
    deadline: ''
    staging_dir: /var/lib/backup-agent/staging;#1
  mysql:
    databases: [agama, my_db]
  postgresql:
    databases: shop, crm
    enabled: true
  notify:
    on: always
    email_to: ops@example.org, dba@example.org
  metrics:
    textfile: /var/lib/prometheus/node-exporter/"backup\\agent'.prom
`,
  );
  const ini = await renderIni(join(inventory, 'hosts.yml'), 'backup_agents');
  const config = parseConfig(await ini(longHost), 'quoting.ini', ENGINES);
  assert.equal(config.agent.catch_up, false);
  assert.equal(config.agent.keep_full, 6);
  assert.equal(config.agent.deadline, null);
  assert.equal(config.agent.staging_dir, '/var/lib/backup-agent/staging;#1');
  assert.deepEqual(config.sources['mysql']?.databases, ['agama', 'my_db']);
  assert.deepEqual(config.sources['postgresql']?.databases, ['shop', 'crm']);
  assert.equal(config.sources['influxdb']?.enabled, false);
  assert.equal(config.notify.on, 'always');
  assert.deepEqual(config.notify.email_to, ['ops@example.org', 'dba@example.org']);
  assert.equal(config.metrics.textfile, '/var/lib/prometheus/node-exporter/"backup\\agent\'.prom');
  // useradd takes 32 characters: a longer name is shortened, with a hash that keeps it unique.
  assert.match(config.target.url.user, /^bk-a-database-host-with-[0-9a-f]{8}$/);
  assert.ok(config.target.url.user.length <= 32, config.target.url.user);
  assert.equal(config.target.url.host, '[2001:db8::1]');
  assert.equal(config.target.url.port, 2222);
});

test('an unknown variable stops the play, naming it and the closest known one', TIMEOUT, async () => {
  const played = await siteInCheckMode(EXAMPLE_INVENTORY, 'db1.example.org', {
    backup_agent_pasphrase_dir: join(dir, 'typo'),
  });
  assert.notEqual(played.exitCode, 0, played.all);
  assert.match(
    played.all,
    /backup_agent_pasphrase_dir is not a variable of this role \(closest: backup_agent_passphrase_dir\)/,
  );
});

test('an unknown section or key of backup_agent_config stops the play, naming the closest one', TIMEOUT, async () => {
  const played = await siteInCheckMode(EXAMPLE_INVENTORY, 'db1.example.org', {
    backup_agent_config: { agnet: { spread: '2h' }, mysql: { database: 'agama' } },
  });
  assert.notEqual(played.exitCode, 0, played.all);
  assert.match(played.all, /backup_agent_config\.agnet is not a section of backup-agent\.ini \(closest: agent\)/);
  assert.match(played.all, /backup_agent_config\.mysql\.database is not a key of \[mysql\] \(closest: databases\)/);
});

test('a host without a passphrase source stops the play, naming the variables to set', TIMEOUT, async () => {
  const played = await siteInCheckMode(EXAMPLE_INVENTORY, 'db1.example.org', { backup_agent_passphrase_dir: '' });
  assert.notEqual(played.exitCode, 0, played.all);
  assert.match(
    played.all,
    /no passphrase for db1\.example\.org: set backup_agent_passphrase_dir .* or backup_agent_passphrase/,
  );
});

test('the server role refuses two hosts that would share a directory', TIMEOUT, async () => {
  const inventory = join(dir, 'collision.yml');
  // Removed agents: the first play has nothing to do for them, so the server's checks come next.
  await writeFile(
    inventory,
    `all:
  children:
    backup_servers:
      hosts:
        backup1:
    backup_agents:
      vars:
        backup_agent_state: absent
      hosts:
        db1.example.org:
        DB1_example.org:
        db2.example.org:
`,
  );
  const played = await siteInCheckMode(inventory, 'all', {});
  assert.notEqual(played.exitCode, 0, played.all);
  assert.match(
    played.all,
    /db1\.example\.org and DB1_example\.org map to the same directory db1-example-org on the backup server/,
  );
});
