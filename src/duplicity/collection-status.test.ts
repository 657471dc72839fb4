import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newestFull, parseCollectionStatus } from './collection-status.js';

// Recorded from duplicity 0.8.22 and 3.0.4 (byte-identical): full+2 inc, then a new full+1 inc.
const TWO_CHAINS = `INFO 3
. Local and Remote metadata are synchronized, no sync needed.
backend BackendWrapper
archive-dir (. dir)
chain-no-sig 0
 full 20261123T201408Z 1 noenc
 inc 20261123T201417Z 1 noenc
 inc 20261123T201424Z 1 noenc
chain-complete
 full 20261123T201431Z 1 noenc
 inc 20261123T201437Z 3 enc
orphaned-sets-num 0
incomplete-sets-num 1
`;

test('chains, sets and counters are read from the --log-fd output', () => {
  const status = parseCollectionStatus(TWO_CHAINS);
  assert.equal(status.chains.length, 2);
  assert.deepEqual(
    status.chains.map((chain) => [chain.complete, chain.sets.map((set) => set.kind)]),
    [
      [false, ['full', 'incremental', 'incremental']],
      [true, ['full', 'incremental']],
    ],
  );
  assert.deepEqual(status.chains[1]?.sets[1], {
    kind: 'incremental',
    time: new Date('2026-11-23T20:14:37Z'),
    volumes: 3,
    encrypted: true,
  });
  assert.equal(status.incompleteSets, 1);
  assert.equal(newestFull(status)?.toISOString(), '2026-11-23T20:14:31.000Z');
});

test('an empty target has no chains and no full', () => {
  const status = parseCollectionStatus('INFO 3\nbackend BackendWrapper\norphaned-sets-num 0\nincomplete-sets-num 0\n');
  assert.equal(status.chains.length, 0);
  assert.equal(newestFull(status), undefined);
});

test('a full whose volumes are all gone from the target lists no set, so it is not a chain', () => {
  // Recorded from duplicity 0.8.22: the newest full's vol1 deleted, manifest and signatures left.
  // Its BackupSet has length 0, so duplicity's own `if fullset` skips it when listing.
  const status = parseCollectionStatus(`INFO 3
backend BackendWrapper
archive-dir (. dir)
chain-no-sig 0
 full 20261130T212117Z 1 noenc
chain-complete
orphaned-sets-num 0
incomplete-sets-num 0
`);
  assert.equal(status.chains.length, 1);
  assert.equal(newestFull(status)?.toISOString(), '2026-11-30T21:21:17.000Z');
});
