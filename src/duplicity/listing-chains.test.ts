import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChainStatus } from '../domain.js';
import type { RemoteFile } from '../remote/remote.js';
import { newestFull } from './collection-status.js';
import { chainStatusFromListing } from './listing-chains.js';

const F = '20261201T021405Z';
const I1 = '20261201T021409Z';
const I2 = '20261201T021417Z';
const F2 = '20261208T021405Z';
const J1 = '20261208T021411Z';

const full = (time: string, volumes = 1): RemoteFile[] => [
  { name: `duplicity-full-signatures.${time}.sigtar.gpg`, size: 31867 },
  { name: `duplicity-full.${time}.manifest.gpg`, size: 321 },
  ...Array.from({ length: volumes }, (_, index) => ({
    name: `duplicity-full.${time}.vol${index + 1}.difftar.gpg`,
    size: 1000,
  })),
];

const inc = (start: string, end: string, volumes = 1): RemoteFile[] => [
  { name: `duplicity-inc.${start}.to.${end}.manifest.gpg`, size: 206 },
  ...Array.from({ length: volumes }, (_, index) => ({
    name: `duplicity-inc.${start}.to.${end}.vol${index + 1}.difftar.gpg`,
    size: 700,
  })),
  { name: `duplicity-new-signatures.${start}.to.${end}.sigtar.gpg`, size: 31821 },
];

const without = (listing: RemoteFile[], ...names: string[]): RemoteFile[] =>
  listing.filter((file) => !names.includes(file.name));

/** Each chain as collection-status prints it: complete, then "kind time volumes" per set. */
function summary(status: ChainStatus): { chains: (boolean | string)[][]; orphaned: number; incomplete: number } {
  return {
    chains: status.chains.map((chain) => [
      chain.complete,
      ...chain.sets.map((set) => `${set.kind} ${set.time.toISOString()} ${set.volumes}`),
    ]),
    orphaned: status.orphanedSets,
    incomplete: status.incompleteSets,
  };
}

const at = (time: string): string =>
  `${time.slice(0, 4)}-${time.slice(4, 6)}-${time.slice(6, 8)}T${time.slice(9, 11)}:${time.slice(11, 13)}:${time.slice(13, 15)}.000Z`;

test('an empty target has no chain and nothing left over', () => {
  assert.deepEqual(chainStatusFromListing([]), { chains: [], orphanedSets: 0, incompleteSets: 0 });
  assert.equal(newestFull(chainStatusFromListing([{ name: '.backup-agent-write-test', size: 3 }])), undefined);
});

test('a full and two incrementals make one complete chain, with times, volumes and encryption', () => {
  const status = chainStatusFromListing([...inc(I1, I2), ...full(F, 2), ...inc(F, I1)]);
  assert.deepEqual(status, {
    chains: [
      {
        complete: true,
        sets: [
          { kind: 'full', time: new Date(at(F)), volumes: 2, encrypted: true },
          { kind: 'incremental', time: new Date(at(I1)), volumes: 1, encrypted: true },
          { kind: 'incremental', time: new Date(at(I2)), volumes: 1, encrypted: true },
        ],
      },
    ],
    orphanedSets: 0,
    incompleteSets: 0,
  });
});

test('--no-encryption names (.manifest, .difftar.gz, .sigtar.gz) are sets too, not encrypted', () => {
  const plain = [...full(F), ...inc(F, I1)].map((file) => ({
    ...file,
    name: file.name.replace(/\.manifest\.gpg$/, '.manifest').replace(/\.gpg$/, '.gz'),
  }));
  const status = chainStatusFromListing(plain);
  assert.deepEqual(
    status.chains.flatMap((chain) => chain.sets.map((set) => set.encrypted)),
    [false, false],
  );
  assert.equal(status.chains[0]?.complete, true);
});

test('only the newest chain can be complete: duplicity matches signatures against it alone', () => {
  const status = chainStatusFromListing([...full(F), ...inc(F, I1), ...full(F2), ...inc(F2, J1)]);
  assert.deepEqual(summary(status), {
    chains: [
      [false, `full ${at(F)} 1`, `incremental ${at(I1)} 1`],
      [true, `full ${at(F2)} 1`, `incremental ${at(J1)} 1`],
    ],
    orphaned: 0,
    incomplete: 0,
  });
  assert.equal(newestFull(status)?.toISOString(), at(F2));
});

test('a set without its manifest is incomplete and in no chain; the older full is then the newest', () => {
  const status = chainStatusFromListing(without([...full(F), ...full(F2)], `duplicity-full.${F2}.manifest.gpg`));
  assert.deepEqual(summary(status), { chains: [[true, `full ${at(F)} 1`]], orphaned: 0, incomplete: 1 });
  assert.equal(newestFull(status)?.toISOString(), at(F));
  // Signatures alone are no set at all.
  const onlySignatures = chainStatusFromListing([{ name: `duplicity-full-signatures.${F}.sigtar.gpg`, size: 9 }]);
  assert.deepEqual(onlySignatures, { chains: [], orphanedSets: 0, incompleteSets: 0 });
});

test('an incremental whose predecessor is gone is orphaned; the chain ends before the gap', () => {
  const status = chainStatusFromListing([...full(F), ...inc(I1, I2)]);
  assert.deepEqual(summary(status), { chains: [[true, `full ${at(F)} 1`]], orphaned: 1, incomplete: 0 });
});

test('a missing signature file leaves the newest chain without signatures', () => {
  const status = chainStatusFromListing(without(full(F), `duplicity-full-signatures.${F}.sigtar.gpg`));
  assert.deepEqual(summary(status), { chains: [[false, `full ${at(F)} 1`]], orphaned: 0, incomplete: 0 });
  // The signatures of an incremental after the full: the chain of signatures stops short of it.
  const one = chainStatusFromListing(
    without([...full(F), ...inc(F, I1)], `duplicity-new-signatures.${F}.to.${I1}.sigtar.gpg`),
  );
  assert.deepEqual(summary(one), {
    chains: [[false, `full ${at(F)} 1`, `incremental ${at(I1)} 1`]],
    orphaned: 0,
    incomplete: 0,
  });
});

test('with the last incremental signatures missing after another incremental, duplicity drops that set', () => {
  const status = chainStatusFromListing(
    without([...full(F), ...inc(F, I1), ...inc(I1, I2)], `duplicity-new-signatures.${I1}.to.${I2}.sigtar.gpg`),
  );
  assert.deepEqual(summary(status), {
    chains: [[true, `full ${at(F)} 1`, `incremental ${at(I1)} 1`]],
    orphaned: 0,
    incomplete: 1,
  });
});

test('volumes are counted as the target holds them; a full with none is not listed, its incrementals are', () => {
  const listing = [...full(F, 3), ...inc(F, I1)];
  const one = chainStatusFromListing(without(listing, `duplicity-full.${F}.vol2.difftar.gpg`));
  assert.deepEqual(summary(one).chains, [[true, `full ${at(F)} 2`, `incremental ${at(I1)} 1`]]);
  const none = chainStatusFromListing(
    without(
      listing,
      `duplicity-full.${F}.vol1.difftar.gpg`,
      `duplicity-full.${F}.vol2.difftar.gpg`,
      `duplicity-full.${F}.vol3.difftar.gpg`,
    ),
  );
  assert.deepEqual(summary(none).chains, [[true, `incremental ${at(I1)} 1`]]);
  assert.equal(newestFull(none), undefined);
  // A full alone without volumes leaves a chain with nothing to list, which collection-status omits.
  const alone = chainStatusFromListing(without(full(F), `duplicity-full.${F}.vol1.difftar.gpg`));
  assert.deepEqual(alone, { chains: [], orphanedSets: 0, incompleteSets: 0 });
});

test('an incremental with the start of the last one and a later end replaces it, as duplicity prefers', () => {
  const status = chainStatusFromListing([...full(F), ...inc(F, I1), ...inc(F, I2)]);
  assert.deepEqual(summary(status), {
    chains: [[false, `full ${at(F)} 1`, `incremental ${at(I2)} 1`]],
    orphaned: 0,
    incomplete: 0,
  });
});

test('an incremental joins the first chain ending where it starts, even an older one, which becomes the newest', () => {
  const I3 = '20261209T000000Z';
  const status = chainStatusFromListing([...full(F), ...inc(F, I1), ...full(F2), ...inc(I1, I3)]);
  assert.deepEqual(summary(status), {
    chains: [
      [false, `full ${at(F2)} 1`],
      [true, `full ${at(F)} 1`, `incremental ${at(I1)} 1`, `incremental ${at(I3)} 1`],
    ],
    orphaned: 0,
    incomplete: 0,
  });
  assert.equal(newestFull(status)?.toISOString(), at(F2));
});

test('names that are not duplicity files are not read', () => {
  const status = chainStatusFromListing([
    ...full(F),
    { name: 'notes.txt', size: 5 },
    { name: `duplicity-full.${F}.sigtar.gpg`, size: 5 },
  ]);
  assert.deepEqual(summary(status), { chains: [[true, `full ${at(F)} 1`]], orphaned: 0, incomplete: 0 });
});
