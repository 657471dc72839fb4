// The sandbox `check` reads from backup-agent.service, and the decision per configured directory.
// The unit is the repository's own file, so a change to it that takes a path away fails here.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type UnitSandbox,
  type WrittenPath,
  accessInSandbox,
  blockedPaths,
  canonicalPath,
  describeBlocked,
  parseShow,
  parseUnitFiles,
  resolvePaths,
} from './unit-sandbox.js';

const UNIT_FILE = new URL('../../systemd/backup-agent.service', import.meta.url).pathname;
const shipped = async (...dropIns: string[]): Promise<UnitSandbox> =>
  parseUnitFiles([
    { path: UNIT_FILE, text: await readFile(UNIT_FILE, 'utf8') },
    ...dropIns.map((text, i) => ({ path: `/etc/systemd/system/backup-agent.service.d/${i}.conf`, text })),
  ]);
const path = (key: string, dir: string, value = dir): WrittenPath => ({ key, value, dir });

// As Debian 13's systemd 257 printed it for the installed unit (e2e container).
const SHOW = `ExecStart={ path=/usr/bin/backup-agent ; argv[]=/usr/bin/backup-agent daemon ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
Environment=
ReadWritePaths=-/var/lib/prometheus/node-exporter
ReadOnlyPaths=
InaccessiblePaths=
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=strict
RuntimeDirectory=
StateDirectory=backup-agent
CacheDirectory=backup-agent
LogsDirectory=
LoadState=loaded
NeedDaemonReload=no
`;

test('systemctl show: the settings of the loaded unit; a unit systemd does not know is none', () => {
  const sandbox = parseShow(SHOW);
  assert.ok(sandbox);
  assert.equal(sandbox.protectSystem, 'strict');
  assert.equal(sandbox.protectHome, 'yes');
  assert.equal(sandbox.privateTmp, true);
  assert.deepEqual(sandbox.readWritePaths, ['-/var/lib/prometheus/node-exporter']);
  assert.deepEqual(sandbox.stateDirectory, ['backup-agent']);
  assert.deepEqual(sandbox.cacheDirectory, ['backup-agent']);
  assert.equal(sandbox.configFile, undefined);
  assert.equal(sandbox.needsReload, false);

  const edited = parseShow(
    SHOW.replace(/^ReadWritePaths=.*$/m, 'ReadWritePaths=-/var/lib/prometheus/node-exporter /srv/dumps')
      .replace(/^Environment=$/m, 'Environment=BACKUP_AGENT_CONFIG=/etc/other.ini')
      .replace(/^NeedDaemonReload=no$/m, 'NeedDaemonReload=yes'),
  );
  assert.deepEqual(edited?.readWritePaths, ['-/var/lib/prometheus/node-exporter', '/srv/dumps']);
  assert.equal(edited?.configFile, '/etc/other.ini');
  assert.equal(edited?.needsReload, true);
  assert.equal(parseShow('LoadState=not-found\nProtectSystem=no\n'), undefined);
});

test('unit files: the shipped unit, then drop-ins in order; an empty assignment empties a list', async () => {
  const unit = await shipped();
  assert.equal(unit.protectSystem, 'strict');
  assert.equal(unit.protectHome, 'yes');
  assert.equal(unit.privateTmp, true);
  assert.deepEqual(unit.readWritePaths, ['-/var/lib/prometheus/node-exporter']);
  assert.deepEqual(unit.stateDirectory, ['backup-agent']);
  assert.deepEqual(unit.cacheDirectory, ['backup-agent']);
  assert.equal(unit.configFile, undefined);

  const edited = await shipped(
    '[Service]\nReadWritePaths=/srv/dumps\n',
    '# systemctl edit\n[Service]\nReadWritePaths=/srv/b \\\n  /srv/c\nExecStart=\nExecStart=/usr/bin/backup-agent daemon --config /etc/b.ini\n',
  );
  assert.deepEqual(edited.readWritePaths, ['-/var/lib/prometheus/node-exporter', '/srv/dumps', '/srv/b', '/srv/c']);
  assert.equal(edited.configFile, '/etc/b.ini');
  assert.deepEqual((await shipped('[Service]\nReadWritePaths=\nProtectSystem=full\n')).readWritePaths, []);
  assert.equal((await shipped('[Unit]\nProtectSystem=no\n')).protectSystem, 'strict', 'only [Service] counts');
});

test("the shipped unit: the agent's own directories and node_exporter's are writable, the rest is not", async () => {
  const unit = await shipped();
  const verdict = (dir: string) => accessInSandbox(unit, dir);
  assert.deepEqual(verdict('/var/lib/backup-agent/staging'), {
    access: 'writable',
    because: 'StateDirectory=backup-agent',
    under: '/var/lib/backup-agent',
  });
  assert.equal(verdict('/var/lib/backup-agent').access, 'writable');
  assert.equal(verdict('/var/cache/backup-agent').because, 'CacheDirectory=backup-agent');
  // As written, before resolvePaths drops or keeps the "-" entry: not a plain path yet.
  assert.equal(verdict('/var/lib/prometheus/node-exporter').access, 'read-only');
  const resolved = { ...unit, readWritePaths: ['/var/lib/prometheus/node-exporter'] };
  assert.equal(accessInSandbox(resolved, '/var/lib/prometheus/node-exporter').access, 'writable');
  assert.equal(accessInSandbox(resolved, '/var/lib/prometheus').access, 'read-only');
  assert.deepEqual(verdict('/srv/backup/staging'), {
    access: 'read-only',
    because: 'ProtectSystem=strict',
    under: '/',
  });
  assert.equal(verdict('/var/lib/backup-agent-old').access, 'read-only', 'a name that merely starts alike');
  assert.deepEqual(verdict('/home/ops/staging'), { access: 'hidden', because: 'ProtectHome=yes', under: '/home' });
  assert.deepEqual(verdict('/var/tmp/staging'), { access: 'private', because: 'PrivateTmp=yes', under: '/var/tmp' });
});

test('the most specific setting wins; at the same depth the stricter one', async () => {
  const unit = await shipped(
    '[Service]\nReadWritePaths=/srv\nReadOnlyPaths=/srv/frozen /var/lib/backup-agent/gnupg\nInaccessiblePaths=/srv/x\nReadWritePaths=/srv/x\n',
  );
  assert.equal(accessInSandbox(unit, '/srv/dumps').access, 'writable');
  assert.equal(accessInSandbox(unit, '/srv/frozen/a').access, 'read-only');
  assert.equal(accessInSandbox(unit, '/var/lib/backup-agent/gnupg').access, 'read-only');
  assert.equal(accessInSandbox(unit, '/srv/x').access, 'hidden');
  assert.equal(accessInSandbox(parseUnitFiles([{ path: 'u', text: '[Service]\n' }]), '/srv/x').access, 'writable');
  assert.equal(
    accessInSandbox(parseUnitFiles([{ path: 'u', text: '[Service]\nProtectSystem=full\n' }]), '/etc/x').access,
    'read-only',
  );
});

test('a blocked path is named with its key and the setting; the fix is the drop-in that opens it', async () => {
  const unit = await shipped();
  const written = [
    path('agent.staging_dir', '/srv/dumps'),
    path('agent.cache_dir', '/var/cache/backup-agent'),
    path('agent.state_file', '/var/lib/backup-agent', '/var/lib/backup-agent/state.json'),
    path('metrics.textfile', '/srv/metrics', '/srv/metrics/backup_agent.prom'),
    path('target.gnupg_home', '/home/ops/gnupg'),
  ];
  const blocked = blockedPaths(unit, written);
  assert.deepEqual(
    blocked.map((entry) => entry.key),
    ['agent.staging_dir', 'metrics.textfile', 'target.gnupg_home'],
  );
  const { detail, hint } = describeBlocked(unit, blocked);
  assert.match(detail, /agent\.staging_dir = \/srv\/dumps is read-only under ProtectSystem=strict/);
  assert.match(
    detail,
    /metrics\.textfile = \/srv\/metrics\/backup_agent\.prom \(directory \/srv\/metrics\) is read-only/,
  );
  assert.match(detail, /target\.gnupg_home = \/home\/ops\/gnupg is hidden under ProtectHome=yes/);
  assert.match(
    hint,
    /systemctl edit backup-agent, add the lines "\[Service\]" and "ReadWritePaths=\/srv\/dumps \/srv\/metrics"/,
  );
  assert.match(hint, /set target\.gnupg_home to a directory outside \/home \(ProtectHome=yes\)/);
  assert.doesNotMatch(hint, /daemon-reload/);

  // After the drop-in the fix names, nothing is blocked.
  const fixed = await shipped('[Service]\nReadWritePaths=/srv/dumps /srv/metrics\nProtectHome=read-only\n');
  assert.deepEqual(
    blockedPaths(fixed, written).map((entry) => `${entry.key} ${entry.verdict.access}`),
    ['target.gnupg_home read-only'],
  );
  assert.deepEqual(blockedPaths(fixed, written.slice(0, 4)), []);
});

test('resolvePaths drops a "-" entry that does not exist (as systemd does) and resolves symlinks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'unit-sandbox-'));
  try {
    await symlink(dir, join(dir, 'link'));
    const unit = await resolvePaths(
      parseUnitFiles([
        {
          path: 'u',
          text: `[Service]\nProtectSystem=strict\nReadWritePaths=-${dir}/missing -${dir}/link +${dir}\n`,
        },
      ]),
    );
    assert.deepEqual(unit.readWritePaths, [dir, dir]);
    assert.equal(await canonicalPath(`${dir}/link/not/yet`), `${dir}/not/yet`);
    assert.equal(accessInSandbox(unit, await canonicalPath(`${dir}/link/staging`)).access, 'writable');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
