// root-fs against a hostile backup user: real files, a real second uid, real races.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chown, link, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { agentUser } from './privileges.js';
import { ensureRootDirectory, openRegularFile, removeTree, takeTree } from './root-fs.js';

let work: string;
let sentinelDir: string;
let backup: { uid: number; gid: number };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'root-fs-'));
  sentinelDir = await mkdtemp(join(tmpdir(), 'root-only-'));
  await writeFile(join(sentinelDir, 'keep'), 'root only\n', { mode: 0o600 });
  backup = await agentUser();
});

after(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(sentinelDir, { recursive: true, force: true });
});

async function assertSentinelIntact(): Promise<void> {
  assert.deepEqual(await readdir(sentinelDir), ['keep']);
  const info = await stat(join(sentinelDir, 'keep'));
  assert.equal(info.uid, 0);
  assert.equal(info.mode & 0o777, 0o600);
  assert.equal(await readFile(join(sentinelDir, 'keep'), 'utf8'), 'root only\n');
}

/** A tree that belongs to backup, as a download does while duplicity writes it. */
async function backupTree(name: string): Promise<string> {
  const tree = join(work, name);
  await mkdir(join(tree, 'a', 'b'), { recursive: true });
  for (let i = 0; i < 50; i++) await writeFile(join(tree, 'a', 'b', `f${i}`), 'data');
  await promisify(execFile)('chown', ['-R', `${backup.uid}:${backup.gid}`, tree]);
  return tree;
}

test('removeTree deletes what a symlink in the tree points at never, even while backup swaps a directory for one', async () => {
  for (let round = 0; round < 10; round++) {
    const tree = await backupTree(`race-${round}`);
    await symlink(sentinelDir, join(tree, 'planted'));
    // The racer swaps a/b for a symlink to the root-only directory as fast as it can.
    const racer = spawn(
      'setpriv',
      [
        `--reuid=${backup.uid}`,
        `--regid=${backup.gid}`,
        '--clear-groups',
        'python3',
        '-c',
        `import os,sys
t=sys.argv[1]; s=sys.argv[2]
while True:
    try:
        os.rename(t+'/a/b', t+'/a/b.x'); os.symlink(s, t+'/a/b'); os.unlink(t+'/a/b'); os.rename(t+'/a/b.x', t+'/a/b')
    except OSError:
        pass`,
        tree,
        sentinelDir,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      await removeTree(tree);
    } catch {
      // A name that changed under the walk may fail the removal; it must never reach the sentinel.
    } finally {
      racer.kill('SIGKILL');
    }
    await assertSentinelIntact();
  }
});

test('takeTree makes every directory and file root-only, and refuses a symlink, a FIFO or a hard link by name', async () => {
  const tree = await backupTree('take');
  await takeTree(tree, true);
  for (const path of [tree, join(tree, 'a'), join(tree, 'a', 'b')]) {
    const info = await stat(path);
    assert.equal(info.uid, 0, path);
    assert.equal(info.mode & 0o777, 0o700, path);
  }
  const file = await stat(join(tree, 'a', 'b', 'f0'));
  assert.equal(file.uid, 0);
  assert.equal(file.mode & 0o777, 0o600);

  const withLink = await backupTree('take-link');
  await symlink(join(sentinelDir, 'keep'), join(withLink, 'a', 'dump.sql'));
  await assert.rejects(takeTree(withLink, true), /a\/dump\.sql is a symbolic link or not what it should be \(ELOOP\)/);

  const withFifo = await backupTree('take-fifo');
  await promisify(execFile)('mkfifo', [join(withFifo, 'a', 'dump.sql')]);
  await assert.rejects(takeTree(withFifo, true), /a\/dump\.sql is not a plain file \(a FIFO/);

  const withHardLink = await backupTree('take-hardlink');
  const rootFile = join(work, 'root-file');
  await writeFile(rootFile, 'root\n', { mode: 0o640 });
  await link(rootFile, join(withHardLink, 'a', 'dump.sql'));
  await assert.rejects(takeTree(withHardLink, true), /a\/dump\.sql is not a plain file \(a file with 2 hard links/);
  assert.equal((await stat(rootFile)).mode & 0o777, 0o640, 'the linked file kept its mode');
  await assertSentinelIntact();
});

test('openRegularFile does not hang on a FIFO and does not follow a symlink', async () => {
  const fifo = join(work, 'fifo');
  await promisify(execFile)('mkfifo', [fifo]);
  await assert.rejects(openRegularFile(fifo), /is not a plain file \(a FIFO/);
  const planted = join(work, 'planted');
  await symlink(join(sentinelDir, 'keep'), planted);
  await assert.rejects(openRegularFile(planted), /is a symbolic link/);
});

test('ensureRootDirectory refuses a directory under one backup owns, and one that is not root-only', async () => {
  const owned = join(work, 'backup-owned');
  await mkdir(owned);
  await chown(owned, backup.uid, backup.gid);
  await assert.rejects(
    ensureRootDirectory(join(owned, 'restore'), 0o711, 'agent.restore_dir'),
    new RegExp(`agent\\.restore_dir ${owned}/restore lies under ${owned}, which belongs to uid ${backup.uid}`),
  );
  const handedOver = join(work, 'handed-over');
  await mkdir(handedOver);
  await chown(handedOver, backup.uid, backup.gid);
  await assert.rejects(
    ensureRootDirectory(handedOver, 0o711, 'agent.restore_dir'),
    /is not a directory only root can change \(a directory, owner uid 34/,
  );
  const fresh = join(work, 'fresh');
  await ensureRootDirectory(fresh, 0o711, 'agent.restore_dir');
  const info = await stat(fresh);
  assert.equal(info.uid, 0);
  assert.equal(info.mode & 0o777, 0o711);
});
