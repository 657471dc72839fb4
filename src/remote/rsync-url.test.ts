import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childUrl, formatRsyncUrl, parseRsyncUrl, readRsyncUrl, rsyncRemoteSpec } from './rsync-url.js';
import { sshOptions } from './ssh.js';

test('a relative path is kept relative to the login home', () => {
  const url = parseRsyncUrl('rsync://backup@backup.example.org/backups');
  assert.deepEqual(url, { user: 'backup', host: 'backup.example.org', port: null, path: 'backups' });
  assert.equal(rsyncRemoteSpec(childUrl(url, 'mysql'), true), 'backup@backup.example.org:backups/mysql/');
});

test('a double slash means an absolute path, and the port is kept', () => {
  const url = parseRsyncUrl('rsync://root@127.0.0.1:2222//tmp/target/');
  assert.deepEqual(url, { user: 'root', host: '127.0.0.1', port: 2222, path: '/tmp/target' });
  assert.equal(formatRsyncUrl(childUrl(url, 'influxdb')), 'rsync://root@127.0.0.1:2222//tmp/target/influxdb');
});

test('URLs duplicity would not read as rsync over ssh are refused', () => {
  for (const bad of [
    'rsync://host/path',
    'sftp://u@h/p',
    'rsync://u@h:99999/p',
    'rsync://u@h/',
    'rsync://u@h::module/p',
    'rsync://u@h/pa th',
  ]) {
    assert.equal(parseRsyncUrl(bad), null, bad);
  }
});

test('a user, host or path that ssh or rsync would read as an option is refused, naming the part', () => {
  const cases: [string, string][] = [
    ['rsync://-oProxyCommand@host/path', 'user'],
    ['rsync://backup@-oProxyCommand/path', 'host'],
    ['rsync://backup@host:2222/-e/path', 'path'],
  ];
  for (const [url, part] of cases) {
    const reading = readRsyncUrl(url);
    assert.ok('problem' in reading, `${url} was accepted`);
    assert.equal(reading.problem, `the ${part} must not start with "-": ssh and rsync would read it as an option`);
    assert.equal(parseRsyncUrl(url), null);
  }
  // A dash inside a name is ordinary.
  assert.deepEqual(readRsyncUrl('rsync://back-up@backup-1.example.org/b-1'), {
    url: { user: 'back-up', host: 'backup-1.example.org', port: null, path: 'b-1' },
  });
});

test('a cache_dir too long for a unix socket path does without the shared ssh connection', () => {
  const access = { sshKey: '/k', knownHosts: '/h' };
  assert.ok(sshOptions({ ...access, controlDir: '/var/cache/backup-agent' }).includes('-oControlMaster=auto'));
  const long = `/var/tmp/${'x'.repeat(60)}`;
  const options = sshOptions({ ...access, controlDir: long });
  assert.ok(!options.some((option) => option.startsWith('-oControl')), options.join(' '));
});
