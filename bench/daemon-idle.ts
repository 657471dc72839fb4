// What an idle `backup-agent daemon` costs the host: resident memory and CPU time over a minute
// between two slots, started as backup like under systemd's User=backup, with a notify socket
// and a 30 s watchdog so that the sd-notify addon and the ping timer are part of the figure.
//   node --import tsx bench/daemon-idle.ts [--seconds 60] [--warmup 5]
// Needs the build (dist/main.js) and no services: an idle daemon contacts nothing.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { AGENT, NODE_FLAG } from '../test/harness/agent.js';
import { startNotifySocket } from '../test/harness/notify-socket.js';
import { asBackupUser, chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, warmup: { type: 'string', default: '5' } },
});
const seconds = Number(values.seconds);
const WARMUP_MS = Number(values.warmup) * 1000;

const dir = await makeTempDir('daemon-idle');
const notify = await startNotifySocket();
try {
  const state = join(dir, 'state');
  await mkdir(state, { mode: 0o700 });
  await writeFile(join(dir, 'passphrase'), 'idle bench passphrase\n', { mode: 0o600 });
  await chownToBackup(state);
  await chownToBackup(join(dir, 'passphrase'));
  const config = join(dir, 'backup-agent.ini');
  // A slot far away and no catch-up: the daemon only waits, as it does 23 hours a day.
  await writeFile(
    config,
    [
      '[agent]',
      'schedule = 0 3 1 1 *',
      'catch_up = false',
      `state_file = ${join(state, 'state.json')}`,
      `cache_dir = ${join(state, 'cache')}`,
      `staging_dir = ${join(state, 'staging')}`,
      '[target]',
      'url = rsync://backup@127.0.0.1:1//srv/backups',
      `passphrase_file = ${join(dir, 'passphrase')}`,
      '[influxdb]',
      'databases = telegraf',
      '[metrics]',
      `textfile = ${join(state, 'backup_agent.prom')}`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );

  const daemon = execa(
    'setpriv',
    await asBackupUser([process.execPath, NODE_FLAG, AGENT, '--config', config, 'daemon']),
    {
      reject: false,
      stdin: 'ignore',
      env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '30000000' },
    },
  );
  const pid = daemon.pid ?? 0;
  await notify.waitFor('READY=1', (message) => message.fields.includes('READY=1'), 30_000);
  await sleep(WARMUP_MS);

  const ticksPerSecond = Number((await execa('getconf', ['CLK_TCK'])).stdout.trim());
  const before = await cpuTicks(pid);
  const rss: number[] = [];
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    rss.push(await statusKiB(pid, 'VmRSS'));
    await sleep(1000);
  }
  const cpuSeconds = ((await cpuTicks(pid)) - before) / ticksPerSecond;
  const elapsed = (Date.now() - started) / 1000;
  const hwm = await statusKiB(pid, 'VmHWM');

  daemon.kill('SIGTERM');
  const result = await daemon;
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  process.stdout.write(
    [
      `idle daemon over ${elapsed.toFixed(0)} s (after ${WARMUP_MS / 1000} s warm-up), node ${process.version}:`,
      `  RSS        first ${mib(rss[0] ?? 0)} MiB, last ${mib(rss.at(-1) ?? 0)} MiB, max ${mib(Math.max(...rss))} MiB (peak since start, VmHWM: ${mib(hwm)} MiB)`,
      `  CPU        ${cpuSeconds.toFixed(2)} s user+system = ${((cpuSeconds / elapsed) * 100).toFixed(2)} % of one core`,
      `  watchdog   ${notify.values('WATCHDOG').length} WATCHDOG=1 (every 15 s for WATCHDOG_USEC=30 s)`,
      `  exit code after SIGTERM: ${result.exitCode ?? 'none'}`,
      '',
    ].join('\n'),
  );
} finally {
  await notify.stop();
  await removeDir(dir);
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // utime and stime are fields 14 and 15; the command name (field 2) may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function statusKiB(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0);
}
