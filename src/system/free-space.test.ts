import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spaceReserve } from '../config/values.js';
import { describeReserve, headroom, nextReadingMs, readRoom, reserveBytes, watchRoom } from './free-space.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'free-space-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('agent.staging_reserve reads as a share of the filesystem or as a size', () => {
  assert.deepEqual(spaceReserve.parse('10%'), { percent: 10 });
  assert.deepEqual(spaceReserve.parse('0%'), { percent: 0 });
  assert.deepEqual(spaceReserve.parse('20G'), { bytes: 20 * GiB });
  assert.deepEqual(spaceReserve.parse('512'), { bytes: 512 });
  for (const wrong of ['100%', '10 %', '-1G', '1.5G', '', 'ten']) {
    assert.equal(spaceReserve.safeParse(wrong).success, false, wrong);
  }
});

test('a share is taken of the whole filesystem and rounded up; a size is taken as it is', () => {
  assert.equal(reserveBytes({ percent: 10 }, 100 * GiB), 10 * GiB);
  assert.equal(reserveBytes({ percent: 10 }, 1001), 101);
  assert.equal(reserveBytes({ percent: 0 }, 100 * GiB), 0);
  assert.equal(reserveBytes({ bytes: 20 * GiB }, 100 * GiB), 20 * GiB);
});

test('the headroom is what is left above the reserve once the estimate is written', () => {
  const room = { free: 30 * GiB, total: 100 * GiB };
  assert.equal(headroom(room, 15 * GiB, { percent: 10 }), 5 * GiB);
  assert.equal(headroom(room, 20 * GiB, { percent: 10 }), 0, 'exactly at the reserve still fits');
  assert.equal(headroom(room, 20 * GiB + 1, { percent: 10 }), -1);
  assert.ok(headroom(room, 0, { bytes: 31 * GiB }) < 0, 'below the reserve before anything is written');
});

test('the reserve is described with its share when it is one', () => {
  assert.equal(describeReserve({ percent: 10 }, 100 * GiB), '10.0 GiB (10% of 100.0 GiB)');
  assert.equal(describeReserve({ bytes: 512 * MiB }, 100 * GiB), '512.0 MiB');
});

test('readings come faster as a writer eats into the headroom, within bounds', () => {
  assert.equal(nextReadingMs(10 * GiB, 0), 1_000, 'a roomy filesystem: once a second');
  // Nothing written yet, but a dump may start at 256 MiB/s: half of 20 MiB goes in 39 ms.
  assert.equal(nextReadingMs(20 * MiB, 0), 39);
  assert.equal(nextReadingMs(20 * MiB, -5), 39, 'space freed counts as nothing written');
  // 1 GiB/s with 512 MiB left: half of it goes in 250 ms.
  assert.equal(nextReadingMs(512 * MiB, GiB / 1000), 250);
  assert.equal(nextReadingMs(1 * MiB, GiB / 1000), 20, 'never faster than 20 ms');
  assert.equal(nextReadingMs(-1, 0), 20);
});

test('the free space of a real directory is within its filesystem', async () => {
  const room = await readRoom(dir);
  assert.ok(room.total > 0);
  assert.ok(room.free >= 0 && room.free <= room.total);
});

test('a watch aborts with the given error once free space is below the reserve, and not before', async () => {
  const { total } = await readRoom(dir);
  const calm = watchRoom(dir, { bytes: 0 }, () => new Error('not expected'));
  const low = watchRoom(dir, { bytes: total + 1 }, (room) => new Error(`low: ${room.free} free`));
  try {
    await sleep(300);
    assert.equal(calm.signal.aborted, false);
    assert.equal(low.signal.aborted, true);
    assert.match(String((low.signal.reason as Error).message), /^low: \d+ free$/);
  } finally {
    calm.stop();
    low.stop();
  }
});

test('finishing a watch takes one last reading, which throws when the reserve is reached', async () => {
  const roomy = watchRoom(dir, { bytes: 0 }, () => new Error('not expected'));
  await roomy.finish();
  const { total } = await readRoom(dir);
  // Read at once when started, then not for a second: only the last reading can see the change.
  let reserve = 0;
  const tight = watchRoom(
    dir,
    {
      get bytes() {
        return reserve;
      },
    },
    () => new Error('low at the end'),
  );
  await sleep(50);
  reserve = total + 1;
  await assert.rejects(tight.finish(), /^Error: low at the end$/);
});
