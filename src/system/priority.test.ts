import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { BACKUP_NICE } from './priority.js';

const UNIT_FILE = new URL('../../systemd/backup-agent.service', import.meta.url).pathname;
const MODULE = new URL('./priority.ts', import.meta.url).pathname;

/** The niceness a child of a node process reports after yieldToDatabases(), started at `startNice`. */
function childNiceAfterYield(startNice: number): number {
  const script = `import { yieldToDatabases } from ${JSON.stringify(MODULE)};
import { execFileSync } from 'node:child_process';
yieldToDatabases();
process.stdout.write(execFileSync('nice', [], { encoding: 'utf8' }));`;
  const out = execFileSync(
    'nice',
    ['-n', String(startNice), process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
  return Number(out.trim());
}

test('a manual run and every child it starts yield to the database: niceness 10, or more if started so', () => {
  assert.equal(childNiceAfterYield(0), BACKUP_NICE);
  assert.equal(childNiceAfterYield(15), 15);
});

test('the unit gives the daemon the same niceness and a low best-effort I/O priority', async () => {
  const unit = await readFile(UNIT_FILE, 'utf8');
  assert.match(unit, new RegExp(`^Nice=${BACKUP_NICE}$`, 'm'));
  assert.match(unit, /^IOSchedulingClass=best-effort$/m);
  assert.match(unit, /^IOSchedulingPriority=7$/m);
});
