import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import { decideCatchUp } from './catch-up.js';
import { Schedule } from './schedule.js';
import { type AgentState, emptyState, recordOutcomes } from './state.js';

const show = (date: Date) => date.toISOString();
const nightly = new Schedule('15 23 * * *', 'UTC');

function ok(source: 'mysql' | 'influxdb'): SourceOutcome {
  return { source, result: 'ok', kind: 'incremental', bytesDumped: 10, bytesUploaded: 5, durationMs: 60_000 };
}

function failed(source: 'mysql' | 'influxdb'): SourceOutcome {
  return { source, result: 'failed', stage: 'dump', error: 'down', bytesDumped: 0, durationMs: 1_000 };
}

/** A state whose runs happened at the given times, each with the given outcomes. */
function stateWithRuns(...runs: [string, SourceOutcome[]][]): AgentState {
  let state = emptyState(new Date('2026-11-01T00:00:00Z'));
  for (const [at, outcomes] of runs) {
    const startedAt = new Date(at);
    const window = { startedAt, finishedAt: new Date(startedAt.getTime() + 60_000), trigger: 'test', slot: null };
    state = recordOutcomes(state, window, outcomes).state;
  }
  return state;
}

/** The decision of a daemon starting on the morning of 2026-11-24, after the 23:15 slot of the 23rd. */
function atBoot(state: AgentState) {
  const now = new Date('2026-11-24T07:30:00Z');
  return decideCatchUp({ latestSlot: nightly.latestAtOrBefore(now), state, sources: ['mysql', 'influxdb'], show });
}

test('a host that was off at 23:15 catches up on that slot at boot', () => {
  const state = stateWithRuns(['2026-11-22T23:15:00Z', [ok('mysql'), ok('influxdb')]]);
  const decision = atBoot(state);
  assert.ok(decision.run);
  assert.equal(decision.slot.toISOString(), '2026-11-23T23:15:00.000Z');
  assert.deepEqual(decision.sources, ['mysql', 'influxdb']);
  assert.match(decision.reason, /slot of 2026-11-23T23:15:00.000Z passed without a successful backup/);
});

test('no catch-up when the last slot was covered by a successful run', () => {
  const state = stateWithRuns(['2026-11-23T23:15:01Z', [ok('mysql'), ok('influxdb')]]);
  assert.deepEqual(atBoot(state), {
    run: false,
    reason: 'every source has a successful backup since the slot of 2026-11-23T23:15:00.000Z',
  });
});

test('only the source whose run failed after the slot is caught up', () => {
  const state = stateWithRuns(['2026-11-23T23:15:00Z', [ok('mysql'), failed('influxdb')]]);
  const decision = decideCatchUp({
    latestSlot: new Date('2026-11-23T23:15:00Z'),
    state,
    sources: ['mysql', 'influxdb'],
    show,
  });
  assert.ok(decision.run);
  assert.deepEqual(decision.sources, ['influxdb']);
  assert.match(decision.reason, /\(influxdb: never\)/);
});

test('a host without a state file (new or rebuilt) catches up', () => {
  const decision = decideCatchUp({
    latestSlot: new Date('2026-11-23T23:15:00Z'),
    state: null,
    sources: ['mysql'],
    show,
  });
  assert.ok(decision.run);
  assert.match(decision.reason, /there is no state file/);
});

test('a catch-up is attempted once per slot, even when it failed or the daemon died in it', () => {
  const slot = new Date('2026-11-23T23:15:00Z');
  const state: AgentState = {
    ...stateWithRuns(['2026-11-22T23:15:00Z', [ok('mysql')]]),
    catchUp: { slot, startedAt: new Date('2026-11-24T07:31:00Z') },
  };
  const decision = decideCatchUp({ latestSlot: slot, state, sources: ['mysql'], show });
  assert.equal(decision.run, false);
  assert.match(decision.reason, /already started at 2026-11-24T07:31:00.000Z/);
});

test('a schedule that never fired in the past asks for nothing', () => {
  const decision = decideCatchUp({ latestSlot: null, state: null, sources: ['mysql'], show });
  assert.equal(decision.run, false);
});

test('the latest slot is found in the schedule time zone, and a slot exactly now counts as passed', () => {
  const tallinn = new Schedule('15 23 * * *', 'Europe/Tallinn');
  assert.equal(tallinn.latestAtOrBefore(new Date('2026-11-24T07:30:00Z'))?.toISOString(), '2026-11-23T21:15:00.000Z');
  assert.equal(
    nightly.latestAtOrBefore(new Date('2026-11-23T23:15:00.400Z'))?.toISOString(),
    '2026-11-23T23:15:00.000Z',
  );
});

test("catch-up follows this host's slot within the spread, not the schedule's time", () => {
  // Offset 1h30m: the 23:15 schedule is this host's 00:45.
  const spread = new Schedule('15 23 * * *', 'UTC', 90 * 60_000);
  const sources = ['mysql', 'influxdb'] as const;
  const state = stateWithRuns(['2026-11-23T00:45:00Z', [ok('mysql'), ok('influxdb')]]);
  // Booted at 00:30: the schedule's 23:15 has passed, but this host's slot is still to come.
  const early = new Date('2026-11-24T00:30:00Z');
  assert.deepEqual(decideCatchUp({ latestSlot: spread.latestAtOrBefore(early), state, sources, show }), {
    run: false,
    reason: 'every source has a successful backup since the slot of 2026-11-23T00:45:00.000Z',
  });
  // The raw schedule would have run a needless catch-up 15 minutes before the slot.
  assert.equal(decideCatchUp({ latestSlot: nightly.latestAtOrBefore(early), state, sources, show }).run, true);
  // Booted at 07:30: this host's 00:45 slot passed while it was down.
  const decision = decideCatchUp({
    latestSlot: spread.latestAtOrBefore(new Date('2026-11-24T07:30:00Z')),
    state,
    sources,
    show,
  });
  assert.ok(decision.run);
  assert.equal(decision.slot.toISOString(), '2026-11-24T00:45:00.000Z');
});
