import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import { Schedule } from './schedule.js';
import {
  type Breach,
  DEFAULT_RUN_ESTIMATE_MS,
  deadlineFit,
  evaluateSla,
  expectedRunTime,
  reconcileBreaches,
} from './sla.js';
import { type AgentState, emptyState, recordOutcomes } from './state.js';

const HOUR = 3_600_000;
const show = (date: Date) => date.toISOString();
const nightly = new Schedule('15 23 * * *', 'UTC');

function runAt(state: AgentState, at: string, durationMs: number, result: 'ok' | 'failed'): AgentState {
  const startedAt = new Date(at);
  const outcome: SourceOutcome =
    result === 'ok'
      ? { source: 'mysql', result, kind: 'incremental', bytesDumped: 1, bytesUploaded: 1, durationMs }
      : { source: 'mysql', result, stage: 'upload', error: 'target down', bytesDumped: 1, durationMs };
  const window = { startedAt, finishedAt: new Date(startedAt.getTime() + durationMs), trigger: 'test', slot: null };
  return recordOutcomes(state, window, [outcome]).state;
}

function judge(state: AgentState, now: string) {
  const at = new Date(now);
  return evaluateSla({
    state,
    sources: ['mysql'],
    now: at,
    rpoMs: 26 * HOUR,
    deadline: nightly.lastDeadline('01:00', at),
    show,
  });
}

const since = emptyState(new Date('2026-11-20T00:00:00Z'));

test('the deadline window is the newest slot whose 01:00 has passed', () => {
  assert.deepEqual(nightly.lastDeadline('01:00', new Date('2026-11-24T00:30:00Z')), {
    slot: new Date('2026-11-22T23:15:00Z'),
    due: new Date('2026-11-23T01:00:00Z'),
  });
  assert.deepEqual(nightly.lastDeadline('01:00', new Date('2026-11-24T01:00:00Z')), {
    slot: new Date('2026-11-23T23:15:00Z'),
    due: new Date('2026-11-24T01:00:00Z'),
  });
});

test('a run that succeeded before the deadline meets it, and a young backup is within the RPO', () => {
  const state = runAt(since, '2026-11-23T23:15:00Z', 20 * 60_000, 'ok');
  const { sources, breaches } = judge(state, '2026-11-24T09:00:00Z');
  assert.deepEqual(breaches, []);
  assert.equal(sources[0]?.deadline.state, 'met');
  assert.equal(sources[0]?.rpo.breached, false);
  assert.equal(sources[0]?.rpo.ageMs, 9 * HOUR + 45 * 60_000);
});

test('a failed night is a deadline breach once 01:00 has passed, and not before', () => {
  const state = runAt(runAt(since, '2026-11-22T23:15:00Z', 60_000, 'ok'), '2026-11-23T23:15:00Z', 60_000, 'failed');
  assert.deepEqual(judge(state, '2026-11-24T00:59:00Z').breaches, []);
  const { breaches } = judge(state, '2026-11-24T01:00:00Z');
  assert.deepEqual(
    breaches.map((breach) => breach.key),
    ['deadline:mysql'],
  );
  assert.match(
    breaches[0]?.detail ?? '',
    /no successful backup for the slot of 2026-11-23T23:15:00.000Z by its deadline/,
  );
});

test('a success after the deadline is late: shown, but not an open breach', () => {
  const state = runAt(since, '2026-11-23T23:15:00Z', 2 * HOUR, 'ok');
  const { sources, breaches } = judge(state, '2026-11-24T09:00:00Z');
  assert.equal(sources[0]?.deadline.state, 'late');
  assert.deepEqual(breaches, []);
});

test('the RPO is broken when the newest success is older than rpo', () => {
  const state = runAt(since, '2026-11-22T23:15:00Z', 60_000, 'ok');
  const { breaches } = judge(state, '2026-11-24T01:16:00Z');
  assert.deepEqual(
    breaches.map((breach) => breach.key),
    ['deadline:mysql', 'rpo:mysql'],
  );
  assert.match(breaches[1]?.detail ?? '', /newest successful backup is 26\.0 h old, more than rpo 26\.0 h/);
});

test('a new daemon judges neither slots before its state existed nor an RPO it could not have met yet', () => {
  const fresh = emptyState(new Date('2026-11-24T00:30:00Z'));
  const { sources, breaches } = judge(fresh, '2026-11-24T09:00:00Z');
  assert.deepEqual(breaches, []);
  assert.equal(sources[0]?.deadline.state, 'none');
  assert.equal(sources[0]?.rpo.hasSuccess, false);
  const later = judge(fresh, '2026-11-25T03:00:00Z').breaches.map((breach) => breach.key);
  assert.deepEqual(later, ['deadline:mysql', 'rpo:mysql']);
});

test('a breach is alerted once when it opens, not on every check, and once when it closes', () => {
  const breach: Breach = { key: 'rpo:mysql', source: 'mysql', kind: 'rpo', detail: 'too old' };
  const first = reconcileBreaches({}, [breach], new Date('2026-11-24T01:00:00Z'));
  assert.deepEqual(first.opened, [breach]);
  assert.deepEqual(first.closed, []);

  const second = reconcileBreaches(first.alerted, [breach], new Date('2026-11-24T02:00:00Z'));
  assert.deepEqual(second.opened, []);
  assert.deepEqual(second.closed, []);
  assert.deepEqual(second.alerted, first.alerted, 'the breach keeps the time it was first alerted');

  const over = reconcileBreaches(second.alerted, [], new Date('2026-11-24T03:00:00Z'));
  assert.deepEqual(over.opened, []);
  assert.deepEqual(over.closed, [{ key: 'rpo:mysql', since: new Date('2026-11-24T01:00:00Z'), detail: 'too old' }]);
  assert.deepEqual(over.alerted, {});
});

test("with a spread the deadline judges this host's slot: a run at the slot meets it, the schedule's time alone does not count", () => {
  const offset = new Schedule('15 23 * * *', 'UTC', 40 * 60_000);
  const judgeSpread = (state: AgentState, now: string) =>
    evaluateSla({
      state,
      sources: ['mysql'],
      now: new Date(now),
      rpoMs: 26 * HOUR,
      deadline: offset.lastDeadline('01:00', new Date(now)),
      show,
    }).sources[0]?.deadline;
  // A manual run at 23:20 started before this host's 23:55 slot: it does not cover the slot.
  assert.equal(
    judgeSpread(runAt(since, '2026-11-23T23:20:00Z', 60_000, 'ok'), '2026-11-24T01:05:00Z')?.state,
    'missed',
  );
  const atSlot = judgeSpread(runAt(since, '2026-11-23T23:55:00Z', 10 * 60_000, 'ok'), '2026-11-24T01:05:00Z');
  assert.equal(atSlot?.state, 'met');
});

test('the expected run time is the slowest source of its last success, or the default without one', () => {
  let state = runAt(since, '2026-11-23T23:15:00Z', 4 * 60_000, 'ok');
  const influx: SourceOutcome = {
    source: 'influxdb',
    result: 'ok',
    kind: 'incremental',
    bytesDumped: 1,
    bytesUploaded: 1,
    durationMs: 9 * 60_000,
  };
  const start = new Date('2026-11-23T23:15:00Z');
  const window = { startedAt: start, finishedAt: new Date(start.getTime() + 9 * 60_000), trigger: 't', slot: null };
  state = recordOutcomes(state, window, [influx]).state;
  assert.deepEqual(expectedRunTime(state, ['mysql', 'influxdb']), {
    ms: 9 * 60_000,
    basis: 'the last successful influxdb run',
    measured: true,
  });
  assert.equal(expectedRunTime(state, ['mysql']).ms, 4 * 60_000);
  assert.equal(expectedRunTime(null, ['mysql']).ms, DEFAULT_RUN_ESTIMATE_MS);
});

test('the deadline fit: the tightest window of the week, the whole spread, since one host of the fleet draws its end', () => {
  const window = (scheduled: string, due: string) => ({ scheduled: new Date(scheduled), due: new Date(due) });
  const windows = [
    window('2026-11-23T23:15:00Z', '2026-11-24T01:00:00Z'),
    // A Friday slot at 23:45 has the least room: 1h15m.
    window('2026-11-27T23:45:00Z', '2026-11-28T01:00:00Z'),
  ];
  const fit = deadlineFit(windows, 2 * HOUR, 10 * 60_000);
  assert.deepEqual(fit, {
    window: windows[1],
    fleetMarginMs: -55 * 60_000,
    maxSpreadMs: 65 * 60_000,
  });
  assert.equal(deadlineFit([], HOUR, 0), null);
});
