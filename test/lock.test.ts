// The run lock against a hostile `backup` user and against holders the other side cannot see.
// Root takes the lock in a directory backup owns (restore and verify --import do, in the cache
// directory): here as this test process and as the built CLI. Backup plants symlinks, a FIFO and a
// hard link there, pointing at a sentinel file in a directory only root can enter; the sentinel must
// come through unchanged. Holders live in other PID namespaces, as root's restore is invisible to the
// daemon under ProtectProc=invisible and PrivateUsers=yes.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, lstat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { execa } from 'execa';
import { LockBusyError, LockFileError, acquireBriefRunLock, acquireRunLock } from '../src/system/lock.js';
import { AGENT, NODE_FLAG } from './harness/agent.js';
import { asBackupUser, backupUser, chownToBackup, makeTempDir, removeDir } from './harness/temp-dir.js';

const SENTINEL_TEXT = 'root only: must not change\n';
const RESTORE = 'backup-agent restore mysql';
const LOCK_MODULE = new URL('../dist/system/lock.js', import.meta.url).pathname;
const TIMEOUT = { timeout: 60_000 };

let dir: string;
let cache: string;
let vault: string;
let sentinel: string;
let lockFile: string;
let configFile: string;

before(async () => {
  dir = await makeTempDir('lock');
  cache = join(dir, 'cache');
  for (const owned of ['cache', 'staging', 'gnupg']) {
    await mkdir(join(dir, owned), { mode: 0o700 });
    await chownToBackup(join(dir, owned));
  }
  // mkdtemp makes it 0700 root: root writes there, backup can neither write nor look in.
  vault = await mkdtemp(join(tmpdir(), 'lock-vault-'));
  sentinel = join(vault, 'sentinel');
  await writeFile(sentinel, SENTINEL_TEXT, { mode: 0o600 });
  lockFile = join(cache, 'backup-agent.lock');

  const passphrase = join(dir, 'passphrase');
  await writeFile(passphrase, 'a passphrase the CLI reads before it locks\n', { mode: 0o600 });
  await chownToBackup(passphrase);
  configFile = join(dir, 'backup-agent.ini');
  // Nothing listens on port 1: should a run get past the lock, it fails instead of uploading.
  const ini = {
    agent: { cache_dir: cache, staging_dir: join(dir, 'staging'), restore_dir: join(dir, 'restore') },
    target: {
      url: 'rsync://nobody@127.0.0.1:1//nowhere',
      passphrase_file: passphrase,
      gnupg_home: join(dir, 'gnupg'),
    },
    mysql: { databases: 'agama' },
    influxdb: { databases: 'telegraf', host: '127.0.0.1:1', http_url: 'http://127.0.0.1:1' },
  };
  await writeFile(
    configFile,
    Object.entries(ini)
      .map(([section, keys]) => [`[${section}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`), ''].join('\n'))
      .join('\n'),
    { mode: 0o644 },
  );
});

beforeEach(async () => {
  for (const name of await readdir(cache)) await rm(join(cache, name), { recursive: true, force: true });
});

after(async () => {
  await removeDir(dir);
  await removeDir(vault);
});

async function asBackup(argv: readonly string[]): Promise<void> {
  await execa('setpriv', await asBackupUser(argv), { timeout: 10_000 });
}

async function assertSentinelIntact(): Promise<void> {
  const info = await stat(sentinel);
  assert.equal(await readFile(sentinel, 'utf8'), SENTINEL_TEXT, 'the sentinel was written');
  assert.equal(info.uid, 0, 'the sentinel was given away');
  assert.equal(info.mode & 0o7777, 0o600, 'the sentinel changed mode');
}

/** The built CLI as root, exactly as an operator runs it. */
function agent(args: readonly string[]) {
  return execa(process.execPath, [NODE_FLAG, AGENT, '--config', configFile, ...args], {
    reject: false,
    stdin: 'ignore',
    timeout: 60_000,
  });
}

test('a symlink backup plants at the lock path is refused; what it points to is untouched', TIMEOUT, async () => {
  await asBackup(['ln', '-s', sentinel, lockFile]);
  await assert.rejects(acquireRunLock(lockFile, RESTORE, await backupUser()), (error: unknown) => {
    assert.ok(error instanceof LockFileError, String(error));
    assert.match(error.message, /is a symbolic link; refusing to follow it/);
    return true;
  });
  await assertSentinelIntact();
  assert.ok((await lstat(lockFile)).isSymbolicLink(), 'root removed or replaced what backup planted');
});

test(
  'symlinks at the names of the old temporary files: root locks a file of its own and hands it to backup',
  TIMEOUT,
  async () => {
    await asBackup(['ln', '-s', sentinel, `${lockFile}.${process.pid}`]);
    const owner = await backupUser();
    const lock = await acquireRunLock(lockFile, RESTORE, owner);
    try {
      await assertSentinelIntact();
      const info = await lstat(lockFile);
      assert.ok(info.isFile());
      assert.equal(info.nlink, 1);
      assert.deepEqual([info.uid, info.gid], [owner.uid, owner.gid], 'the daemon must be able to open it later');
      const holder = JSON.parse(await readFile(lockFile, 'utf8')) as { pid: number; command: string };
      assert.deepEqual([holder.pid, holder.command], [process.pid, RESTORE]);
    } finally {
      await lock.release();
    }
    assert.ok((await lstat(lockFile)).isFile(), 'the lock file is never unlinked');
  },
);

test(
  'the CLI: restore --dry-run as root refuses a planted symlink, names it, and leaves the sentinel',
  TIMEOUT,
  async () => {
    await asBackup(['ln', '-s', sentinel, lockFile]);
    const result = await agent(['restore', 'mysql', '--dry-run']);
    assert.equal(result.exitCode, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`the lock file ${lockFile} is a symbolic link; refusing to follow it`));
    await assertSentinelIntact();
  },
);

test('a FIFO at the lock path does not hang root: refused at once', { timeout: 15_000 }, async () => {
  await asBackup(['mkfifo', lockFile]);
  const started = Date.now();
  await assert.rejects(acquireRunLock(lockFile, RESTORE, await backupUser()), /is not a plain file; refusing/);
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  assert.ok((await lstat(lockFile)).isFIFO());
});

test('a hard link at the lock path is refused; the linked file keeps its content', TIMEOUT, async () => {
  const own = join(cache, 'own');
  await asBackup(['sh', '-c', 'echo backup data > "$1" && ln "$1" "$2"', 'sh', own, lockFile]);
  await assert.rejects(acquireRunLock(lockFile, RESTORE, await backupUser()), /is a file with 2 links; refusing/);
  assert.equal(await readFile(own, 'utf8'), 'backup data\n');
});

test("root's lock holds against backup in a PID namespace where root's pid does not exist", TIMEOUT, async () => {
  const inNamespace = ['unshare', '--pid', '--fork', '--mount-proc'];
  // The premise: from there, the holder looks dead to anyone who asks /proc.
  const look = await execa(inNamespace[0] ?? '', [...inNamespace.slice(1), 'test', '-e', `/proc/${process.pid}`], {
    reject: false,
    timeout: 10_000,
  });
  assert.equal(look.exitCode, 1, 'the holder is visible from the namespace: the test proves nothing');

  const lock = await acquireRunLock(lockFile, RESTORE, await backupUser());
  try {
    const argv = await asBackupUser([
      process.execPath,
      NODE_FLAG,
      AGENT,
      '--config',
      configFile,
      'run',
      '--source',
      'influxdb',
    ]);
    const run = await execa(inNamespace[0] ?? '', [...inNamespace.slice(1), 'setpriv', ...argv], {
      reject: false,
      timeout: 60_000,
    });
    assert.equal(run.exitCode, 75, `${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(`holds the lock ${lockFile}: pid ${process.pid}, started \\S+ \\(${RESTORE}\\)`),
    );
  } finally {
    await lock.release();
  }
});

test(
  'a holder in another PID namespace is never overridden; killed with kill -9, its lock is free at once',
  TIMEOUT,
  async () => {
    // The agent's own lock code, as backup, as pid 1 of a new PID namespace.
    const script = `import { acquireRunLock } from ${JSON.stringify(LOCK_MODULE)};
await acquireRunLock(process.argv[1], 'backup-agent run');
process.stdout.write('locked\\n');
setInterval(() => undefined, 60_000);`;
    const argv = await asBackupUser([process.execPath, '--input-type=module', '-e', script, lockFile]);
    const holder = execa('unshare', ['--pid', '--fork', '--mount-proc', 'setpriv', ...argv], {
      reject: false,
      timeout: 60_000,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
        void holder.then((result) => reject(new Error(`the holder ended: ${result.stderr}`)));
      });
      await assert.rejects(acquireRunLock(lockFile, RESTORE, await backupUser()), (error: unknown) => {
        assert.ok(error instanceof LockBusyError, String(error));
        assert.match(error.activity, /^run by pid 1 in progress, started /);
        return true;
      });

      const children = await readFile(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8');
      const node = Number(children.trim());
      assert.ok(node > 0, `no holder process under unshare (${children})`);
      process.kill(node, 'SIGKILL');
      await holder;
      const freed = Date.now();
      const lock = await acquireRunLock(lockFile, RESTORE, await backupUser());
      await lock.release();
      assert.ok(Date.now() - freed < 2_000, `the lock took ${Date.now() - freed} ms to free`);
    } finally {
      holder.kill('SIGKILL');
    }
  },
);

test('a run waits for a brief holder (a list stopping the gpg-agent) but not for a run', TIMEOUT, async () => {
  const brief = await acquireBriefRunLock(lockFile, 'backup-agent list (stopping the gpg-agent)');
  const released = new Promise((resolve) => setTimeout(resolve, 700)).then(() => brief.release());
  const started = Date.now();
  const run = await acquireRunLock(lockFile, 'daemon (scheduled)');
  const waited = Date.now() - started;
  await released;
  try {
    assert.ok(waited >= 500, `the run took the lock after ${waited} ms, while the list still held it`);
    await assert.rejects(acquireRunLock(lockFile, 'backup-agent run'), LockBusyError);
    await assert.rejects(acquireBriefRunLock(lockFile, 'backup-agent status (stopping the gpg-agent)'), LockBusyError);
  } finally {
    await run.release();
  }
});
