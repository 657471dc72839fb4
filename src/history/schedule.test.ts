import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Schedule } from './schedule.js';

const MINUTE = 60_000;
/** 1h30m: the 23:15 slot of this host falls at 00:45 the next day. */
const spread = new Schedule('15 23 * * *', 'UTC', 90 * MINUTE);

const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

test("the host's slots are the schedule's times plus its offset, also across midnight", () => {
  assert.equal(iso(spread.next(new Date('2026-11-24T12:00:00Z'))), '2026-11-25T00:45:00.000Z');
  // At 23:30 the schedule's time has passed, this host's slot has not.
  assert.equal(iso(spread.next(new Date('2026-11-24T23:30:00Z'))), '2026-11-25T00:45:00.000Z');
  assert.equal(iso(spread.latestAtOrBefore(new Date('2026-11-25T00:30:00Z'))), '2026-11-24T00:45:00.000Z');
  assert.equal(iso(spread.latestAtOrBefore(new Date('2026-11-25T00:45:00Z'))), '2026-11-25T00:45:00.000Z');
  assert.equal(iso(spread.next(new Date('2026-11-25T00:45:00Z'))), '2026-11-26T00:45:00.000Z');
});

test("the deadline follows the schedule's time, and judges this host's slot", () => {
  const late = new Schedule('15 23 * * *', 'UTC', 20 * MINUTE);
  assert.deepEqual(late.lastDeadline('01:00', new Date('2026-11-25T01:10:00Z')), {
    slot: new Date('2026-11-24T23:35:00Z'),
    due: new Date('2026-11-25T01:00:00Z'),
  });
  // A slot beyond its deadline stays tied to it: the promise does not quietly move a day.
  assert.deepEqual(spread.lastDeadline('00:30', new Date('2026-11-25T00:40:00Z')), {
    slot: new Date('2026-11-25T00:45:00Z'),
    due: new Date('2026-11-25T00:30:00Z'),
  });
});

test("the deadlines of a week, each with the schedule's time it judges", () => {
  const weekdays = new Schedule('15 23 * * 1-5', 'UTC', 10 * MINUTE);
  const windows = weekdays.deadlinesAhead('01:00', new Date('2026-11-23T12:00:00Z'), 7);
  assert.equal(windows.length, 7);
  // Tuesday 01:00 judges Monday 23:15; Sunday 01:00 still judges Friday 23:15.
  assert.deepEqual(windows[0], { scheduled: new Date('2026-11-23T23:15:00Z'), due: new Date('2026-11-24T01:00:00Z') });
  assert.deepEqual(windows[5], { scheduled: new Date('2026-11-27T23:15:00Z'), due: new Date('2026-11-29T01:00:00Z') });
});

test('arm fires at the shifted slot, not at the schedule time, and stop() ends it', async () => {
  // The schedule's own time (1 January) is long past; only the offset brings the slot 2 s from now.
  const scheduled = new Schedule('0 0 1 1 *', 'UTC').latestAtOrBefore(new Date());
  assert.ok(scheduled !== null);
  const slotAt = Math.ceil(Date.now() / 1000) * 1000 + 2000;
  const schedule = new Schedule('0 0 1 1 *', 'UTC', slotAt - scheduled.getTime());
  const fired = await new Promise<{ slot: Date; at: number }>((resolve) => {
    const job = schedule.arm((slot) => {
      job.stop();
      resolve({ slot, at: Date.now() });
    });
  });
  assert.equal(fired.slot.getTime(), slotAt);
  assert.ok(fired.at >= slotAt && fired.at < slotAt + 1500, `fired ${fired.at - slotAt} ms after the slot`);
});
