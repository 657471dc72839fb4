// A staging filesystem that fills up, as on a default Debian host where /var/lib holds both the
// staging directory and the live database: a dump must leave agent.staging_reserve free. A small
// tmpfs stands for that filesystem, with a file beside the staging directory for the database.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { type AgentHost, type AgentResult, MYSQL_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { leftoverProcesses } from './harness/leftovers.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { chownToBackup } from './harness/temp-dir.js';

const MiB = 1024 ** 2;
/** Too small for the dump: without the reserve being watched, the dump would fill it. */
const SMALL_DISK_MIB = 40;
/** Room for two dumps and the reserve. */
const DISK_MIB = 128;

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;
let disk: string;
let staging: string;
let mounted = false;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 200);
  // About 40 MB of dump: as big as the small disk, less than half the large one.
  await mariadb.sql(
    'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(128), b CHAR(64), c CHAR(64)) ENGINE=InnoDB; ' +
      'INSERT INTO bulk SELECT seq, SHA2(seq, 512), SHA2(seq + 1, 256), MD5(seq) FROM seq_1_to_160000',
    MYSQL_DATABASE,
  );
  host = await makeAgentHost({ mariadb, target });
  disk = join(host.dir, 'disk');
  await mkdir(disk);
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_DISK_MIB}m,mode=0755`, 'tmpfs', disk]);
  mounted = true;
  staging = join(disk, 'staging');
  await mkdir(staging, { mode: 0o700 });
  await chownToBackup(staging);
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop()]);
  if (mounted) {
    const plain = await execa('umount', [disk], { reject: false });
    if (plain.exitCode !== 0) await execa('umount', ['--lazy', disk], { reject: false });
  }
  await host?.remove();
});

async function freeBytes(): Promise<number> {
  const stats = await statfs(disk);
  return stats.bavail * stats.bsize;
}

async function configure(reserve: string): Promise<void> {
  await host.writeConfig({ agent: { staging_dir: staging, staging_reserve: reserve } });
}

/** A run, with the least free space on the disk seen every few milliseconds while it ran. */
async function runWatchingDisk(): Promise<{ result: AgentResult; leastFree: number }> {
  let leastFree = await freeBytes();
  let running = true;
  const sampler = (async () => {
    while (running) {
      leastFree = Math.min(leastFree, await freeBytes());
      await sleep(2);
    }
  })();
  const result = await host.run(['run']).finally(() => {
    running = false;
  });
  await sampler;
  return { result, leastFree };
}

function dumpCommandsRun(result: AgentResult): number {
  return result.logs.filter((log) => Array.isArray(log['argv']) && /dump$/.test(String(log['argv'][0]))).length;
}

const stagedDump = (): string => join(staging, 'mysql', `${MYSQL_DATABASE}.sql`);

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

test('a first dump larger than the disk is stopped at the reserve, long before the disk is full', async (t) => {
  const reserve = 20 * MiB;
  await configure('50%');
  const { result, leastFree } = await runWatchingDisk();

  t.diagnostic(`least free space seen: ${(leastFree / MiB).toFixed(1)} MiB`);
  assert.equal(result.exitCode, 1, result.stdout + result.stderr);
  const error = String(summaryOf(result, 'mysql')['error']);
  assert.match(
    error,
    /^stopped the mysql dump: free space in \S+ fell to [\d.]+ MiB, below the 20\.0 MiB \(50% of 40\.0 MiB\) that must stay free \(agent\.staging_reserve\); the partial dump is removed and the last dump kept \(free space on that filesystem, move agent\.staging_dir to a filesystem with more room, or lower agent\.staging_reserve\)$/,
  );
  assert.doesNotMatch(result.stdout + result.stderr, /No space left|Errcode: 28/);
  assert.ok(
    leastFree >= reserve / 2,
    `free space went down to ${(leastFree / MiB).toFixed(1)} MiB, below half the 20 MiB reserve`,
  );
  assert.deepEqual(await readdir(staging), [], 'the partial dump is removed');
  assert.deepEqual(await leftoverProcesses(host.dir), []);
});

test('a dump that would not fit above the reserve beside the last one is refused at once; the last dump is kept', async () => {
  await execa('mount', ['-o', `remount,size=${DISK_MIB}m`, disk]);
  await configure('10%');
  const first = await host.run(['run']);
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
  const lastDump = await sha256(stagedDump());

  // The "database" grows until the last dump's size no longer fits above the reserve, though the
  // free space itself is still above it.
  const reserve = Math.ceil((DISK_MIB * MiB) / 10);
  const estimate = (await readFile(stagedDump())).length;
  const filler = join(disk, 'database');
  await writeFile(filler, Buffer.alloc((await freeBytes()) - estimate - reserve / 2));
  assert.ok((await freeBytes()) > reserve);
  await changeData(mariadb, MYSQL_DATABASE, 7);

  const refused = await host.run(['run']);
  assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
  const summary = summaryOf(refused, 'mysql');
  assert.equal(summary['stage'], 'dump');
  assert.match(
    String(summary['error']),
    /^not enough room for the mysql dump in \S+: [\d.]+ MiB free, about [\d.]+ MiB needed \(the size of the last dump\), and 12\.8 MiB \(10% of 128\.0 MiB\) must stay free \(agent\.staging_reserve\); nothing was dumped and the last dump is kept \(free space on that filesystem, move agent\.staging_dir to a filesystem with more room, or lower agent\.staging_reserve\)$/,
  );
  assert.ok(Number(summary['durationMs']) < 10_000, `refused after ${String(summary['durationMs'])} ms`);
  assert.equal(dumpCommandsRun(refused), 0, 'no dump was started');
  assert.equal(await sha256(stagedDump()), lastDump, 'the last dump is byte-for-byte what it was');
  assert.deepEqual((await readdir(staging)).sort(), ['mysql']);
  assert.deepEqual(await leftoverProcesses(host.dir), []);

  await rm(filler);
  const next = await host.run(['run']);
  assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  assert.equal(summaryOf(next, 'mysql')['kind'], 'incremental');
  assert.match(await readFile(stagedDump(), 'utf8'), /changed@7/);
});
