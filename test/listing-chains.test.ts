// The chain status a backup run reads from one rsync --list-only of the target
// (duplicity/listing-chains.ts) against what the real duplicity 0.8 collection-status says about the
// same target, on real targets built by the agent (MariaDB, sshd+rsync) and then damaged as in
// test/self-heal.test.ts: empty, missing, one full, full + 2 incrementals, two chains, a full
// without its manifest, an incremental whose predecessor is gone, missing signature files, deleted
// volumes.
//
// Two readings of duplicity. With an empty cache it sees what the listing sees, the target alone:
// there the whole ChainStatus must be equal, every chain, set, time, volume count, encryption flag
// and counter. With the agent's own cache, as the runs used to call it, it also counts the
// signature files the cache holds: there the fields the run uses must be equal (newest full and
// number of chains for the decision and planRetention, orphaned and incomplete counts for
// planRetention and verifyNewFull, the newest full's volumes for verifyNewFull), except where the
// target lost a signature file the cache still has: duplicity then calls the chain complete and the
// listing does not, which only ever skips retention (the chain check of the run heals such a chain
// with a full anyway).
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { type AgentContext, createContext, duplicitySettings } from '../src/context/context.js';
import type { ChainStatus } from '../src/domain.js';
import { newestFull, parseCollectionStatus } from '../src/duplicity/collection-status.js';
import { type DuplicitySettings, duplicityEnvironment } from '../src/duplicity/command.js';
import { isMissingTargetDirectory } from '../src/duplicity/failures.js';
import { chainStatusFromListing } from '../src/duplicity/listing-chains.js';
import { Duplicity } from '../src/duplicity/run.js';
import { readTargetListing } from '../src/duplicity/target-listing.js';
import { childUrl } from '../src/remote/rsync-url.js';
import { stopSharedConnection } from '../src/remote/ssh-master.js';
import { ENGINES } from '../src/sources/registry.js';
import { type SystemUser, agentUser } from '../src/system/privileges.js';
import { type AgentHost, MYSQL_DATABASE, makeAgentHost, summaryOf } from './harness/agent.js';
import { type MariaDb, changeData, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { chownToBackup, makeTempDir, removeDir } from './harness/temp-dir.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;
let context: AgentContext;
let user: SystemUser;
let scratch: string;
let seed = 0;

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 300);
  // A few MB that compress poorly: fulls of several 1 MB volumes, so that volume counts are tested.
  await mariadb.sql(
    'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(128), b CHAR(64)) ENGINE=InnoDB; ' +
      'INSERT INTO bulk SELECT seq, SHA2(seq, 512), SHA2(seq + 1, 256) FROM seq_1_to_30000',
    MYSQL_DATABASE,
  );
  host = await makeAgentHost({ mariadb, target });
  await host.writeConfig({ target: { volume_size: '1' } });
  context = await createContext(
    await loadConfig(host.configFile, ENGINES),
    pino({ level: 'silent' }),
    new AbortController().signal,
  );
  user = await agentUser();
  scratch = await makeTempDir('listing-chains');
  // duplicity runs as backup, as in the agent; its empty cache, temporary and ssh socket directories
  // are backup's (the agent's own temporary directory appears only with its first run).
  for (const dir of ['empty-cache', 'backup-tmp', 'backup-ssh']) await mkdir(join(scratch, dir));
  await chownToBackup(scratch);
  await mkdir(join(scratch, 'root-ssh'), { mode: 0o700 });
});

after(async () => {
  if (context !== undefined) {
    await stopSharedConnection(context.runner, settings('mysql', 'root').url, settings('mysql', 'root'));
    await stopSharedConnection(context.runner, settings('mysql', 'backup').url, settings('mysql', 'backup'), user);
  }
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove(), scratch && removeDir(scratch)]);
});

/** The agent's settings for mysql, pointed at another directory of the target. */
function settings(dir: string, sshUser: 'root' | 'backup'): DuplicitySettings {
  return {
    ...duplicitySettings(context, 'mysql'),
    url: childUrl(context.config.target.url, dir),
    // root's ssh and backup's must not share one connection master.
    controlDir: join(scratch, `${sshUser}-ssh`),
    tempDir: join(scratch, 'backup-tmp'),
  };
}

/** What a run reads: the listing, and the status the decision is made from. */
async function fromListing(dir: string): Promise<{ status: ChainStatus; directoryExists: boolean }> {
  const listing = await readTargetListing(context.runner, settings(dir, 'root'), {
    ms: 60_000,
    step: `listing ${dir}`,
  });
  return { status: chainStatusFromListing(listing.files), directoryExists: listing.directoryExists };
}

/** duplicity collection-status, the agent's own command line, with an empty cache or the agent's. */
async function fromDuplicity(
  dir: string,
  cache: 'empty' | 'agent',
): Promise<{ status: ChainStatus; directoryExists: boolean }> {
  const archiveDir = cache === 'empty' ? join(scratch, 'empty-cache') : context.config.agent.cache_dir;
  const duplicity = new Duplicity(
    context.runner,
    { ...settings(dir, 'backup'), archiveDir },
    duplicityEnvironment(context.passphrase, context.config.target.gnupg_home),
    { target: 120_000, restore: 120_000 },
    user,
  );
  // A directory that does not exist yet on the target holds no chain, as the listing says too.
  try {
    return { status: await duplicity.chainStatus(), directoryExists: true };
  } catch (error) {
    if (!isMissingTargetDirectory(error)) throw error;
    return { status: { chains: [], orphanedSets: 0, incompleteSets: 0 }, directoryExists: false };
  }
}

/** The fields the run decides and checks with (see the top of this file). */
function usedByTheRun(status: ChainStatus): unknown {
  const newest = newestFull(status);
  const chain = status.chains.find((candidate) =>
    candidate.sets.some((set) => set.kind === 'full' && set.time.getTime() === newest?.getTime()),
  );
  return {
    newestFull: newest?.toISOString(),
    chains: status.chains.length,
    orphanedSets: status.orphanedSets,
    incompleteSets: status.incompleteSets,
    newestFullVolumes: chain?.sets.find((set) => set.kind === 'full')?.volumes,
  };
}

/** Equal to duplicity's view of the target alone in everything, and to its view with the cache in what the run uses. */
async function assertSameChains(dir: string, cacheView: 'same' | 'cache-has-signatures'): Promise<ChainStatus> {
  const listed = await fromListing(dir);
  const alone = await fromDuplicity(dir, 'empty');
  assert.deepEqual(listed, alone, `${dir}: the listing against collection-status with an empty cache`);
  const cached = await fromDuplicity(dir, 'agent');
  assert.deepEqual(
    usedByTheRun(listed.status),
    usedByTheRun(cached.status),
    `${dir}: the listing against collection-status with the agent's cache`,
  );
  const complete = (status: ChainStatus): boolean | undefined => status.chains.at(-1)?.complete;
  if (cacheView === 'same') assert.equal(complete(listed.status), complete(cached.status), dir);
  else assert.deepEqual([complete(listed.status), complete(cached.status)], [false, true], dir);
  return listed.status;
}

/** Kinds and volume counts per chain, and the counters: what each state is meant to show. */
function shape(status: ChainStatus): unknown {
  return {
    chains: status.chains.map((chain) => [
      chain.complete ? 'complete' : 'no-sig',
      ...chain.sets.map((set) => `${set.kind}:${set.volumes}`),
    ]),
    orphaned: status.orphanedSets,
    incomplete: status.incompleteSets,
  };
}

async function backup(args: readonly string[], kind: 'full' | 'incremental'): Promise<void> {
  await changeData(mariadb, MYSQL_DATABASE, ++seed);
  const result = await host.run(['run', ...args]);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(summaryOf(result, 'mysql')['kind'], kind);
}

/** A copy of the mysql directory on the target, to damage without touching the chain the runs extend. */
async function copyOfTarget(name: string, damage: (names: string[]) => string[]): Promise<string> {
  const dir = join(target.targetDir, name);
  await rm(dir, { recursive: true, force: true });
  await cp(join(target.targetDir, 'mysql'), dir, { recursive: true, preserveTimestamps: true });
  const names = (await readdir(dir)).sort();
  const doomed = damage(names);
  assert.ok(doomed.length > 0, `${name}: nothing to remove`);
  for (const file of doomed) await rm(join(dir, file));
  return name;
}

const matching = (pattern: RegExp) => (names: string[]) => names.filter((name) => pattern.test(name));

/** Every file (manifest, volumes, signatures) of the oldest or newest full or incremental on the target. */
function filesOfSet(names: readonly string[], kind: 'full' | 'inc', which: 'oldest' | 'newest'): string[] {
  const manifests = names.filter((name) => new RegExp(`^duplicity-${kind}\\..*\\.manifest\\.gpg$`).test(name));
  const manifest = which === 'oldest' ? manifests[0] : manifests.at(-1);
  assert.ok(manifest !== undefined, `no ${kind} on the target`);
  const times = manifest.slice(`duplicity-${kind}.`.length, -'.manifest.gpg'.length);
  const signatures = kind === 'full' ? 'duplicity-full-signatures' : 'duplicity-new-signatures';
  return names.filter(
    (name) => name.startsWith(`duplicity-${kind}.${times}.`) || name.startsWith(`${signatures}.${times}.`),
  );
}

const volumes = (files: readonly string[]): number => files.filter((name) => name.includes('.difftar.')).length;

test('no directory and an empty one: no chain, in the listing as in duplicity', async () => {
  const missing = await fromListing('not-there');
  assert.deepEqual(missing, { status: { chains: [], orphanedSets: 0, incompleteSets: 0 }, directoryExists: false });
  assert.deepEqual(missing, await fromDuplicity('not-there', 'empty'));
  await mkdir(join(target.targetDir, 'empty'));
  assert.deepEqual(shape(await assertSameChains('empty', 'same')), { chains: [], orphaned: 0, incomplete: 0 });
});

test('one full, then a full and two incrementals, then two chains: the same chains', async () => {
  await backup([], 'full');
  const [full] = await assertChains('mysql');
  assert.ok(full !== undefined && full.volumes >= 3, 'the full has several volumes, so one can go from its middle');
  await backup([], 'incremental');
  await backup([], 'incremental');
  const status = await assertSameChains('mysql', 'same');
  assert.deepEqual(shape(status), {
    chains: [['complete', `full:${full.volumes}`, 'incremental:1', 'incremental:1']],
    orphaned: 0,
    incomplete: 0,
  });
  // The last incremental without its signatures: duplicity drops that set from the chain and counts
  // it incomplete. Compared with the empty cache only: the next runs change the agent's.
  const unsigned = await copyOfTarget('last-signatures-missing', (names) =>
    matching(/^duplicity-new-signatures\./)(names).slice(-1),
  );
  const listed = await fromListing(unsigned);
  assert.deepEqual(listed, await fromDuplicity(unsigned, 'empty'));
  assert.deepEqual(shape(listed.status), {
    chains: [['complete', `full:${full.volumes}`, 'incremental:1']],
    orphaned: 0,
    incomplete: 1,
  });

  await backup(['--full'], 'full');
  await backup([], 'incremental');
  await assertSameChains('mysql', 'same');
});

/** Compares the mysql directory as in assertSameChains; returns its fulls, oldest first. */
async function assertChains(dir: string): Promise<{ volumes: number }[]> {
  const status = await assertSameChains(dir, 'same');
  return status.chains.flatMap((chain) => chain.sets.filter((set) => set.kind === 'full'));
}

test('a damaged target: incomplete and orphaned sets, missing signatures and volumes read alike', async () => {
  const names = (await readdir(join(target.targetDir, 'mysql'))).sort();
  const older = `full:${volumes(filesOfSet(names, 'full', 'oldest'))}`;
  const newer = volumes(filesOfSet(names, 'full', 'newest'));
  const olderChain = ['no-sig', older, 'incremental:1', 'incremental:1'];
  assert.deepEqual(shape(await assertSameChains('mysql', 'same')), {
    chains: [olderChain, ['complete', `full:${newer}`, 'incremental:1']],
    orphaned: 0,
    incomplete: 0,
  });
  const cases: {
    readonly name: string;
    readonly damage: (names: string[]) => string[];
    readonly cacheView: 'same' | 'cache-has-signatures';
    readonly shape: unknown;
  }[] = [
    {
      // The newest full is incomplete; its incremental joins no chain.
      name: 'full-manifest-deleted',
      damage: (files) => filesOfSet(files, 'full', 'newest').filter((name) => name.includes('.manifest.')),
      cacheView: 'same',
      shape: { chains: [['complete', older, 'incremental:1', 'incremental:1']], orphaned: 1, incomplete: 1 },
    },
    {
      name: 'predecessor-deleted',
      damage: (files) => filesOfSet(files, 'inc', 'oldest'),
      cacheView: 'same',
      shape: {
        chains: [
          ['no-sig', older],
          ['complete', `full:${newer}`, 'incremental:1'],
        ],
        orphaned: 1,
        incomplete: 0,
      },
    },
    {
      name: 'full-signatures-deleted',
      damage: (files) => matching(/^duplicity-full-signatures\./)(files).slice(-1),
      cacheView: 'cache-has-signatures',
      shape: {
        chains: [olderChain, ['no-sig', `full:${newer}`, 'incremental:1']],
        orphaned: 0,
        incomplete: 0,
      },
    },
    {
      name: 'full-volume-deleted',
      damage: (files) => filesOfSet(files, 'full', 'newest').filter((name) => name.includes('.vol2.')),
      cacheView: 'same',
      shape: {
        chains: [olderChain, ['complete', `full:${newer - 1}`, 'incremental:1']],
        orphaned: 0,
        incomplete: 0,
      },
    },
    {
      // duplicity lists no full without volumes: the newest full is then the older chain's.
      name: 'full-volumes-all-deleted',
      damage: (files) => filesOfSet(files, 'full', 'newest').filter((name) => name.includes('.difftar.')),
      cacheView: 'same',
      shape: { chains: [olderChain, ['complete', 'incremental:1']], orphaned: 0, incomplete: 0 },
    },
    {
      name: 'incremental-volume-deleted',
      damage: (files) => filesOfSet(files, 'inc', 'newest').filter((name) => name.includes('.difftar.')),
      cacheView: 'same',
      shape: {
        chains: [olderChain, ['complete', `full:${newer}`, 'incremental:0']],
        orphaned: 0,
        incomplete: 0,
      },
    },
  ];
  for (const damaged of cases) {
    const dir = await copyOfTarget(damaged.name, damaged.damage);
    assert.deepEqual(shape(await assertSameChains(dir, damaged.cacheView)), damaged.shape, damaged.name);
  }
});

/**
 * duplicity's odd cases, which no agent run produces on purpose, on a directory of empty files with
 * duplicity's names: collection-status reads nothing but the names here (no cache, no manifest is
 * opened), through the file backend, so the names alone are what both sides read.
 */
test("duplicity's odd cases by name alone: preferred, joined, dropped and volume-less sets", async () => {
  const F = '20261201T021405Z';
  const I1 = '20261201T021409Z';
  const I2 = '20261201T021417Z';
  const F2 = '20261208T021405Z';
  const I3 = '20261209T000000Z';
  const full = (time: string, volumes = 1): string[] => [
    `duplicity-full-signatures.${time}.sigtar.gpg`,
    `duplicity-full.${time}.manifest.gpg`,
    ...Array.from({ length: volumes }, (_, index) => `duplicity-full.${time}.vol${index + 1}.difftar.gpg`),
  ];
  const inc = (start: string, end: string): string[] => [
    `duplicity-inc.${start}.to.${end}.manifest.gpg`,
    `duplicity-inc.${start}.to.${end}.vol1.difftar.gpg`,
    `duplicity-new-signatures.${start}.to.${end}.sigtar.gpg`,
  ];
  const cases: Record<string, string[]> = {
    // Same start as the last incremental, later end: it replaces that one.
    preferred: [...full(F), ...inc(F, I1), ...inc(F, I2)],
    // It joins the older chain, which then ends last and is the one matched with signatures.
    'joins-older-chain': [...full(F), ...inc(F, I1), ...full(F2), ...inc(I1, I3)],
    'last-signatures-missing': [...full(F), ...inc(F, I1), ...inc(I1, I2)].filter(
      (name) => name !== `duplicity-new-signatures.${I1}.to.${I2}.sigtar.gpg`,
    ),
    'only-incremental-signatures-missing': [...full(F), ...inc(F, I1)].filter(
      (name) => !name.startsWith('duplicity-new-signatures.'),
    ),
    'full-without-volumes': [...full(F, 0), ...inc(F, I1)],
    'lone-full-without-volumes': full(F, 0),
    'signatures-only': [`duplicity-full-signatures.${F}.sigtar.gpg`],
    'volumes-only': [`duplicity-full.${F}.vol1.difftar.gpg`, ...full(F2)],
    unencrypted: [...full(F), ...inc(F, I1)].map((name) =>
      name.replace(/\.manifest\.gpg$/, '.manifest').replace(/\.gpg$/, '.gz'),
    ),
  };
  for (const [name, files] of Object.entries(cases)) {
    const dir = join(scratch, 'names', name);
    await mkdir(dir, { recursive: true });
    for (const file of files) await writeFile(join(dir, file), '');
    const cache = join(scratch, 'names-cache', name);
    await mkdir(cache, { recursive: true });
    const result = await execa(
      'duplicity',
      ['collection-status', '--archive-dir', cache, '--name', 'x', '--log-fd', '3', `file://${dir}`],
      { env: { PASSPHRASE: '' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'], reject: false },
    );
    assert.equal(result.exitCode, 0, `${name}: ${String(result.stderr)}`);
    const listing = files.map((file) => ({ name: file, size: 0 }));
    assert.deepEqual(chainStatusFromListing(listing), parseCollectionStatus(String(result.stdio[3])), name);
  }
});
