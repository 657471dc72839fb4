// The backup user turned hostile, against root's restore (real MariaDB, sshd, duplicity, gpg). It
// holds the passphrase, so it can forge backup sets and upload them; it owns the staging and the
// cache, so it can plant symlinks. Root's restore and verify must refuse, change nothing, and leave
// root's files as they were. Each sentinel below lives where only root can write.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { AGENT, type AgentHost, MYSQL_DATABASE, NODE_FLAG, PASSPHRASE, makeAgentHost } from './harness/agent.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type ForgedManifest, uploadForgedSet } from './harness/forge.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { asBackupUser, backupUser } from './harness/temp-dir.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;
/** Root-only (0700): nothing in it may be created, changed or handed to backup by the agent. */
let sentinelDir: string;
let secret: string;
let original: string;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  host = await makeAgentHost({ mariadb, target });
  await host.writeConfig({ influxdb: null });
  const first = await host.run(['run']);
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
  original = await mariadb.fingerprint(MYSQL_DATABASE);
  sentinelDir = await mkdtemp(join(tmpdir(), 'root-only-'));
  secret = join(sentinelDir, 'secret');
  await writeFile(secret, 'root only\n', { mode: 0o600 });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
  if (sentinelDir !== undefined) await rm(sentinelDir, { recursive: true, force: true });
});

async function asBackup(argv: string[]) {
  return execa('setpriv', await asBackupUser(argv), { reject: false });
}

async function assertSentinelsUntouched(): Promise<void> {
  const dir = await stat(sentinelDir);
  assert.equal(dir.uid, 0, 'the root-only directory still belongs to root');
  assert.equal(dir.mode & 0o777, 0o700);
  const file = await stat(secret);
  assert.equal(file.uid, 0, 'the root-only file still belongs to root');
  assert.equal(file.mode & 0o777, 0o600);
  assert.equal(await readFile(secret, 'utf8'), 'root only\n');
  assert.deepEqual((await readdir(sentinelDir)).sort(), ['secret'], 'nothing new appeared in the root-only directory');
}

/** The hostile backup user, with the passphrase it holds, uploads a changed copy of its staging. */
async function forgeNewestSet(
  change: (dir: string) => Promise<void>,
  changeManifest?: (manifest: ForgedManifest) => void,
): Promise<void> {
  await uploadForgedSet({
    from: join(host.stagingDir, 'mysql'),
    target,
    url: `${target.url}/mysql`,
    env: [`PASSPHRASE=${PASSPHRASE}`, `GNUPGHOME=${host.gnupgHome}`],
    change,
    ...(changeManifest === undefined ? {} : { changeManifest }),
  });
}

test('restore_dir under a directory backup owns is refused: a planted symlink hands nothing to backup', async () => {
  const planted = join(host.stagingDir, 'restore');
  const link = await asBackup(['ln', '-s', sentinelDir, planted]);
  assert.equal(link.exitCode, 0, link.stderr);
  await host.writeConfig({ influxdb: null, agent: { restore_dir: planted } });
  try {
    const dry = await host.run(['restore', 'mysql', '--dry-run']);
    assert.equal(dry.exitCode, 0, dry.stderr);
    await assertSentinelsUntouched();

    for (const args of [
      ['restore', 'mysql', '--yes'],
      ['restore', 'mysql', '--download-only'],
      ['verify', '--import'],
    ]) {
      const refused = await host.run(args);
      assert.equal(refused.exitCode, 1, `${args.join(' ')}: ${refused.stdout}${refused.stderr}`);
      assert.match(
        refused.stdout + refused.stderr,
        new RegExp(`agent\\.restore_dir ${planted} lies under ${host.stagingDir}, which belongs to uid 34`),
      );
      await assertSentinelsUntouched();
    }
  } finally {
    await host.writeConfig({ influxdb: null });
    await rm(planted, { force: true });
  }
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original);
});

test('a forged set whose dump is a symlink to a root file is refused before root reads it', async () => {
  await forgeNewestSet(async (dir) => {
    await rm(join(dir, `${MYSQL_DATABASE}.sql`));
    await execa('ln', ['-s', secret, join(dir, `${MYSQL_DATABASE}.sql`)]);
  });
  const restore = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(restore.exitCode, 1, restore.stdout + restore.stderr);
  assert.match(
    restore.stderr,
    /agama\.sql is a symbolic link or not what it should be \(ELOOP\); refusing to follow it/,
  );
  await assertSentinelsUntouched();
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original);
  // The refused download is gone, and what is left of the restore area is root's alone.
  assert.deepEqual(await readdir(host.restoreDir), ['safety']);
  const area = await stat(host.restoreDir);
  assert.equal(area.uid, 0);
  assert.equal(area.mode & 0o777, 0o711);
});

test('a forged dump carrying `\\! cmd` never runs it: refused before the drop, and sandboxed inside a statement', async () => {
  const shell = join(sentinelDir, 'ran-a-shell');
  // Inside a line: past the line check, so only the client's --sandbox/--binary-mode stands between.
  await forgeNewestSet(async (dir) => {
    const dump = join(dir, `${MYSQL_DATABASE}.sql`);
    await writeFile(dump, `SELECT 1; \\! touch ${shell}\n${await readFile(dump, 'utf8')}`);
  });
  const into = await host.run(['restore', 'mysql', '--yes', '--database', MYSQL_DATABASE, '--into', 'forged_copy']);
  assert.equal(into.exitCode, 1, into.stdout + into.stderr);
  assert.match(into.stderr, /importing \S+agama\.sql into forged_copy failed/);
  await assertSentinelsUntouched();

  // At the start of a line, as an attacker would write it: refused before anything is dropped.
  await forgeNewestSet(async (dir) => {
    const dump = join(dir, `${MYSQL_DATABASE}.sql`);
    await writeFile(dump, `\\! touch ${shell}\n${await readFile(dump, 'utf8')}`);
  });
  const restore = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(restore.exitCode, 1, restore.stdout + restore.stderr);
  assert.ok(
    restore.stderr.includes(`carries mysql client commands, which a dump never holds: "1:\\\\! touch ${shell}"`),
    restore.stderr,
  );
  assert.match(restore.stderr, /nothing was changed/);
  await assertSentinelsUntouched();
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original, 'the live database was not dropped');
  await mariadb.sql('DROP DATABASE IF EXISTS forged_copy');
});

test('verify --import refuses database names and file names from a forged MANIFEST.json', async () => {
  const databasesBefore = await mariadb.sql('SHOW DATABASES');
  await forgeNewestSet(
    () => Promise.resolve(),
    (manifest) => manifest.databases.push('x`; DROP DATABASE agama; -- '),
  );
  const names = await host.run(['verify', '--import']);
  assert.equal(names.exitCode, 1, names.stdout + names.stderr);
  assert.match(names.stdout, /MANIFEST\.json: databases\.1 not a plain database name/);

  await forgeNewestSet(
    () => Promise.resolve(),
    (manifest) => manifest.databases.push('unconfigured_db'),
  );
  const unconfigured = await host.run(['verify', '--import']);
  assert.equal(unconfigured.exitCode, 1, unconfigured.stdout + unconfigured.stderr);
  assert.match(unconfigured.stdout, /names database\(s\) "unconfigured_db" that are not configured \(agama\)/);

  await forgeNewestSet(
    () => Promise.resolve(),
    (manifest) => manifest.files.push({ name: '../../../etc/passwd', size: 1, sha256: '0'.repeat(64) }),
  );
  const traversal = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(traversal.exitCode, 1, traversal.stdout + traversal.stderr);
  assert.match(traversal.stderr, /MANIFEST\.json: files\.\d+\.name not a plain relative file name/);

  assert.equal(await mariadb.sql('SHOW DATABASES'), databasesBefore, 'no scratch or other database appeared');
  assert.equal(await mariadb.fingerprint(MYSQL_DATABASE), original);
  await assertSentinelsUntouched();
});

test("children run as backup get a built environment, never root's, and no controlling terminal", async () => {
  const { uid } = await backupUser();
  const marker = 'ROOT_ONLY_MARKER_7f3a';
  const seen = new Map<number, string>();
  const restore = execa(process.execPath, [NODE_FLAG, AGENT, '--config', host.configFile, 'verify', '--import'], {
    reject: false,
    stdin: 'ignore',
    env: { [marker]: 'x', HOME: '/root', PATH: `/tmp/not-a-system-dir:${process.env['PATH'] ?? ''}` },
  });
  let done = false;
  void restore.finally(() => (done = true));
  while (!done) {
    for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)) {
      if (seen.has(pid)) continue;
      try {
        if ((await stat(`/proc/${pid}`)).uid !== uid || !(await descendsFrom(pid, restore.pid))) continue;
        seen.set(pid, (await readFile(`/proc/${pid}/environ`, 'latin1')).replaceAll('\0', '\n'));
      } catch {
        // gone already
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await restore;
  const environments = [...seen.values()];
  assert.ok(
    environments.some((env) => env.includes('GNUPGHOME=')),
    'duplicity ran as backup and was seen',
  );
  for (const env of environments) {
    assert.doesNotMatch(env, new RegExp(marker));
    assert.doesNotMatch(env, /^HOME=\/root$/m);
    assert.doesNotMatch(env, /not-a-system-dir/);
  }
});

async function descendsFrom(pid: number, ancestor: number | undefined): Promise<boolean> {
  for (let current = pid; current > 1;) {
    if (current === ancestor) return true;
    const line = await readFile(`/proc/${current}/stat`, 'utf8');
    current = Number(line.slice(line.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return false;
}

test('the command root runs again as backup has no controlling terminal (no TIOCSTI into root shell)', async () => {
  const { uid } = await backupUser();
  await host.writeConfig({ influxdb: null, agent: { catch_up: 'false' } });
  // python's pty gives the agent a real terminal, as an operator's shell would.
  const daemon = execa(
    'python3',
    ['-c', 'import pty, sys; pty.spawn(sys.argv[1:])', process.execPath, AGENT, '--config', host.configFile, 'daemon'],
    { reject: false, stdin: 'ignore' },
  );
  let rootPid: number | undefined;
  try {
    let agentStat: string | undefined;
    let rootStat: string | undefined;
    for (let tries = 0; tries < 200 && agentStat === undefined; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (!cmdline.includes(`${AGENT}\0--config\0${host.configFile}\0daemon`) || cmdline.startsWith('python3'))
          continue;
        const owner = (await stat(`/proc/${pid}`).catch(() => undefined))?.uid;
        const line = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
        if (owner === uid && !cmdline.startsWith('setpriv')) agentStat = line;
        if (owner === 0 && !cmdline.startsWith('setpriv')) {
          rootStat = line;
          rootPid = Number(pid);
        }
      }
    }
    assert.ok(agentStat !== undefined && rootStat !== undefined, 'both the root and the backup process were seen');
    const ttyOf = (line: string) => Number(line.slice(line.lastIndexOf(')') + 2).split(' ')[4]);
    assert.notEqual(ttyOf(rootStat), 0, "root's process has the terminal (the test's pty works)");
    assert.equal(ttyOf(agentStat), 0, 'the backup process has no controlling terminal');
  } finally {
    // root's process passes SIGTERM on to the daemon it started as backup, then both exit.
    if (rootPid !== undefined) process.kill(rootPid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    daemon.kill('SIGTERM');
    await daemon;
    await host.writeConfig({ influxdb: null });
  }
});
