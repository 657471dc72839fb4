// The backup server role confines each host's key with `restrict,command="rrsync -no-lock <dir>"`
// (deploy/ansible/roles/backup_server). Here the agent's own calls go through that very line on a real
// sshd: check (directory creation, the write probe, the listing), a full, and retention deleting the
// oldest chain. And the three facts behind the chosen options, each shown by what fails without it:
// -wo refuses the listing every action starts with, -no-del refuses retention's deletions, and
// without -no-lock a second session while one is open is turned away.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost } from './harness/agent.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { asBackupUser } from './harness/temp-dir.js';

const RRSYNC = '/usr/bin/rrsync';
let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;
let clientKey = '';

/** The target accepts the agent's key only for rrsync in its directory, with these options. */
async function confine(options: readonly string[]): Promise<void> {
  const command = [RRSYNC, ...options, target.targetDir].join(' ');
  await writeFile(join(target.dir, 'authorized_keys'), `restrict,command="${command}" ${clientKey}\n`, { mode: 0o600 });
}

/** The full manifests of mysql's chains on the target, oldest first. */
async function fulls(): Promise<string[]> {
  const files = await target.listFiles('backups/mysql').catch(() => []);
  return files
    .map((file) => /^(duplicity-full\.[0-9TZ]+)\.manifest\.gpg$/.exec(file.name)?.[1])
    .filter((name) => name !== undefined)
    .sort();
}

before(async () => {
  assert.ok(
    (await execa(RRSYNC, ['-h'], { reject: false })).exitCode !== 127,
    'rrsync is missing: it ships in Debian 12/13 rsync',
  );
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  host = await makeAgentHost({ mariadb, target });
  clientKey = (await readFile(`${target.clientKey}.pub`, 'utf8')).trim();
  // rrsync takes paths relative to its directory, as target.url does on the backup server role's accounts.
  await host.writeConfig({
    target: { url: `rsync://root@127.0.0.1:${target.port}/backups` },
    agent: { keep_full: '2' },
  });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
});

test("the agent's check, fulls and retention work through the backup server role's rrsync line", async () => {
  await confine(['-no-lock']);
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.match(
    check.stdout,
    /^\[ ok \] target mysql: rsync:\/\/root@127\.0\.0\.1:\d+\/backups\/mysql is reachable and writable/m,
  );
  for (let round = 0; round < 3; round++) {
    const run = await host.run(['run', '--full']);
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  }
  const kept = await fulls();
  assert.equal(kept.length, 2, `keep_full = 2 after three fulls: ${kept.join(' ')}`);
});

test('with -wo the listing every action starts with is refused: check fails on the target', async () => {
  await confine(['-no-lock', '-wo']);
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 1, check.stdout + check.stderr);
  assert.match(check.stdout, /^\[FAIL\] target mysql: /m);
});

test("with -no-del retention's deletions are refused: the oldest chain stays and the run says so", async () => {
  await confine(['-no-lock', '-no-del']);
  const before = await fulls();
  assert.equal(before.length, 2);
  const run = await host.run(['run', '--full']);
  // duplicity itself exits 0: rrsync drops rsync's --delete without an error.
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(
    run.stdout + run.stderr,
    /retention removed nothing: 3 chains are still on the target after removing all but 2/,
  );
  const after = await fulls();
  assert.ok(before[0] !== undefined && after.includes(before[0]), `the oldest full is gone: ${after.join(' ')}`);
});

test('without -no-lock a second session is turned away while one is open', async () => {
  await confine([]);
  const ssh = ['ssh', ...target.sshArgs].join(' ');
  // The first session: a download throttled to 1 KiB/s of a volume of more than 1 KiB stays open.
  const [volume] = (await target.listFiles('backups/mysql')).filter((file) => file.name.endsWith('.difftar.gpg'));
  assert.ok(volume !== undefined && volume.size > 4096, 'no volume to download slowly');
  const slow = execa(
    'setpriv',
    await asBackupUser([
      'rsync',
      '--bwlimit=1',
      '-e',
      ssh,
      `root@127.0.0.1:backups/mysql/${volume.name}`,
      join(host.cacheDir, 'tmp', 'slow-copy'),
    ]),
    { reject: false, all: true },
  );
  try {
    const deadline = Date.now() + 10_000;
    let second: { exitCode?: number; all?: string } = {};
    while (Date.now() < deadline) {
      second = await execa(
        'setpriv',
        await asBackupUser(['rsync', '--list-only', '-e', ssh, 'root@127.0.0.1:backups/']),
        {
          reject: false,
          all: true,
        },
      );
      if (second.exitCode !== 0) break;
    }
    assert.notEqual(second.exitCode, 0, 'a second session went through while the first was open');
    assert.match(second.all ?? '', /Another instance of rrsync is already accessing this directory/);
    await confine(['-no-lock']);
    const withOption = await execa(
      'setpriv',
      await asBackupUser(['rsync', '--list-only', '-e', ssh, 'root@127.0.0.1:backups/']),
      {
        reject: false,
        all: true,
      },
    );
    assert.equal(withOption.exitCode, 0, withOption.all);
  } finally {
    slow.kill('SIGTERM');
    await slow;
  }
});
