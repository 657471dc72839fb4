// A clone the backup user cannot read (root's /root is 0700): the CLI, which runs itself again as
// backup, says so in one line with exit 78, and the README's scripts run a readable copy instead.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { AGENT } from './harness/agent.js';
import { chownToBackup, makeTempDir } from './harness/temp-dir.js';

const REPO = new URL('../', import.meta.url).pathname;
let privateDir: string;
let clone: string;
let hostDir: string;
let configFile: string;

before(async () => {
  privateDir = await mkdtemp(join(tmpdir(), 'root-only-'));
  clone = join(privateDir, 'backup-agent');
  await mkdir(clone);
  for (const part of ['dist', 'scripts', 'package.json'])
    await cp(join(REPO, part), join(clone, part), { recursive: true });
  // The dependencies are not the point here; linking them keeps the copy small.
  await symlink(join(REPO, 'node_modules'), join(clone, 'node_modules'));
  hostDir = await makeTempDir('readable-clone');
  const state = join(hostDir, 'state');
  await mkdir(state);
  await chownToBackup(state);
  configFile = join(hostDir, 'backup-agent.ini');
  await writeFile(
    configFile,
    `[agent]\nstate_file = ${join(state, 'state.json')}\n\n[target]\nurl = rsync://backup@backup.example.org/backups\n\n[mysql]\ndatabases = agama\n`,
  );
});

after(async () => {
  await rm(privateDir, { recursive: true, force: true });
  await rm(hostDir, { recursive: true, force: true });
});

for (const command of ['status', 'check']) {
  test(`${command} from a clone backup cannot read names the path and the fix in one line, exit 78`, async () => {
    const script = join(clone, 'dist', 'main.js');
    const result = await execa(process.execPath, [script, '--config', configFile, command], { reject: false });
    assert.equal(result.exitCode, 78, result.stderr);
    assert.equal(result.stdout, '', 'nothing before the one line');
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.ok(
      result.stderr.startsWith(
        `backup-agent: ${script} cannot be read by the backup user, which this command runs as (${privateDir} is mode 0700, owner uid 0); fix: `,
      ),
      result.stderr,
    );
    assert.doesNotMatch(result.stderr, /Cannot find module|MODULE_NOT_FOUND|\n\s+at /);
  });
}

test("the scripts' readable copy runs the same command as backup, and is removed afterwards", async () => {
  const before = (await readdir('/var/tmp')).filter((name) => name.startsWith('backup-agent-run.'));
  const result = await execa(
    'bash',
    [
      '-c',
      'cd "$1" && source scripts/readable-copy.sh && readable_copy && node dist/main.js --config "$2" status',
      'readable-copy',
      clone,
      configFile,
    ],
    { reject: false },
  );
  assert.match(
    result.stderr,
    /the backup user cannot read .*; running from a readable copy in \/var\/tmp\/backup-agent-run\./,
  );
  assert.doesNotMatch(result.stderr, /cannot be read by the backup user/);
  assert.ok([0, 1].includes(result.exitCode ?? -1), result.stdout + result.stderr);
  assert.match(result.stdout, /mysql/);
  const left = (await readdir('/var/tmp')).filter((name) => name.startsWith('backup-agent-run.'));
  assert.deepEqual(left, before, 'the copy is gone');
});

test('root starting the CLI from a directory backup cannot enter (/root after sudo -i, Ansible over ssh) still runs its children', async () => {
  const result = await execa(process.execPath, [AGENT, '--config', configFile, 'check'], {
    cwd: privateDir,
    reject: false,
    all: true,
  });
  // mariadb-dump started as backup and read the (missing) option file: before, its spawn could not
  // enter the directory and every child "failed with exit code 128".
  assert.match(result.all, /^\[FAIL\] mysql objects: .*the option file could not be used/m, result.all);
  assert.doesNotMatch(result.all, /exit code 128/, result.all);
});
