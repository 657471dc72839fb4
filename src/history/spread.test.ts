import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../config/load.js';
import { WEEKDAYS, type Weekday } from '../config/values.js';
import { type SourceOutcome } from '../domain.js';
import { type HostIdentity, autoFullDay, hostCalendar, judgeSlot, readHostIdentity, spreadOffsetMs } from './spread.js';
import { emptyState, recordOutcomes } from './state.js';
import { ENGINES } from '../sources/registry.js';

const TARGET = 'rsync://backup@backup.example.org/backups';
const HOUR = 3_600_000;
const SPREAD = 2 * HOUR;
const BUCKET = 5 * 60_000;

function config(agent: string) {
  return parseConfig(
    `[agent]\n${agent}\n[target]\nurl = ${TARGET}\nencryption = none\n[mysql]\ndatabases = agama\n`,
    '/etc/backup-agent.ini',
    ENGINES,
  );
}

/** A machine-id as systemd writes it: 32 hex digits. */
function machineId(seed: string): string {
  return createHash('md5').update(seed).digest('hex');
}

/** 9,900 hosts of their own and 100 clones of one golden image: one machine-id, their own names. */
function fleet(): { hosts: HostIdentity[]; clones: HostIdentity[] } {
  const hosts = Array.from({ length: 9_900 }, (_, i) => ({
    machineId: machineId(`host ${i}`),
    hostname: `db-${String(i).padStart(4, '0')}.example.org`,
  }));
  const image = machineId('golden image');
  const clones = Array.from({ length: 100 }, (_, i) => ({ machineId: image, hostname: `clone-${i + 1}` }));
  return { hosts, clones };
}

function histogram(title: string, labels: readonly string[], counts: readonly number[]): void {
  const widest = Math.max(...counts);
  const lines = counts.map(
    (count, i) =>
      `  ${(labels[i] ?? '').padEnd(13)} ${String(count).padStart(5)} ${'#'.repeat(Math.round((count / widest) * 50))}`,
  );
  console.log(`${title}\n${lines.join('\n')}`);
}

/** Kolmogorov–Smirnov distance between the offsets and the uniform distribution on [0, spread). */
function ksDistance(offsets: readonly number[], spreadMs: number): number {
  const sorted = [...offsets].sort((a, b) => a - b);
  return sorted.reduce((worst, offset, i) => {
    const at = offset / spreadMs;
    return Math.max(worst, Math.abs(at - i / sorted.length), Math.abs((i + 1) / sorted.length - at));
  }, 0);
}

test('simulation: 10,000 hosts (100 of them clones) spread evenly over 2 h and their fulls over the week', () => {
  const { hosts, clones } = fleet();
  const everyone = [...hosts, ...clones];
  const offsets = everyone.map((host) => spreadOffsetMs(host, TARGET, SPREAD));
  const buckets = Array.from({ length: SPREAD / BUCKET }, () => 0);
  for (const offset of offsets) buckets[Math.floor(offset / BUCKET)] = (buckets[Math.floor(offset / BUCKET)] ?? 0) + 1;
  const mean = everyone.length / buckets.length;
  histogram(
    `offsets of ${everyone.length} hosts, spread = 2h, 5-minute buckets (mean ${mean.toFixed(1)}, limit ${(1.5 * mean).toFixed(1)}):`,
    buckets.map((_, i) => `+${String(i * 5).padStart(3)}..${String(i * 5 + 5).padStart(3)} min`),
    buckets,
  );
  assert.ok(Math.max(...buckets) <= 1.5 * mean, `fullest bucket ${Math.max(...buckets)} > 1.5 × ${mean}`);
  assert.ok(offsets.every((offset) => offset >= 0 && offset < SPREAD && offset % 1000 === 0));

  // The clones, alone: as close to uniform as 100 independent draws are (KS at the 5 % level),
  // where a hash of the machine-id alone (systemd's FixedRandomDelay=) gives all of them one slot.
  const cloneOffsets = clones.map((host) => spreadOffsetMs(host, TARGET, SPREAD));
  const byMachineIdOnly = new Set(clones.map((host) => spreadOffsetMs({ ...host, hostname: '' }, TARGET, SPREAD)));
  const quarters = [0, 1, 2, 3].map(
    (q) => cloneOffsets.filter((offset) => Math.floor(offset / (SPREAD / 4)) === q).length,
  );
  histogram(
    `offsets of the 100 clones (one machine-id), 30-minute buckets; ${new Set(cloneOffsets).size} distinct offsets (machine-id alone: ${byMachineIdOnly.size}):`,
    ['+0..30 min', '+30..60 min', '+60..90 min', '+90..120 min'],
    quarters,
  );
  const cloneKs = ksDistance(cloneOffsets, SPREAD);
  const allKs = ksDistance(offsets, SPREAD);
  console.log(
    `KS distance from uniform: clones ${cloneKs.toFixed(4)} (5 % critical 0.136), all ${allKs.toFixed(4)} (0.0136)`,
  );
  assert.ok(cloneKs < 1.36 / Math.sqrt(clones.length), `clones: KS ${cloneKs}`);
  assert.ok(allKs < 1.36 / Math.sqrt(everyone.length), `all: KS ${allKs}`);
  assert.ok(new Set(cloneOffsets).size >= 95, 'clones do not share offsets');
  assert.equal(byMachineIdOnly.size, 1);

  const days = WEEKDAYS.map((day) => everyone.filter((host) => autoFullDay(host, TARGET) === day).length);
  const perDay = everyone.length / 7;
  histogram(
    `full_day = auto over ${everyone.length} hosts (1/7 = ${perDay.toFixed(0)}, allowed ${(perDay * 0.85).toFixed(0)}..${(perDay * 1.15).toFixed(0)}):`,
    [...WEEKDAYS],
    days,
  );
  for (const [i, count] of days.entries()) {
    assert.ok(Math.abs(count - perDay) <= 0.15 * perDay, `${WEEKDAYS[i]}: ${count} fulls`);
  }
  const cloneDays = new Set(clones.map((host) => autoFullDay(host, TARGET)));
  assert.equal(cloneDays.size, 7, 'the clones use every weekday');
});

/** What db1.example.org with this machine-id and TARGET got when the hash was chosen: 1h42m43s, Monday. */
const PINNED_OFFSET_MS = 6_163_000;
const PINNED_FULL_DAY: Weekday = 'mon';

test('offset and full day are stable: the same on every run and every version, pinned here', () => {
  const host = { machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4', hostname: 'db1.example.org' };
  // Changing these values moves every host of every fleet: the hash is part of the product.
  assert.equal(spreadOffsetMs(host, TARGET, SPREAD), spreadOffsetMs({ ...host }, TARGET, SPREAD));
  assert.deepEqual(
    [spreadOffsetMs(host, TARGET, SPREAD), autoFullDay(host, TARGET)],
    [PINNED_OFFSET_MS, PINNED_FULL_DAY],
  );
  // A wider spread keeps the host's place in the fleet's order: the offset scales.
  const wider = spreadOffsetMs(host, TARGET, 2 * SPREAD);
  assert.ok(Math.abs(wider - 2 * PINNED_OFFSET_MS) <= 2000);
  assert.equal(spreadOffsetMs(host, TARGET, 0), 0);
});

test('clones differ by host name, and one host gets another slot for another target', () => {
  const image = machineId('golden image');
  const a = spreadOffsetMs({ machineId: image, hostname: 'web1' }, TARGET, SPREAD);
  const b = spreadOffsetMs({ machineId: image, hostname: 'web2' }, TARGET, SPREAD);
  assert.notEqual(a, b);
  const other = spreadOffsetMs({ machineId: image, hostname: 'web1' }, 'rsync://backup@offsite.example.org/b', SPREAD);
  assert.notEqual(a, other);
});

test('the identity: /etc/machine-id when it holds one, else the host name alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'identity-'));
  try {
    const file = join(dir, 'machine-id');
    writeFileSync(file, '3d1219c7c4c5404aaa1f6d2a48adfda4\n');
    assert.deepEqual(readHostIdentity(file, 'db1'), { machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4', hostname: 'db1' });
    writeFileSync(file, 'uninitialized\n');
    assert.deepEqual(readHostIdentity(file, 'db1'), { machineId: null, hostname: 'db1' });
    assert.deepEqual(readHostIdentity(join(dir, 'missing'), 'db1'), { machineId: null, hostname: 'db1' });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const DB1 = { machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4', hostname: 'db1.example.org' };

test("the host's calendar: schedule plus offset, and full_day = auto resolved for the host", () => {
  const calendar = hostCalendar(config('spread = 2h\nfull_day = auto'), DB1);
  assert.equal(calendar.offsetMs, spreadOffsetMs(DB1, TARGET, SPREAD));
  assert.deepEqual(calendar.fullDay, { day: autoFullDay(DB1, TARGET), auto: true });
  const now = new Date('2026-11-24T12:00:00Z');
  assert.equal(calendar.schedule.next(now)?.getTime(), Date.parse('2026-11-24T23:15:00Z') + calendar.offsetMs);
  const plain = hostCalendar(config('full_day = mon'), DB1);
  assert.deepEqual([plain.offsetMs, plain.fullDay], [0, { day: 'mon', auto: false }]);
});

function stateWithRunOf(durationMs: number) {
  const startedAt = new Date('2026-11-23T23:20:00Z');
  const outcome: SourceOutcome = {
    source: 'mysql',
    result: 'ok',
    kind: 'incremental',
    bytesDumped: 1,
    bytesUploaded: 1,
    durationMs,
  };
  const window = { startedAt, finishedAt: new Date(startedAt.getTime() + durationMs), trigger: 't', slot: null };
  return recordOutcomes(emptyState(new Date('2026-11-01T00:00:00Z')), window, [outcome]).state;
}

const NOW = new Date('2026-11-24T12:00:00Z');

test('check: schedule + spread + run time past the deadline fails and says by how much and what fits', () => {
  const cfg = config('spread = 2h\ndeadline = 01:00');
  const judged = judgeSlot(cfg, hostCalendar(cfg, DB1), stateWithRunOf(12 * 60_000), NOW);
  assert.equal(judged.status, 'fail');
  // 23:15 + 2 h + 12 min = 01:27, 27 min after 01:00.
  assert.match(judged.detail, /ends 2026-11-25 01:27 UTC, 27 min after agent\.deadline 01:00/);
  assert.match(judged.detail, /run time 12m00s \(the last successful mysql run\)/);
  assert.match(judged.detail, /this host: offset 1h42m of spread 2h00m, next slot 2026-11-25 00:57:43 UTC$/);
  assert.match(judged.hint ?? '', /agent\.spread can be at most 1h33m/);
});

test('check: a spread that fits says how much room is left; without a state file the default run time counts', () => {
  const cfg = config('spread = 1h\ndeadline = 01:00');
  const judged = judgeSlot(cfg, hostCalendar(cfg, DB1), null, NOW);
  // 23:15 + 1 h + 30 min default = 00:45, 15 min to spare.
  assert.equal(judged.status, 'ok');
  assert.match(
    judged.detail,
    /no successful run recorded yet, so the default estimate\) ends 15 min before agent\.deadline 01:00/,
  );
  const none = config('spread = 1h\ndeadline =');
  assert.match(judgeSlot(none, hostCalendar(none, DB1), null, NOW).detail, /no agent\.deadline to meet/);
});

test('check: only a guessed run time past the deadline warns; a spread alone past it fails', () => {
  // Every 15 minutes: the 00:45 run must be done by 01:00, and no run is recorded yet.
  const frequent = config('schedule = */15 * * * *\ndeadline = 01:00');
  const guessed = judgeSlot(frequent, hostCalendar(frequent, DB1), null, NOW);
  assert.equal(guessed.status, 'warn', guessed.detail);
  assert.match(guessed.detail, /default estimate\) ends .* after agent\.deadline 01:00/);
  assert.equal(judgeSlot(frequent, hostCalendar(frequent, DB1), stateWithRunOf(20 * 60_000), NOW).status, 'fail');
  const tooWide = config('spread = 2h\ndeadline = 01:00');
  assert.equal(judgeSlot(tooWide, hostCalendar(tooWide, DB1), null, NOW).status, 'fail');
});

test('check: without a machine-id a spread rests on the host name alone, which is a warning', () => {
  const cfg = config('spread = 1h\ndeadline = 01:00');
  const judged = judgeSlot(cfg, hostCalendar(cfg, { machineId: null, hostname: 'db1' }), null, NOW);
  assert.equal(judged.status, 'warn');
  assert.match(judged.detail, /clones with one name share them/);
});
