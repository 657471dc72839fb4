import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupSet, ChainStatus } from '../domain.js';
import { decideKind, planRetention, verifyNewFull } from './decide.js';

const DAY = 86_400_000;
const WEDNESDAY = new Date('2026-11-25T23:15:00Z');
const SUNDAY = new Date('2026-11-29T23:15:00Z');

function chainWithFullAt(time: Date): ChainStatus {
  return {
    chains: [{ complete: true, sets: [{ kind: 'full', time, volumes: 1, encrypted: true }] }],
    orphanedSets: 0,
    incompleteSets: 0,
  };
}
const empty: ChainStatus = { chains: [], orphanedSets: 0, incompleteSets: 0 };
const base = { fullDay: { day: 'sun', auto: false }, timezone: 'UTC', maxFullAgeMs: 8 * DAY } as const;

test('no chain on the target means full, whatever the day or the request', () => {
  assert.equal(decideKind({ ...base, status: empty, now: WEDNESDAY }).kind, 'full');
  const asked = decideKind({ ...base, status: empty, now: WEDNESDAY, requested: 'incremental' });
  assert.equal(asked.kind, 'full');
  assert.match(asked.reason, /--incremental was asked for, but the target has no backup chain/);
});

test('a recent full on a weekday means incremental', () => {
  const decision = decideKind({
    ...base,
    status: chainWithFullAt(new Date(WEDNESDAY.getTime() - 3 * DAY)),
    now: WEDNESDAY,
  });
  assert.equal(decision.kind, 'incremental');
  assert.match(decision.reason, /not full_day \(sun\)/);
});

test('full_day means full, even with a recent full', () => {
  const decision = decideKind({ ...base, status: chainWithFullAt(new Date(SUNDAY.getTime() - DAY)), now: SUNDAY });
  assert.deepEqual(decision, { kind: 'full', reason: 'today is full_day (sun)' });
});

test('full_day is evaluated in the configured time zone', () => {
  // 23:15 UTC on Saturday is already Sunday in Tallinn.
  const saturdayUtc = new Date('2026-11-28T23:15:00Z');
  const status = chainWithFullAt(new Date(saturdayUtc.getTime() - 2 * DAY));
  assert.equal(decideKind({ ...base, status, now: saturdayUtc }).kind, 'incremental');
  assert.equal(decideKind({ ...base, timezone: 'Europe/Tallinn', status, now: saturdayUtc }).kind, 'full');
});

test('full_day = auto: the day chosen for the host means full, the reasons say it was chosen, and max_full_age still wins', () => {
  const auto = { ...base, fullDay: { day: 'wed', auto: true } } as const;
  const recent = chainWithFullAt(new Date(WEDNESDAY.getTime() - 3 * DAY));
  assert.deepEqual(decideKind({ ...auto, status: recent, now: WEDNESDAY }), {
    kind: 'full',
    reason: 'today is full_day (auto: wed)',
  });
  const sunday = decideKind({ ...auto, status: chainWithFullAt(new Date(SUNDAY.getTime() - 4 * DAY)), now: SUNDAY });
  assert.equal(sunday.kind, 'incremental');
  assert.match(sunday.reason, /today is not full_day \(auto: wed\)/);
  const overdue = decideKind({ ...auto, status: chainWithFullAt(new Date(SUNDAY.getTime() - 9 * DAY)), now: SUNDAY });
  assert.equal(overdue.kind, 'full');
  assert.match(overdue.reason, /more than max_full_age/);
});

test('a full older than max_full_age forces a full', () => {
  const decision = decideKind({
    ...base,
    status: chainWithFullAt(new Date(WEDNESDAY.getTime() - 9 * DAY)),
    now: WEDNESDAY,
  });
  assert.equal(decision.kind, 'full');
  assert.match(decision.reason, /more than max_full_age \(8\.0 d\)/);
});

test('--full and --incremental override the schedule when a chain exists', () => {
  const status = chainWithFullAt(new Date(WEDNESDAY.getTime() - DAY));
  assert.equal(decideKind({ ...base, status, now: WEDNESDAY, requested: 'full' }).kind, 'full');
  assert.equal(decideKind({ ...base, status, now: SUNDAY, requested: 'incremental' }).kind, 'incremental');
});

test('retention after a full: old chains are removed only beyond keep_full, leftovers are cleaned up', () => {
  const fourChains: ChainStatus = {
    chains: [1, 2, 3, 4].map((week) => chainWithFullAt(new Date(SUNDAY.getTime() - week * 7 * DAY)).chains[0]!),
    orphanedSets: 0,
    incompleteSets: 0,
  };
  assert.deepEqual(planRetention(empty, 4), {
    removeOldChains: false,
    cleanup: false,
    reason: '1 chain on the target with this full, keep_full = 4: nothing to remove',
  });
  const beyond = planRetention(fourChains, 4);
  assert.equal(beyond.removeOldChains, true);
  assert.equal(beyond.cleanup, true);
  assert.match(beyond.reason, /^5 chains on the target with this full, keep_full = 4: removing the oldest 1$/);
  const leftovers = planRetention({ ...empty, incompleteSets: 1 }, 4);
  assert.equal(leftovers.removeOldChains, false);
  assert.equal(leftovers.cleanup, true);
  assert.match(leftovers.reason, /1 orphaned or incomplete set to clean up$/);
});

test('old chains may go only when the target lists the full of this run, whole', () => {
  const uploadStarted = new Date('2026-11-29T23:15:00.700Z');
  const older = chainWithFullAt(new Date(SUNDAY.getTime() - 7 * DAY));
  const withNew = (full: Partial<BackupSet>, complete = true, incompleteSets = 0): ChainStatus => ({
    chains: [
      ...older.chains,
      {
        complete,
        sets: [{ kind: 'full', time: new Date('2026-11-29T23:15:00Z'), volumes: 2, encrypted: true, ...full }],
      },
    ],
    orphanedSets: 0,
    incompleteSets,
  });

  // duplicity names the set after the second the upload started in.
  assert.deepEqual(verifyNewFull(older, withNew({}), uploadStarted), {
    verified: true,
    reason: 'the new full of 2026-11-29T23:15:00.000Z is complete on the target (2 volumes)',
  });
  const refusals: [ChainStatus, RegExp][] = [
    [
      older,
      /the target lists it with no manifest or no volumes; its newest listed full is from 2026-11-22T23:15:00\.000Z$/,
    ],
    [withNew({ time: new Date('2026-11-29T23:14:59Z') }), /its newest listed full is from 2026-11-29T23:14:59\.000Z$/],
    [
      withNew({ volumes: 0 }),
      /of 2026-11-29T23:15:00\.000Z is not complete on the target: the target lists none of its volumes$/,
    ],
    [withNew({}, false), /its chain has no matching signatures$/],
    [withNew({}, true, 1), /1 incomplete backup set appeared during this run$/],
    [empty, /the target lists no full backup at all$/],
  ];
  for (const [after, why] of refusals) {
    const verification = verifyNewFull(older, after, uploadStarted);
    assert.equal(verification.verified, false, verification.reason);
    assert.match(verification.reason, /^retention skipped: the new full of \S+ is not complete on the target: /);
    assert.match(verification.reason, why);
  }
  // Leftovers from an earlier interrupted run are cleanup's business, not a sign against this full.
  assert.equal(verifyNewFull({ ...older, incompleteSets: 1 }, withNew({}, true, 1), uploadStarted).verified, true);
});

test('a chain that cannot be extended means a full with the heal notice, unless --full was asked for anyway', () => {
  const heal = { kind: 'broken-chain', reason: 'the backup chain on the target is broken: vol1 is missing' } as const;
  const status = chainWithFullAt(new Date(WEDNESDAY.getTime() - DAY));
  assert.deepEqual(decideKind({ ...base, status, now: WEDNESDAY, unextendable: heal }), {
    kind: 'full',
    reason: heal.reason,
    heal,
  });
  const asked = decideKind({ ...base, status, now: WEDNESDAY, requested: 'incremental', unextendable: heal });
  assert.equal(asked.kind, 'full');
  assert.equal(asked.reason, `--incremental was asked for, but ${heal.reason}`);
  assert.deepEqual(decideKind({ ...base, status, now: WEDNESDAY, requested: 'full', unextendable: heal }), {
    kind: 'full',
    reason: '--full was asked for',
  });
  // No chain at all: the first full is not a heal.
  assert.equal(decideKind({ ...base, status: empty, now: WEDNESDAY, unextendable: heal }).heal, undefined);
});
