import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import { createLogger } from '../report/logger.js';
import { StateStore } from './state-store.js';
import { type AgentState, emptyState, readState, recordOutcomes } from './state.js';

const logger = createLogger({ toStderr: true, level: 'silent' });

function outcome(source: SourceOutcome['source']): SourceOutcome {
  return { source, result: 'ok', kind: 'full', bytesDumped: 10, bytesUploaded: 5, durationMs: 1000 };
}

async function withStateFile(body: (file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'state-store-'));
  try {
    await body(join(dir, 'state.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('two writers (the daemon and a manual run) interleaving changes lose none of them', async () => {
  await withStateFile(async (file) => {
    const daemon = new StateStore(() => file, logger, 'daemon');
    const manual = new StateStore(() => file, logger, 'manual');
    // Both start from stale copies, as a daemon holding its state in memory would.
    const stale = emptyState(new Date('2026-11-01T00:00:00Z'));
    const window = (trigger: string) => ({
      startedAt: new Date('2026-11-30T01:00:00Z'),
      finishedAt: new Date('2026-11-30T01:05:00Z'),
      trigger,
      slot: null,
    });
    const breach = { since: new Date('2026-11-30T02:00:00Z'), detail: 'late' };
    await Promise.all([
      manual.update((state) => recordOutcomes(state, window('backup-agent run'), [outcome('mysql')]), stale),
      daemon.update(
        (state) => ({ state: { ...state, slaBreaches: { ...state.slaBreaches, 'mysql:rpo': breach } } }),
        stale,
      ),
      manual.update((state) => recordOutcomes(state, window('backup-agent run'), [outcome('influxdb')]), stale),
      daemon.update(
        (state) => ({ state: { ...state, slaBreaches: { ...state.slaBreaches, 'influxdb:rpo': breach } } }),
        stale,
      ),
    ]);
    const stored = await readState(file);
    assert.deepEqual(Object.keys(stored?.sources ?? {}).sort(), ['influxdb', 'mysql']);
    assert.deepEqual(Object.keys(stored?.slaBreaches ?? {}).sort(), ['influxdb:rpo', 'mysql:rpo']);
    // The lock file stays: unlinking a locked file would let a third writer lock a new inode.
    assert.deepEqual((await readdir(join(file, '..'))).sort(), ['state.json', 'state.json.lock']);
  });
});

test('an unchanged state is not rewritten; a missing file is created from the base', async () => {
  await withStateFile(async (file) => {
    const store = new StateStore(() => file, logger, 'test');
    const base = emptyState(new Date('2026-11-01T00:00:00Z'));
    const created = await store.update((state) => ({ state }), base);
    assert.deepEqual(await readState(file), created.state);
    await writeFile(file, `${JSON.stringify({ ...base, createdAt: '2026-10-01T00:00:00.000Z' })}\n`);
    const kept = await store.update((state) => ({ state }), base);
    assert.equal(kept.state.createdAt.toISOString(), '2026-10-01T00:00:00.000Z', 'read from the file, not the base');
  });
});

test('a state file that cannot be written is logged, and the change still applies to the base', async () => {
  const store = new StateStore(() => '/nonexistent-dir/state.json', logger, 'test');
  const base: AgentState = emptyState(new Date('2026-11-01T00:00:00Z'));
  const changed = await store.update((state) => ({ state: { ...state, catchUp: null }, marker: 42 }), base);
  assert.equal(changed.marker, 42);
  assert.equal(changed.state.createdAt.getTime(), base.createdAt.getTime());
});
