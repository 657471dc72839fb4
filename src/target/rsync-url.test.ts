import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childUrl, formatRsyncUrl, parseRsyncUrl, rsyncRemoteSpec } from './rsync-url.js';
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

test('a cache_dir too long for a unix socket path does without the shared ssh connection', () => {
  const access = { sshKey: '/k', knownHosts: '/h' };
  assert.ok(sshOptions({ ...access, controlDir: '/var/cache/backup-agent' }).includes('-oControlMaster=auto'));
  const long = `/var/tmp/${'x'.repeat(60)}`;
  const options = sshOptions({ ...access, controlDir: long });
  assert.ok(!options.some((option) => option.startsWith('-oControl')), options.join(' '));
});
