// The runner's two ways of ending a child early, with real processes: a deadline, and an output
// line of a failure no retry can fix. Either way nothing of the child's process group is left.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { pino } from 'pino';
import { PERMANENT_REFUSAL } from '../remote/failures.js';
import { CommandFailedError, CommandRunner, TimedOutError } from './run-command.js';

const runner = new CommandRunner(pino({ level: 'silent' }), new AbortController().signal);

/** A sleep with a unique duration, so that pgrep finds exactly this test's processes. */
function marker(): string {
  return `3${randomInt(100, 999)}.${randomInt(100, 999)}`;
}

async function running(pattern: string): Promise<string[]> {
  const result = await execa('pgrep', ['-af', `sleep ${pattern}`], { reject: false });
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

async function gone(pattern: string): Promise<boolean> {
  for (let tries = 0; tries < 50; tries++) {
    if ((await running(pattern)).length === 0) return true;
    await sleep(100);
  }
  return false;
}

test('a command past its deadline is stopped with its grandchildren and names the step', async () => {
  const mark = marker();
  const started = Date.now();
  // The shell stands in for duplicity: it starts a grandchild (rsync) and waits for it.
  const run = runner.run({
    argv: ['sh', '-c', `sleep ${mark} & wait`],
    deadline: { ms: 500, step: 'mysql upload', key: 'deadlines.upload' },
  });
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof TimedOutError);
    assert.equal(error.message, 'timed out after 0.5s in mysql upload');
    assert.match(error.hint ?? '', /raise deadlines\.upload/);
    return true;
  });
  assert.ok(Date.now() - started < 5_000, 'SIGTERM ended it without waiting for the kill grace');
  assert.ok(await gone(mark), 'no sleep of the group is left');
});

test('a child that ignores SIGTERM is killed after the grace', { timeout: 30_000 }, async () => {
  const mark = marker();
  const run = runner.run({
    argv: ['sh', '-c', `trap '' TERM; sleep ${mark} & wait; sleep ${mark}`],
    deadline: { ms: 300, step: 'influxdb dump' },
  });
  await assert.rejects(run, TimedOutError);
  assert.ok(await gone(mark), 'the whole group was killed');
});

test('a permanent refusal on stderr stops the command at once and carries the line', async () => {
  const mark = marker();
  const started = Date.now();
  const run = runner.run({
    argv: ['sh', '-c', `echo '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@' >&2; sleep ${mark}`],
    deadline: { ms: 60_000, step: 'reading the chain' },
    stopOn: PERMANENT_REFUSAL,
  });
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof CommandFailedError);
    assert.equal(error.signal, undefined, 'reported as a failure of the command, not as a cancel');
    assert.ok(error.result.stderrTail.some((line) => line.includes('REMOTE HOST IDENTIFICATION HAS CHANGED')));
    return true;
  });
  assert.ok(Date.now() - started < 5_000);
  assert.ok(await gone(mark));
});

test('duplicity 0.8 prints retry warnings on stdout: a refusal there stops the command too', async () => {
  const mark = marker();
  const run = runner.run({
    argv: ['sh', '-c', `echo 'rsync: [receiver] mkstemp "/t/.x" failed: Read-only file system (30)'; sleep ${mark}`],
    deadline: { ms: 60_000, step: 'mysql upload' },
    stdout: 'tail',
    stopOn: PERMANENT_REFUSAL,
  });
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof CommandFailedError);
    assert.ok(error.result.stderrTail.some((line) => line.includes('Read-only file system (30)')));
    return true;
  });
  assert.ok(await gone(mark));
});

test('without a matching line the command runs to its end', async () => {
  const result = await runner.run({
    argv: ['sh', '-c', 'echo "Attempt of put Nr. 1 failed. Connection refused" >&2; exit 0'],
    deadline: { ms: 60_000, step: 'mysql upload' },
    stopOn: PERMANENT_REFUSAL,
  });
  assert.equal(result.exitCode, 0);
});
