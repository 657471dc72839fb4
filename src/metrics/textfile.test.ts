import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, recordOutcomes } from '../history/state.js';
import { renderMetrics } from './textfile.js';

const window = {
  startedAt: new Date('2026-11-22T23:15:00Z'),
  finishedAt: new Date('2026-11-22T23:16:30Z'),
  trigger: 'daemon',
  slot: null,
};

test('metrics: one gauge family each, per source, from the state', () => {
  const state = recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), window, [
    { source: 'mysql', result: 'ok', kind: 'full', bytesDumped: 2048, bytesUploaded: 1024, durationMs: 90_000 },
  ]).state;
  const text = renderMetrics(state, ['mysql', 'influxdb']);
  assert.match(text, /^# TYPE backup_agent_last_success_timestamp_seconds gauge$/m);
  assert.match(text, /^backup_agent_last_success_timestamp_seconds\{source="mysql"\} 1795389300$/m);
  assert.match(text, /^backup_agent_last_run_duration_seconds\{source="mysql"\} 90$/m);
  assert.match(text, /^backup_agent_last_run_bytes\{source="mysql",phase="dump"\} 2048$/m);
  assert.match(text, /^backup_agent_last_run_bytes\{source="mysql",phase="upload"\} 1024$/m);
  assert.match(text, /^backup_agent_last_run_success\{source="mysql"\} 1$/m);
  assert.match(text, /^backup_agent_last_full_timestamp_seconds\{source="mysql"\} 1795389300$/m);
  assert.doesNotMatch(text, /influxdb/, 'a source that never ran has no samples');
});
