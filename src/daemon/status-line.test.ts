import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import { type AgentState, emptyState, recordOutcomes, recordRunWithoutOutcome } from '../history/state.js';
import { type StatusLineInput, statusLine } from './status-line.js';

const started = new Date('2026-11-23T23:15:00Z');
const window = { startedAt: started, finishedAt: new Date('2026-11-23T23:19:12Z'), trigger: 'daemon', slot: started };

function after(outcomes: SourceOutcome[]): AgentState {
  return recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), window, outcomes).state;
}

function line(overrides: Partial<StatusLineInput>): string {
  return statusLine({
    now: new Date('2026-11-24T09:00:00Z'),
    timeZone: 'UTC',
    running: null,
    next: { at: new Date('2026-11-24T23:15:00Z'), kinds: [{ source: 'mysql', kind: 'incremental' }] },
    state: emptyState(new Date('2026-11-01T00:00:00Z')),
    breaches: [],
    reloadProblem: null,
    ...overrides,
  });
}

const fullOk: SourceOutcome = {
  source: 'mysql',
  result: 'ok',
  kind: 'full',
  bytesDumped: 1_288_490_189,
  bytesUploaded: 500_000_000,
  durationMs: 252_000,
};

test('idle after a good run: next slot with its kind, then the last run with kind, size and duration', () => {
  assert.equal(
    line({ state: after([fullOk]) }),
    'idle · next 2026-11-24 23:15 UTC (incremental) · last OK 2026-11-23 23:19 full 1.2 GiB in 4m12s',
  );
});

test('running: the steps under way and the time since the run started', () => {
  assert.equal(
    line({ running: { startedAt: new Date('2026-11-24T08:56:50Z'), steps: ['mysql dump', 'influxdb full upload'] } }),
    'running mysql dump, influxdb full upload (3m10s)',
  );
});

test('a failed source is named with its cause; sources with different next kinds are listed', () => {
  const state = after([
    fullOk,
    {
      source: 'influxdb',
      result: 'failed',
      stage: 'dump',
      error: 'influxdb is not reachable at 127.0.0.1:8088: connect ECONNREFUSED\nsecond line',
      bytesDumped: 0,
      durationMs: 100,
    },
  ]);
  const next = {
    at: new Date('2026-11-24T23:15:00Z'),
    kinds: [
      { source: 'mysql', kind: 'incremental' },
      { source: 'influxdb', kind: 'full' },
    ] as const,
  };
  assert.equal(
    line({ state, next }),
    'idle · next 2026-11-24 23:15 UTC (mysql incremental, influxdb full) · last run FAILED: influxdb: influxdb is not reachable at 127.0.0.1:8088: connect ECONNREFUSED',
  );
});

test('a skipped run says why; SLA breaches and a rejected reload are appended', () => {
  const state = recordRunWithoutOutcome(
    after([fullOk]),
    { ...window, startedAt: new Date('2026-11-24T23:15:00Z'), finishedAt: new Date('2026-11-24T23:15:00Z') },
    'skipped',
    'restore by pid 4242 in progress, started 2026-11-24T23:10:02.000Z (backup-agent restore mysql)',
  );
  assert.equal(
    line({
      state,
      next: null,
      breaches: [{ key: 'rpo:mysql', source: 'mysql', kind: 'rpo', detail: '' }],
      reloadProblem: 'agent.schedule = "x": expected a cron expression',
    }),
    'idle · last run SKIPPED: restore by pid 4242 in progress, started 2026-11-24T23:10:02.000Z (backup-agent restore mysql) · SLA BREACH: mysql rpo · config reload FAILED, previous configuration in use',
  );
});

test('a daemon that never ran says so, and times are shown in the schedule time zone', () => {
  assert.equal(line({ timeZone: 'Europe/Tallinn' }), 'idle · next 2026-11-25 01:15 GMT+2 (incremental) · no run yet');
});
