import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { BackupFailedError } from '../errors.js';
import { CommandFailedError } from '../system/run-command.js';
import { findCacheDamage, mayBeCacheFault, moveCacheAside } from './cache-health.js';

function failure(exitCode: number, stderr: string, signal?: string): BackupFailedError {
  const result = { exitCode, stdout: '', fd3: '', stderrTail: stderr.split('\n'), stdoutTail: [], durationMs: 1 };
  return new BackupFailedError('upload failed', undefined, {
    cause: new CommandFailedError('duplicity', result, signal),
  });
}

test('only a failure of duplicity itself may come from the cache: not the target, a refusal, a busy lock or a kill', () => {
  assert.equal(mayBeCacheFault(failure(30, 'EOFError: Compressed file ended before the end-of-stream marker')), true);
  assert.equal(mayBeCacheFault(failure(50, 'ssh: connect to host 127.0.0.1 port 2299: Connection refused')), false);
  assert.equal(mayBeCacheFault(failure(1, 'Host key verification failed.')), false);
  assert.equal(mayBeCacheFault(failure(23, 'Another duplicity instance is already running')), false);
  assert.equal(mayBeCacheFault(failure(30, 'EOFError', 'SIGKILL')), false);
  assert.equal(mayBeCacheFault(new Error('timed out')), false);
});

test('a cut signature file or manifest is found, a whole cache passes, and the newest damaged copy is kept', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cache-health-'));
  try {
    const cache = join(root, 'mysql');
    await mkdir(cache);
    const signatures = gzipSync(Buffer.alloc(200_000, 7));
    const manifest =
      'Hostname h\nLocaldir /s\nVolume 1:\n    StartingPath   .  \n    EndingPath     a 1\n    Hash SHA1 ab\nFilelist 0\n';
    await writeFile(join(cache, 'duplicity-full-signatures.20261201T021405Z.sigtar.gz'), signatures);
    await writeFile(join(cache, 'duplicity-full.20261201T021405Z.manifest'), manifest);
    assert.equal(await findCacheDamage(cache), undefined);
    assert.equal(await findCacheDamage(join(root, 'absent')), undefined);

    await writeFile(join(cache, 'duplicity-full.20261201T021405Z.manifest'), manifest.slice(0, 30));
    assert.match((await findCacheDamage(cache)) ?? '', /^duplicity-full\.20261201T021405Z\.manifest is damaged: /);
    await writeFile(
      join(cache, 'duplicity-full-signatures.20261201T021405Z.sigtar.gz'),
      signatures.subarray(0, signatures.length / 2),
    );
    assert.equal(
      await findCacheDamage(cache),
      'duplicity-full-signatures.20261201T021405Z.sigtar.gz cannot be read: unexpected end of file',
    );

    await mkdir(join(root, 'mysql.damaged-20261101T000000Z'));
    await mkdir(join(root, 'influxdb'));
    const aside = await moveCacheAside(root, 'mysql', new Date('2026-12-01T02:14:05.123Z'));
    assert.equal(aside, join(root, 'mysql.damaged-20261201T021405Z'));
    assert.deepEqual((await readdir(root)).sort(), ['influxdb', 'mysql.damaged-20261201T021405Z']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
