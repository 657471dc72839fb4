import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlan, formatStatus } from '../cli/output.js';
import { parseConfig } from '../config/load.js';
import { autoFullDay, spreadOffsetMs } from '../history/spread.js';
import { buildReport } from './status.js';
import { ENGINES } from '../sources/registry.js';

const TARGET = 'rsync://backup@backup.example.org/backups';
const DB1 = { machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4', hostname: 'db1.example.org' };
const config = parseConfig(
  `[agent]\nspread = 2h\nfull_day = auto\n[target]\nurl = ${TARGET}\nencryption = none\n[mysql]\ndatabases = agama\n`,
  '/etc/backup-agent.ini',
  ENGINES,
);

test("status names this host's offset, its next slot and the full day auto chose for it", () => {
  const now = new Date('2026-11-24T12:00:00Z');
  const report = buildReport(config, {
    state: null,
    stateProblem: null,
    targets: null,
    chains: {},
    now,
    identity: DB1,
  });
  const offsetMs = spreadOffsetMs(DB1, TARGET, 2 * 3_600_000);
  assert.equal(report.host, 'db1.example.org');
  assert.deepEqual(report.spread, { spreadMs: 2 * 3_600_000, offsetMs });
  assert.deepEqual(report.fullDay, { day: autoFullDay(DB1, TARGET), auto: true });
  assert.equal(report.nextRun?.getTime(), Date.parse('2026-11-24T23:15:00Z') + offsetMs);
  const text = formatStatus(report);
  // db1's pinned offset (spread.test.ts) is 1h42m43s, its day Monday.
  assert.match(
    text,
    /^next run: {3}2026-11-25 00:57:43 UTC \(schedule "15 23 \* \* \*" in UTC, offset 1h42m of spread 2h00m\)$/m,
  );
  assert.match(text, /^full day: {3}mon \(full_day = auto: chosen for this host\)$/m);
});

test('run --dry-run prints the next slot with the offset and the full day before the sources', () => {
  const text = formatPlan({
    slot: {
      schedule: '15 23 * * *',
      timezone: 'UTC',
      spreadMs: 2 * 3_600_000,
      offsetMs: 6_163_000,
      next: new Date('2026-11-25T00:57:43Z'),
      fullDay: { day: 'mon', auto: true },
    },
    sources: [],
  });
  assert.match(
    text,
    /^Next slot: 2026-11-25 00:57:43 UTC \(schedule "15 23 \* \* \*" in UTC, offset 1h42m of spread 2h00m\); full day mon \(full_day = auto: chosen for this host\)\.$/m,
  );
});
