import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SourceOutcome } from '../domain.js';
import {
  StateFileError,
  emptyState,
  readState,
  recordOutcomes,
  recordRunWithoutOutcome,
  recordStartFailure,
  writeState,
} from './state.js';

const at = (iso: string, slot: string | null = null) => ({
  startedAt: new Date(iso),
  finishedAt: new Date(new Date(iso).getTime() + 120_000),
  trigger: 'daemon (scheduled)',
  slot: slot === null ? null : new Date(slot),
});

const full: SourceOutcome = {
  source: 'mysql',
  result: 'ok',
  kind: 'full',
  bytesDumped: 2048,
  bytesUploaded: 1024,
  durationMs: 90_000,
};
const incremental: SourceOutcome = { ...full, kind: 'incremental', bytesUploaded: 64 };
const broken: SourceOutcome = {
  source: 'mysql',
  result: 'failed',
  stage: 'upload',
  error: 'ssh: connection refused',
  bytesDumped: 2048,
  durationMs: 5_000,
};

test('a full starts a chain, incrementals lengthen it, a failure keeps the last success', () => {
  let state = emptyState(new Date('2026-11-01T00:00:00Z'));
  state = recordOutcomes(state, at('2026-11-22T23:15:00Z'), [full]).state;
  state = recordOutcomes(state, at('2026-11-23T23:15:00Z'), [incremental]).state;
  const failed = recordOutcomes(state, at('2026-11-24T23:15:00Z'), [broken]);
  const mysql = failed.state.sources.mysql;
  assert.equal(mysql?.lastFull?.toISOString(), '2026-11-22T23:15:00.000Z');
  assert.equal(mysql?.chainLength, 2);
  assert.equal(mysql?.lastSuccess?.startedAt.toISOString(), '2026-11-23T23:15:00.000Z');
  assert.equal(mysql?.lastRun?.error, 'ssh: connection refused');
  assert.equal(mysql?.failingSince?.toISOString(), '2026-11-24T23:15:00.000Z');
  assert.deepEqual(failed.transitions, { failed: ['mysql'], recovered: [], healed: [] });
  assert.equal(failed.state.lastRun?.result, 'failed');
});

test('the first success after a failure streak is a recovery, naming when the streak began', () => {
  let state = emptyState(new Date('2026-11-01T00:00:00Z'));
  state = recordOutcomes(state, at('2026-11-23T23:15:00Z'), [broken]).state;
  state = recordStartFailure(state, at('2026-11-24T23:15:00Z'), ['mysql'], 'duplicity is not installed').state;
  assert.equal(state.sources.mysql?.lastRun?.stage, 'start');
  assert.equal(state.lastRun?.reason, 'duplicity is not installed');
  const back = recordOutcomes(state, at('2026-11-25T23:15:00Z'), [incremental]);
  assert.deepEqual(back.transitions, {
    failed: [],
    recovered: [{ source: 'mysql', failingSince: new Date('2026-11-23T23:15:00Z') }],
    healed: [],
  });
  assert.equal(back.state.sources.mysql?.failingSince, null);
  assert.equal(
    back.state.sources.mysql?.chainLength,
    null,
    'an incremental without a known full has an unknown chain length',
  );
});

test('the state survives a write and a read, dates included; a skipped run keeps the per-source records', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'state-'));
  try {
    const file = join(dir, 'state.json');
    assert.equal(await readState(file), null);
    let state = recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), at('2026-11-22T23:15:00Z'), [full]).state;
    state = recordRunWithoutOutcome(state, at('2026-11-23T23:15:00Z', '2026-11-23T23:15:00Z'), 'skipped', 'lock held');
    await writeState(file, state);
    assert.deepEqual(await readState(file), state);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a damaged state file is reported as such, naming the bad field', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'state-'));
  try {
    const file = join(dir, 'state.json');
    await writeFile(file, '{"version": 1, "createdAt": "yesterday"');
    await assert.rejects(
      readState(file),
      (error) => error instanceof StateFileError && /is not JSON/.test(error.message),
    );
    await writeFile(file, JSON.stringify({ ...emptyState(new Date()), createdAt: 'yesterday' }));
    await assert.rejects(
      readState(file),
      (error) => error instanceof StateFileError && /createdAt/.test(error.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a healed fault is a transition of its run only, and the state keeps the latest one per source', async () => {
  const notice = { kind: 'broken-chain', reason: 'the backup chain on the target is broken: vol1 is missing' } as const;
  let state = emptyState(new Date('2026-11-01T00:00:00Z'));
  const healed = recordOutcomes(state, at('2026-11-23T23:15:00Z'), [{ ...full, notices: [notice] }]);
  assert.deepEqual(healed.transitions.healed, [{ source: 'mysql', notices: [notice] }]);
  state = healed.state;
  const next = recordOutcomes(state, at('2026-11-24T23:15:00Z'), [incremental]);
  assert.deepEqual(next.transitions.healed, [], 'the next run mails nothing about it');
  const failedLater = recordOutcomes(next.state, at('2026-11-25T23:15:00Z'), [broken]);
  assert.deepEqual(failedLater.state.sources.mysql?.lastHeal, { at: new Date('2026-11-23T23:15:00Z'), ...notice });

  const dir = await mkdtemp(join(tmpdir(), 'state-heal-'));
  try {
    const file = join(dir, 'state.json');
    await writeState(file, failedLater.state);
    assert.deepEqual((await readState(file))?.sources.mysql?.lastHeal, failedLater.state.sources.mysql?.lastHeal);
    // A state file written before lastHeal existed still reads.
    const old = JSON.parse(await readFile(file, 'utf8')) as { sources: { mysql: Record<string, unknown> } };
    delete old.sources.mysql['lastHeal'];
    await writeFile(file, JSON.stringify(old));
    assert.equal((await readState(file))?.sources.mysql?.lastHeal, null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
