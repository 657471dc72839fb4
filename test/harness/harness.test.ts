import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, before, after } from 'node:test';
// Not `import assert from 'node:assert/strict'`: tsconfig has neither
// esModuleInterop nor allowSyntheticDefaultImports, so tsc rejects that form (TS1259).
import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import type { Options } from 'execa';
import { changeData, seedDatabase, startMariaDb } from './mariadb.js';
import type { MariaDb } from './mariadb.js';
import { changeInflux, seedInflux, startInfluxDb } from './influxdb.js';
import type { InfluxDb } from './influxdb.js';
import { startSshTarget } from './ssh-target.js';
import type { SshTarget } from './ssh-target.js';
import { exportPublicOnlyHome, makeGpgHome, removeGpgHome } from './gpg.js';
import type { GpgHome } from './gpg.js';
import { chownToBackup, makeTempDir, removeDir } from './temp-dir.js';

// Everything the agent does happens as uid 34, so the checks do too.
function asBackup(command: string, args: string[], options: Options = {}) {
  return execa('runuser', ['-u', 'backup', '--', command, ...args], { reject: false, stdin: 'ignore', ...options });
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

async function timed<T>(start: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await start();
  return { value, ms: Math.round(performance.now() - t0) };
}

let maria: MariaDb | undefined;
let influx: InfluxDb | undefined;
let ssh: SshTarget | undefined;
let gpgHome: GpgHome | undefined;
let publicHome: GpgHome | undefined;
let work: string | undefined;
const startupMs: Record<string, number> = {};

before(async () => {
  work = await makeTempDir('harness-work');
  await chownToBackup(work);
  // Started together: the self-test should be about as fast as the slowest server.
  const [m, i, s, g] = await Promise.allSettled([
    timed(startMariaDb),
    timed(startInfluxDb),
    timed(startSshTarget),
    timed(makeGpgHome),
  ]);
  if (m.status === 'fulfilled') [maria, startupMs['mariadb']] = [m.value.value, m.value.ms];
  if (i.status === 'fulfilled') [influx, startupMs['influxdb']] = [i.value.value, i.value.ms];
  if (s.status === 'fulfilled') [ssh, startupMs['sshd']] = [s.value.value, s.value.ms];
  if (g.status === 'fulfilled') [gpgHome, startupMs['gpg']] = [g.value.value, g.value.ms];
  const failed = [m, i, s, g].find((r) => r.status === 'rejected');
  if (failed?.status === 'rejected') throw failed.reason;
});

after(async () => {
  await Promise.allSettled([
    maria?.stop(),
    influx?.stop(),
    ssh?.stop(),
    gpgHome && removeGpgHome(gpgHome.home),
    publicHome && removeGpgHome(publicHome.home),
    work && removeDir(work),
  ]);
});

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`${name} did not start`);
  return value;
}

test('mariadb: backup user dumps over socket and TCP, fingerprint tracks changes', async (t) => {
  const db = required(maria, 'mariadb');
  const dir = required(work, 'work dir');
  t.diagnostic(`mariadb started in ${startupMs['mariadb']} ms`);

  await seedDatabase(db, 'shop', 1500);
  assert.equal(await db.sql('SELECT COUNT(*) FROM customers', 'shop'), '1500');
  assert.equal(await db.sql('SELECT COUNT(*) FROM orders', 'shop'), '1500');
  const before = await db.fingerprint('shop');

  // A password full of option-file metacharacters proves writeMyCnf quotes it.
  const password = `p#w d"q'\\x;`;
  await db.createBackupUser('agent', password, ['shop']);
  const socketCnf = join(dir, 'socket.my.cnf');
  const tcpCnf = join(dir, 'tcp.my.cnf');
  await db.writeMyCnf(socketCnf, { user: 'agent', password, socket: true });
  await db.writeMyCnf(tcpCnf, { user: 'agent', password, host: '127.0.0.1', port: db.port });

  const dumps: string[] = [];
  for (const cnf of [socketCnf, tcpCnf]) {
    const dump = await asBackup(
      'mariadb-dump',
      [`--defaults-file=${cnf}`, '--single-transaction', '--skip-dump-date', 'shop'],
      {
        stripFinalNewline: false,
      },
    );
    assert.equal(dump.exitCode, 0, `mariadb-dump via ${cnf}: ${String(dump.stderr)}`);
    const text = String(dump.stdout);
    assert.match(text.trimEnd(), /-- Dump completed$/);
    assert.match(text, /INSERT INTO `customers`/);
    dumps.push(text);
  }
  // The header names the connection (`-- Host: localhost` vs `127.0.0.1`); the data must not differ.
  const withoutHost = (dump: string | undefined): string => (dump ?? '').replace(/^-- Host: .*$/m, '');
  assert.equal(sha256(withoutHost(dumps[0])), sha256(withoutHost(dumps[1])), 'socket and TCP dumps differ');

  const denied = await asBackup('mariadb-dump', [`--defaults-file=${socketCnf}`, '--single-transaction', 'mysql']);
  assert.notEqual(denied.exitCode, 0, 'backup user must not be able to dump a database it was not granted');

  await changeData(db, 'shop', 1);
  const changed = await db.fingerprint('shop');
  assert.notEqual(changed, before);
  await changeData(db, 'shop', 2);
  assert.notEqual(await db.fingerprint('shop'), changed);

  // The pre-change dump restored elsewhere must reproduce the pre-change fingerprint.
  const dumpFile = join(dir, 'shop.sql');
  await writeFile(dumpFile, dumps[0] ?? '');
  await db.sql('CREATE DATABASE shop_restored');
  await db.importFile('shop_restored', dumpFile);
  assert.equal(await db.fingerprint('shop_restored'), before);
});

test('influxdb: backup user takes a portable backup that restores to the same fingerprint', async (t) => {
  const server = required(influx, 'influxdb');
  const dir = required(work, 'work dir');
  t.diagnostic(`influxdb started in ${startupMs['influxdb']} ms`);

  await server.createDatabase('metrics');
  await seedInflux(server, 'metrics', 600);
  const before = await server.fingerprint('metrics');
  assert.match(before, /^cpu: count_usage_system=600\.000000 count_usage_user=600\.000000 /m);
  assert.match(before, /^mem: count_used=600\.000000 /m);

  const backupDir = join(dir, 'influx-backup');
  const mkdir = await asBackup('mkdir', ['-m', '0700', backupDir]);
  assert.equal(mkdir.exitCode, 0, String(mkdir.stderr));
  const backup = await asBackup('influxd', [
    'backup',
    '-portable',
    '-database',
    'metrics',
    '-host',
    server.rpcAddress,
    backupDir,
  ]);
  assert.equal(backup.exitCode, 0, `influxd backup: ${String(backup.stderr)}`);
  const files = await readdir(backupDir);
  assert.ok(
    files.some((f) => f.endsWith('.manifest')),
    `no manifest in ${files.join(', ')}`,
  );

  await changeInflux(server, 'metrics');
  assert.notEqual(await server.fingerprint('metrics'), before);

  const restore = await execa(
    'influxd',
    ['restore', '-portable', '-db', 'metrics', '-newdb', 'metrics_restored', '-host', server.rpcAddress, backupDir],
    { reject: false, stdin: 'ignore' },
  );
  assert.equal(restore.exitCode, 0, `influxd restore: ${restore.stderr}`);
  assert.equal(await server.fingerprint('metrics_restored'), before);

  await server.dropDatabase('metrics_restored');
  const shown = await server.query('SHOW DATABASES');
  const names = (shown.results?.[0]?.series?.[0]?.values ?? []).map((row) => String(row[0]));
  assert.deepEqual(
    names.filter((n) => n.startsWith('metrics')),
    ['metrics'],
  );
});

test('ssh target: backup user rsyncs a file with the generated key and known_hosts', async (t) => {
  const target = required(ssh, 'sshd');
  const dir = required(work, 'work dir');
  t.diagnostic(`sshd started (incl. login check) in ${startupMs['sshd']} ms`);

  assert.match(target.url, new RegExp(`^rsync://root@127\\.0\\.0\\.1:${target.port}//`));
  assert.deepEqual(await target.listFiles(''), []);
  assert.deepEqual(await target.listFiles('missing'), []);

  const payload = randomBytes(200_000);
  const file = join(dir, 'payload.bin');
  await writeFile(file, payload, { mode: 0o644 });
  await chownToBackup(file);
  const rsh = ['ssh', ...target.sshArgs].join(' ');
  const rsync = await asBackup('rsync', ['-e', rsh, file, `root@127.0.0.1:${target.targetDir}/`]);
  assert.equal(rsync.exitCode, 0, `rsync: ${String(rsync.stderr)}`);
  assert.deepEqual(await target.listFiles(''), [{ name: 'payload.bin', size: payload.length }]);
  assert.equal(sha256(await readFile(join(target.targetDir, 'payload.bin'))), sha256(payload));

  // known_hosts must actually be enforced, or a host-key mismatch would go unnoticed.
  const otherKey = join(dir, 'other_host_key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey], { stdin: 'ignore' });
  const [keyType, keyBlob] = (await readFile(`${otherKey}.pub`, 'utf8')).split(' ');
  const wrongHosts = join(dir, 'wrong_known_hosts');
  await writeFile(wrongHosts, `[127.0.0.1]:${target.port} ${keyType ?? ''} ${keyBlob ?? ''}\n`);
  await chownToBackup(wrongHosts);
  const spoofed = await asBackup('ssh', [
    ...target.sshArgs.filter((a) => !a.startsWith('-oUserKnownHostsFile=')),
    `-oUserKnownHostsFile=${wrongHosts}`,
    'root@127.0.0.1',
    'true',
  ]);
  assert.notEqual(spoofed.exitCode, 0, 'ssh must refuse a host key that does not match known_hosts');
});

test('gpg: backup user encrypts with the public-only home and decrypts with the full one', async (t) => {
  const full = required(gpgHome, 'gpg home');
  const dir = required(work, 'work dir');
  t.diagnostic(`gpg key generated in ${startupMs['gpg']} ms`);
  publicHome = await exportPublicOnlyHome(full);
  assert.equal(publicHome.fingerprint, full.fingerprint);

  const secrets = await asBackup('gpg', [
    '--batch',
    '--homedir',
    publicHome.home,
    '--with-colons',
    '--list-secret-keys',
  ]);
  assert.equal(secrets.exitCode, 0, String(secrets.stderr));
  assert.doesNotMatch(String(secrets.stdout), /^sec:/m);

  const plain = join(dir, 'secret.txt');
  const text = `backup-agent ${randomBytes(8).toString('hex')}\n`;
  await writeFile(plain, text, { mode: 0o644 });
  const encrypted = join(dir, 'secret.txt.gpg');
  const encrypt = await asBackup('gpg', [
    '--batch',
    '--homedir',
    publicHome.home,
    '--recipient',
    full.fingerprint,
    '--output',
    encrypted,
    '--encrypt',
    plain,
  ]);
  assert.equal(encrypt.exitCode, 0, `encrypt: ${String(encrypt.stderr)}`);
  assert.notEqual(sha256(await readFile(encrypted)), sha256(text));

  const cannotDecrypt = await asBackup('gpg', ['--batch', '--homedir', publicHome.home, '--decrypt', encrypted]);
  assert.notEqual(cannotDecrypt.exitCode, 0, 'the public-only home must not be able to decrypt');

  const decrypt = await asBackup('gpg', [
    '--batch',
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    '',
    '--homedir',
    full.home,
    '--decrypt',
    encrypted,
  ]);
  assert.equal(decrypt.exitCode, 0, `decrypt: ${String(decrypt.stderr)}`);
  assert.equal(String(decrypt.stdout).trim(), text.trim());
});
