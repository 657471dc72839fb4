import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import { emptyState, readState, recordOutcomes, writeState } from '../history/state.js';
import { renderMetrics } from './textfile.js';

const watch = { sources: ['mysql', 'influxdb'] as const, rpoMs: 26 * 3_600_000, maxFullAgeMs: 8 * 86_400_000 };

function run(day: number) {
  return {
    startedAt: new Date(Date.UTC(2026, 10, day, 23, 15)),
    finishedAt: new Date(Date.UTC(2026, 10, day, 23, 16, 30)),
    trigger: 'daemon',
    slot: null,
  };
}

function ok(bytesDumped: number): SourceOutcome {
  return { source: 'mysql', result: 'ok', kind: 'incremental', bytesDumped, bytesUploaded: 10, durationMs: 1000 };
}

test('metrics: one gauge family each, per source, from the state', () => {
  const state = recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), run(22), [
    { source: 'mysql', result: 'ok', kind: 'full', bytesDumped: 2048, bytesUploaded: 1024, durationMs: 90_000 },
  ]).state;
  const text = renderMetrics(state, watch);
  assert.match(text, /^# TYPE backup_agent_last_success_timestamp_seconds gauge$/m);
  assert.match(text, /^backup_agent_last_success_timestamp_seconds\{source="mysql"\} 1795389300$/m);
  assert.match(text, /^backup_agent_last_run_duration_seconds\{source="mysql"\} 90$/m);
  assert.match(text, /^backup_agent_last_run_bytes\{source="mysql",phase="dump"\} 2048$/m);
  assert.match(text, /^backup_agent_last_run_bytes\{source="mysql",phase="upload"\} 1024$/m);
  assert.match(text, /^backup_agent_last_run_success\{source="mysql"\} 1$/m);
  assert.match(text, /^backup_agent_last_full_timestamp_seconds\{source="mysql"\} 1795389300$/m);
  assert.match(text, /^backup_agent_last_success_dump_bytes\{source="mysql"\} 2048$/m);
  assert.match(text, /^backup_agent_rpo_seconds\{source="mysql"\} 93600$/m);
  assert.match(text, /^backup_agent_max_full_age_seconds\{source="mysql"\} 691200$/m);
});

test('metrics: a source that never ran has its watch start and limits, and no invented results', () => {
  // 2026-11-01T00:00:00Z, when the state file was made.
  const text = renderMetrics(emptyState(new Date('2026-11-01T00:00:00Z')), watch);
  const influx = text.split('\n').filter((line) => line.includes('source="influxdb"'));
  assert.deepEqual(influx, [
    'backup_agent_watched_since_timestamp_seconds{source="influxdb"} 1793491200',
    'backup_agent_rpo_seconds{source="influxdb"} 93600',
    'backup_agent_max_full_age_seconds{source="influxdb"} 691200',
  ]);
  assert.doesNotMatch(text, /^backup_agent_last_success_timestamp_seconds\{/m, 'no last success of 0 (1970)');
});

test('metrics: the two newest successful dumps are exported for the shrink alert; a failure in between changes neither', () => {
  let state = recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), run(20), [ok(1000)]).state;
  assert.doesNotMatch(renderMetrics(state, watch), /backup_agent_previous_success_dump_bytes\{/, 'one success only');
  state = recordOutcomes(state, run(21), [ok(1200)]).state;
  const failed: SourceOutcome = {
    source: 'mysql',
    result: 'failed',
    stage: 'upload',
    error: 'timed out',
    bytesDumped: 900,
    durationMs: 1000,
  };
  state = recordOutcomes(state, run(22), [failed]).state;
  const text = renderMetrics(state, watch);
  assert.match(text, /^backup_agent_last_success_dump_bytes\{source="mysql"\} 1200$/m);
  assert.match(text, /^backup_agent_previous_success_dump_bytes\{source="mysql"\} 1000$/m);
  assert.match(text, /^backup_agent_last_run_bytes\{source="mysql",phase="dump"\} 900$/m);
  assert.match(text, /^backup_agent_last_run_success\{source="mysql"\} 0$/m);
  state = recordOutcomes(state, run(23), [ok(700)]).state;
  const after = renderMetrics(state, watch);
  assert.match(after, /^backup_agent_last_success_dump_bytes\{source="mysql"\} 700$/m);
  assert.match(after, /^backup_agent_previous_success_dump_bytes\{source="mysql"\} 1200$/m);
});

test('metrics: a state file from before the previous dump size was kept reads, and the next success fills it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'metrics-state-'));
  try {
    const file = join(dir, 'state.json');
    await writeState(file, recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), run(20), [ok(1000)]).state);
    const old = JSON.parse(await readFile(file, 'utf8')) as { sources: { mysql: Record<string, unknown> } };
    delete old.sources.mysql['previousSuccessBytesDumped'];
    await writeFile(file, JSON.stringify(old));
    const upgraded = await readState(file);
    assert.ok(upgraded !== null);
    assert.doesNotMatch(renderMetrics(upgraded, watch), /backup_agent_previous_success_dump_bytes\{/);
    const next = recordOutcomes(upgraded, run(21), [ok(400)]).state;
    assert.match(renderMetrics(next, watch), /^backup_agent_previous_success_dump_bytes\{source="mysql"\} 1000$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
