import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { type CommandResult, CommandRunner, type CommandSpec } from '../system/run-command.js';
import { duplicityVersion, versionCachePath } from './version-cache.js';

/** The real runner, counting the duplicity processes it starts. */
class CountingRunner extends CommandRunner {
  started = 0;
  override run(spec: CommandSpec): Promise<CommandResult> {
    this.started++;
    return super.run(spec);
  }
}

test('duplicity --version runs once per installed duplicity; root never reads the cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'version-cache-'));
  try {
    const runner = new CountingRunner(pino({ level: 'silent' }), new AbortController().signal);
    const first = await duplicityVersion(runner, dir);
    assert.equal(runner.started, 1);
    assert.match(first.text, /^\d+\.\d+/);
    assert.deepEqual(await duplicityVersion(runner, dir), first);
    assert.equal(runner.started, 1, 'the second command read the cache');

    // A cache written for another file (an upgrade replaced duplicity) is asked again.
    const cached = JSON.parse(await readFile(versionCachePath(dir), 'utf8')) as { identity: string; output: string };
    await writeFile(versionCachePath(dir), JSON.stringify({ identity: 'x', output: 'duplicity 9.9.9' }));
    assert.deepEqual(await duplicityVersion(runner, dir), first);
    assert.equal(runner.started, 2);
    // Garbage is ignored, not believed.
    await writeFile(versionCachePath(dir), '{"identity": 1}');
    assert.deepEqual(await duplicityVersion(runner, dir), first);
    assert.equal(runner.started, 3);
    // Root (no cache directory) always asks duplicity itself, whatever the file says.
    await writeFile(versionCachePath(dir), JSON.stringify({ ...cached, output: 'duplicity 9.9.9' }));
    assert.deepEqual(await duplicityVersion(runner, null), first);
    assert.equal(runner.started, 4);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
