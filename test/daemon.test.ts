// The daemon as systemd runs it, against real MariaDB, InfluxDB, sshd+rsync, an SMTP server and a
// unix datagram socket standing in for systemd's notification socket: it signals READY only for a
// valid configuration, runs on a near-future slot, tells STATUS around the run, pings the watchdog,
// mails failures and recoveries (once, also when a manual run fixed things), catches up a missed
// slot, survives SIGHUP with a broken file and stops cleanly (exit 0, nothing left behind) on
// SIGTERM in the middle of a run.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentHost, INFLUX_DATABASE, MYSQL_DATABASE, MYSQL_PASSWORD, makeAgentHost } from './harness/agent.js';
import {
  type DaemonFiles,
  killLeftoverDaemons,
  notifyVia,
  parsePrometheusText,
  prepareDaemonFiles,
  readStateFile,
  slotIn,
  startDaemon,
  writeDaemonConfig,
  writeStateFile,
} from './harness/daemon.js';
import { type InfluxDb, seedInflux, startInfluxDb } from './harness/influxdb.js';
import { leftoverProcesses, lockIsFree } from './harness/leftovers.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { type NotifySocket, startNotifySocket } from './harness/notify-socket.js';
import { freePort } from './harness/ports.js';
import { type SmtpSink, startSmtpSink } from './harness/smtp.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { type TestCa, makeTestCa } from './harness/tls-ca.js';
import { loadConfig } from '../src/config/load.js';
import { hostCalendar, readHostIdentity, spreadOffsetMs } from '../src/history/spread.js';
import { formatTime } from '../src/history/time-text.js';
import { formatRsyncUrl } from '../src/remote/rsync-url.js';
import { ENGINES } from '../src/sources/registry.js';

const BULK_DATABASE = 'bulk';

let mariadb: MariaDb;
let influx: InfluxDb;
let target: SshTarget;
let smtp: SmtpSink;
let ca: TestCa;
let notify: NotifySocket;
let host: AgentHost;
let files: DaemonFiles;

before(async () => {
  ca = await makeTestCa();
  // Every agent this file starts inherits it: the login to the sink must go over verified STARTTLS.
  process.env['NODE_EXTRA_CA_CERTS'] = ca.caFile;
  [mariadb, influx, target, smtp, notify] = await Promise.all([
    startMariaDb(),
    startInfluxDb(),
    startSshTarget(),
    startSmtpSink({ tls: ca }),
    startNotifySocket(),
  ]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 500);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 500);
  host = await makeAgentHost({ mariadb, influx, target });
  files = await prepareDaemonFiles(host, smtp);
});

afterEach(async () => {
  const killed = await killLeftoverDaemons();
  if (killed > 0) process.stderr.write(`killed ${killed} daemon(s) a failed test left running\n`);
});

after(async () => {
  await Promise.allSettled([
    mariadb?.stop(),
    influx?.stop(),
    target?.stop(),
    smtp?.stop(),
    notify?.stop(),
    host?.remove(),
    ca?.remove(),
  ]);
});

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function lastRunOf(): Promise<{
  trigger: string;
  result: string;
  reason: string | null;
  slot: string | null;
} | null> {
  return (await readStateFile(files).catch(() => null))?.lastRun ?? null;
}

test('an invalid configuration stops the daemon before READY=1, with exit 78', async () => {
  await writeDaemonConfig(host, files, { agent: { schedule: 'every night' } });
  const since = notify.messages.length;
  const daemon = startDaemon(host, { NOTIFY_SOCKET: notify.path });
  const result = await daemon.exited;
  assert.equal(result.exitCode, 78, daemon.output());
  assert.match(daemon.output(), /agent\.schedule = "every night": expected a cron expression/);
  await sleep(500);
  assert.deepEqual(notify.messages.slice(since), [], 'systemd heard nothing: the unit fails to start');
});

test('a scheduled run: READY, STATUS before/during/after, watchdog pings, state.json and metrics, STOPPING, exit 0', async () => {
  const slot = slotIn(15);
  await writeDaemonConfig(host, files, { agent: { schedule: slot.cron, catch_up: 'false' } });
  const since = notify.messages.length;
  const fresh = (predicate: (fields: readonly string[]) => boolean) => (message: (typeof notify.messages)[number]) =>
    notify.messages.indexOf(message) >= since && predicate(message.fields);
  const daemon = startDaemon(host, { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '4000000' });

  const ready = await notify.waitFor(
    'READY=1',
    fresh((fields) => fields.includes('READY=1')),
  );
  const idle = await notify.waitFor(
    'an idle STATUS',
    fresh((fields) => fields.some((f) => f.startsWith('STATUS=idle · next'))),
  );
  assert.ok(ready.at <= idle.at);
  assert.match(idle.fields.join(''), / \(full\) · /, 'the first run on an empty target is expected to be full');

  const running = await notify.waitFor(
    'STATUS=running',
    fresh((fields) => fields.some((f) => f.startsWith('STATUS=running'))),
  );
  assert.ok(running.at >= slot.at.getTime() - 1000, 'the run starts at the slot, not before');
  const done = await notify.waitFor(
    'STATUS=idle after the run',
    (message) => message.at > running.at && message.fields.some((f) => /^STATUS=idle · next .* · last OK /.test(f)),
  );
  const steps = notify
    .values('STATUS')
    .filter((entry) => entry.at >= running.at && entry.at <= done.at)
    .map((entry) => entry.value);
  assert.ok(
    steps.some((value) => /running .*mysql dump/.test(value)),
    steps.join('\n'),
  );
  assert.ok(
    steps.some((value) => /running .*full upload/.test(value)),
    steps.join('\n'),
  );
  assert.match(done.fields.join(''), /last OK \d{4}-\d{2}-\d{2} \d{2}:\d{2} full \d+(\.\d)? (B|KiB|MiB) in /);

  const state = await readStateFile(files);
  assert.equal(state.lastRun?.result, 'ok');
  assert.match(state.lastRun?.trigger ?? '', /^daemon \(scheduled /);
  assert.equal(state.lastRun?.slot, slot.at.toISOString());
  for (const source of ['mysql', 'influxdb']) {
    assert.equal(state.sources[source]?.lastSuccess?.['kind'], 'full');
    assert.equal(state.sources[source]?.chainLength, 1);
  }

  const metrics = parsePrometheusText(await readFile(files.metricsFile, 'utf8'));
  assert.equal((await stat(files.metricsFile)).mode & 0o777, 0o644, 'node_exporter must be able to read it');
  const startedAt = Date.parse(String(state.sources['mysql']?.lastSuccess?.['startedAt'])) / 1000;
  assert.equal(metrics.get('backup_agent_last_success_timestamp_seconds{source="mysql"}'), Math.floor(startedAt));
  assert.equal(metrics.get('backup_agent_last_full_timestamp_seconds{source="mysql"}'), Math.floor(startedAt));
  assert.equal(metrics.get('backup_agent_last_run_success{source="influxdb"}'), 1);
  assert.ok((metrics.get('backup_agent_last_run_bytes{source="mysql",phase="dump"}') ?? 0) > 10_000);
  assert.ok((metrics.get('backup_agent_last_run_duration_seconds{source="influxdb"}') ?? 0) > 0);

  const pings = notify.values('WATCHDOG').filter((entry) => entry.at >= ready.at);
  const gaps = pings.slice(1).map((entry, index) => entry.at - (pings[index]?.at ?? 0));
  assert.ok(pings.length >= 3, `${pings.length} WATCHDOG=1 since READY`);
  assert.ok(
    Math.max(...gaps) < 4000,
    `a gap of ${Math.max(...gaps)} ms would let a 4 s watchdog fire: ${gaps.join(', ')}`,
  );
  assert.ok(
    gaps.filter((gap) => gap > 1500 && gap < 3000).length >= gaps.length / 2,
    `pings about every 2 s: ${gaps.join(', ')}`,
  );

  daemon.signal('SIGTERM');
  const result = await daemon.exited;
  assert.equal(result.exitCode, 0, daemon.output());
  await notify.waitFor(
    'STOPPING=1',
    fresh((fields) => fields.includes('STOPPING=1')),
    10_000,
  );
});

test('a failed run mails host, source and cause; after a fix and SIGHUP the next run mails the recovery', async () => {
  const closedPort = await freePort();
  const mailsBefore = smtp.mails.length;
  await writeDaemonConfig(host, files, {
    agent: { schedule: slotIn(15).cron, catch_up: 'false' },
    influxdb: { host: `127.0.0.1:${closedPort}` },
    notify: notifyVia(smtp, files),
  });
  const daemon = startDaemon(host);
  const cmdline = await readFile(`/proc/${daemon.pid}/cmdline`, 'utf8');

  const failure = await smtp.waitFor(/FAILED/, mailsBefore);
  assert.equal(failure.user, smtp.user, 'the agent logged in with the password from its file');
  assert.equal(failure.secure, true, 'over STARTTLS');
  assert.deepEqual(failure.to, ['ops@example.org']);
  assert.equal(failure.from, `backup-agent@${hostname()}`);
  assert.match(failure.subject, new RegExp(`^\\[backup-agent\\] ${hostname()}: influxdb backup FAILED \\(dump\\): `));
  assert.match(failure.subject, new RegExp(`influxdb is not reachable at 127\\.0\\.0\\.1:${closedPort}`));
  assert.match(failure.body, /^NOT AFFECTED$/m);
  assert.match(failure.body, /^ {2}mysql: full backup OK|^ {2}mysql: incremental backup OK/m);
  assert.match(
    failure.body,
    /^ {2}influxdb: nothing was uploaded; the previous dump in staging and the backups on the target are untouched$/m,
  );
  assert.match(failure.body, /^Last log lines of /m);
  assert.equal((await readStateFile(files)).sources['influxdb']?.lastRun?.['result'], 'failed');
  const failing = await host.run(['status']);
  assert.equal(failing.exitCode, 1, 'status fails while a source fails: usable from Nagios');
  assert.match(failing.stdout, /^backup-agent on .*: NOT HEALTHY$/m);
  assert.match(failing.stdout, /^influxdb: FAILING$/m);
  assert.match(failing.stdout, new RegExp(`influxdb is not reachable at 127\\.0\\.0\\.1:${closedPort}`));
  assert.match(failing.stdout, /^mysql: OK$/m);

  const fixedSlot = slotIn(15);
  await writeDaemonConfig(host, files, {
    agent: { schedule: fixedSlot.cron, catch_up: 'false' },
    notify: notifyVia(smtp, files),
  });
  const reloadsBefore = daemon.logs.length;
  daemon.signal('SIGHUP');
  await daemon.waitForLog(
    'the reload',
    (line) => daemon.logs.indexOf(line) >= reloadsBefore && /^configuration reloaded/.test(line.msg),
  );
  const recovery = await smtp.waitFor(/recovered/, mailsBefore);
  assert.equal(recovery.subject, `[backup-agent] ${hostname()}: influxdb backup recovered`);
  assert.match(recovery.body, /influxdb: (full|incremental) backup OK.*; failing since /);

  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  const output = daemon.output();
  assert.ok(
    !output.includes(smtp.password) && !cmdline.includes(smtp.password),
    'the SMTP password is in no log and no argv',
  );
  assert.equal(smtp.mails.length - mailsBefore, 2, smtp.mails.map((mail) => mail.subject).join('\n'));
});

test('a manual run is recorded: status follows it, a fix by hand mails the recovery once, and the daemon keeps the record', async () => {
  const closedPort = await freePort();
  const mailsBefore = smtp.mails.length;
  await writeDaemonConfig(host, files, {
    agent: { schedule: slotIn(12).cron, catch_up: 'false' },
    influxdb: { host: `127.0.0.1:${closedPort}` },
    notify: notifyVia(smtp, files),
  });
  const daemon = startDaemon(host, { NOTIFY_SOCKET: notify.path });
  await smtp.waitFor(/influxdb backup FAILED/, mailsBefore);

  await writeDaemonConfig(host, files, {
    agent: { schedule: '0 0 1 1 *', catch_up: 'false' },
    notify: notifyVia(smtp, files),
  });
  const fixed = await host.run(['run', '--source', 'influxdb']);
  assert.equal(fixed.exitCode, 0, fixed.stdout + fixed.stderr);
  const recorded = await readStateFile(files);
  assert.equal(recorded.lastRun?.trigger, 'backup-agent run');
  assert.equal(recorded.sources['influxdb']?.lastRun?.['result'], 'ok');
  assert.equal(recorded.sources['influxdb']?.lastRun?.['trigger'], 'backup-agent run');
  const recovery = await smtp.waitFor(/influxdb backup recovered/, mailsBefore);
  assert.match(recovery.body, /^Backups on .* work again \(backup-agent run\)\.$/m);
  const status = await host.run(['status']);
  assert.equal(status.exitCode, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /^influxdb: OK$/m);

  // The daemon's memory still has influxdb failing: it must take the file's word for it.
  const slot = slotIn(15);
  await writeDaemonConfig(host, files, {
    agent: { schedule: slot.cron, catch_up: 'false' },
    notify: notifyVia(smtp, files),
  });
  const beforeReload = notify.messages.length;
  daemon.signal('SIGHUP');
  const reloaded = await notify.waitFor(
    'STATUS after the reload',
    (message) =>
      notify.messages.indexOf(message) >= beforeReload && message.fields.some((field) => field.startsWith('STATUS=')),
  );
  assert.match(reloaded.fields.join(' | '), /STATUS=idle · next .* · last OK /);
  await waitFor('the next scheduled run', async () => (await lastRunOf())?.slot === slot.at.toISOString());
  assert.equal((await lastRunOf())?.result, 'ok');
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  const subjects = smtp.mails.slice(mailsBefore).map((mail) => mail.subject);
  assert.equal(subjects.filter((subject) => /recovered/.test(subject)).length, 1, subjects.join('\n'));
});

test('SIGHUP with a broken configuration logs it, keeps the old schedule, and the run still happens', async () => {
  const slot = slotIn(20);
  await writeDaemonConfig(host, files, { agent: { schedule: slot.cron, catch_up: 'false' } });
  const since = notify.messages.length;
  const daemon = startDaemon(host, { NOTIFY_SOCKET: notify.path });
  await daemon.waitForLog('daemon ready', (line) => /^daemon ready/.test(line.msg));

  await writeDaemonConfig(host, files, { agent: { schedule: 'at midnight', catch_up: 'false' } });
  daemon.signal('SIGHUP');
  const rejected = await daemon.waitForLog('the rejected reload', (line) =>
    /configuration is invalid, keeping the previous one/.test(line.msg),
  );
  assert.ok(rejected.msg.includes(`keeping the previous one (schedule "${slot.cron}")`), rejected.msg);
  assert.match(rejected.msg, /agent\.schedule = "at midnight"/);
  await notify.waitFor(
    'STATUS naming the failed reload',
    (message) =>
      notify.messages.indexOf(message) >= since && message.fields.some((f) => /config reload FAILED/.test(f)),
  );

  await waitFor('the run of the old schedule', async () => (await lastRunOf())?.slot === slot.at.toISOString());
  assert.equal((await lastRunOf())?.result, 'ok');
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
});

test('after downtime over a slot, the daemon catches up once; a restart after that does not', async () => {
  const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
  const previous = await readStateFile(files);
  // As a host switched off before last night's slot left it: the last success is two days old.
  const sources = Object.fromEntries(
    Object.entries(previous.sources).map(([source, entry]) => [
      source,
      {
        ...entry,
        lastRun: { ...entry.lastSuccess, startedAt: daysAgo(2), finishedAt: daysAgo(2) },
        lastSuccess: { ...entry.lastSuccess, startedAt: daysAgo(2), finishedAt: daysAgo(2) },
      },
    ]),
  );
  await writeStateFile(files, {
    ...previous,
    createdAt: daysAgo(3),
    lastRun: { ...previous.lastRun, startedAt: daysAgo(2), finishedAt: daysAgo(2), slot: null },
    sources,
    catchUp: null,
    slaBreaches: {},
  });
  await writeDaemonConfig(host, files, { agent: { schedule: '30 4 * * *' } });

  const daemon = startDaemon(host);
  const announced = await daemon.waitForLog('the catch-up announcement', (line) =>
    /^catching up: the slot of .* passed without a successful backup/.test(line.msg),
  );
  assert.match(announced.msg, /\(mysql: last success .*, influxdb: last success .*\)/);
  await waitFor('the catch-up run', async () => /^daemon \(catch-up for /.test((await lastRunOf())?.trigger ?? ''));
  const state = await readStateFile(files);
  assert.equal(state.lastRun?.result, 'ok');
  assert.equal(state.catchUp?.slot, state.lastRun?.slot);
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());

  const again = startDaemon(host);
  const quiet = await again.waitForLog('the catch-up decision', (line) => /^no catch-up needed/.test(line.msg));
  assert.match(quiet.msg, /every source has a successful backup since the slot/);
  again.signal('SIGTERM');
  assert.equal((await again.exited).exitCode, 0, again.output());
});

test('a slot that finds a manual run holding the lock is skipped, and the state says why', async () => {
  await prepareBulkDatabase();
  await writeDaemonConfig(host, files, {
    agent: { schedule: '0 0 1 1 *', catch_up: 'false' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const manual = host.start(['run']);
  const lock = join(host.cacheDir, 'backup-agent.lock');
  await waitFor('the manual run to take the lock', async () =>
    /"command":"backup-agent run"/.test(await readFile(lock, 'utf8').catch(() => '')),
  );
  // Frozen while it holds the lock (the kernel keeps it held), so it cannot end before the slot.
  const holder = (JSON.parse(await readFile(lock, 'utf8')) as { pid: number }).pid;
  process.kill(holder, 'SIGSTOP');

  const slot = slotIn(8);
  await writeDaemonConfig(host, files, {
    agent: { schedule: slot.cron, catch_up: 'false' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const daemon = startDaemon(host);
  // Read once: the manual run records itself over the skip as soon as it ends.
  const seen: { lastRun: Awaited<ReturnType<typeof lastRunOf>> } = { lastRun: null };
  await waitFor('the skipped slot', async () => {
    seen.lastRun = await lastRunOf();
    return seen.lastRun?.slot === slot.at.toISOString();
  }).finally(() => process.kill(holder, 'SIGCONT'));
  const skipped = seen.lastRun;
  assert.equal(skipped?.result, 'skipped');
  assert.match(
    skipped?.reason ?? '',
    new RegExp(`^run by pid ${holder} in progress, started \\S+ \\(backup-agent run\\)$`),
  );
  assert.ok(daemon.logs.some((line) => line.level === 40 && /^run skipped: run by pid \d+ in progress/.test(line.msg)));
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  assert.equal((await manual).exitCode, 0, String((await manual).all));
  const last = await lastRunOf();
  assert.deepEqual(
    [last?.trigger, last?.result],
    ['backup-agent run', 'ok'],
    'the manual run recorded itself after the skip',
  );
});

test('SIGTERM in the middle of a run: children stopped, lock freed, state consistent, exit 0; the next run succeeds', async () => {
  await prepareBulkDatabase();
  const before = await readStateFile(files);
  const slot = slotIn(10);
  await writeDaemonConfig(host, files, {
    agent: { schedule: slot.cron, catch_up: 'false' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const since = notify.messages.length;
  const daemon = startDaemon(host, { NOTIFY_SOCKET: notify.path });
  const partial = join(host.stagingDir, '.mysql.new', `${BULK_DATABASE}.sql`);
  await waitFor(
    'the bulk dump to be under way',
    async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) > 1_000_000,
  );

  daemon.signal('SIGTERM');
  const result = await daemon.exited;
  assert.equal(result.exitCode, 0, daemon.output());
  assert.ok(
    notify.messages.slice(since).some((message) => message.fields.includes('STOPPING=1')),
    'STOPPING=1 was sent',
  );
  assert.deepEqual(await leftoverProcesses(host.dir), []);
  assert.ok(await lockIsFree(host.cacheDir), 'the lock is released');
  const state = await readStateFile(files);
  assert.equal(state.lastRun?.result, 'interrupted');
  assert.equal(state.lastRun?.slot, slot.at.toISOString());
  assert.deepEqual(state.sources, before.sources, 'an interrupted run changes no source record');

  const next = slotIn(10);
  await writeDaemonConfig(host, files, {
    agent: { schedule: next.cron, catch_up: 'false' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const again = startDaemon(host);
  await waitFor('the next run', async () => (await lastRunOf())?.slot === next.at.toISOString(), 420_000);
  assert.equal((await lastRunOf())?.result, 'ok', again.output());
  again.signal('SIGTERM');
  assert.equal((await again.exited).exitCode, 0, again.output());
});

test('status --json --remote: per source the last run, the chain on the target, SLA state and the next run', async () => {
  await writeDaemonConfig(host, files, {
    agent: { schedule: '15 23 * * *' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const result = await host.run(['status', '--json', '--remote']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const report = JSON.parse(result.stdout) as {
    healthy: boolean;
    nextRun: string;
    sources: {
      source: string;
      health: string;
      lastSuccess: { kind: string; startedAt: string } | null;
      target: { newestFull: string; chainLength: number } | null;
      rpo: { breached: boolean; limitMs: number };
      nextKind: string;
    }[];
  };
  assert.equal(report.healthy, true);
  assert.match(report.nextRun, /T23:15:00\.000Z$/);
  const state = await readStateFile(files);
  for (const source of report.sources) {
    assert.equal(source.health, 'ok', source.source);
    assert.equal(source.lastSuccess?.startedAt, state.sources[source.source]?.lastSuccess?.['startedAt']);
    assert.ok((source.target?.chainLength ?? 0) >= 2, `${source.source}: a full and incrementals on the target`);
    // The state records when the run started, duplicity names the set by when its upload started.
    const lag = Date.parse(source.target?.newestFull ?? '') - Date.parse(state.sources[source.source]?.lastFull ?? '');
    assert.ok(
      lag > -1000 && lag < 600_000,
      `${source.source}: target and state agree on the newest full (${lag} ms apart)`,
    );
    assert.equal(source.rpo.limitMs, 26 * 3_600_000);
    assert.equal(source.nextKind, 'incremental');
  }

  await writeDaemonConfig(host, files, {
    agent: { schedule: '15 23 * * *', rpo: '1s' },
    mysql: { databases: `${MYSQL_DATABASE} ${BULK_DATABASE}` },
  });
  const breached = await host.run(['status']);
  assert.equal(breached.exitCode, 1, breached.stdout);
  assert.match(breached.stdout, /^mysql: BREACH$/m);
  assert.match(breached.stdout, /^ {2}rpo {11}newest backup .* old, limit 1 s BREACHED$/m);
});

test('an SLA breach is mailed once when it opens and once when it closes', async () => {
  const mailsBefore = smtp.mails.length;
  const slot = slotIn(15);
  const settings = (rpo: string) => ({
    agent: { schedule: slot.cron, catch_up: 'false', rpo },
    notify: notifyVia(smtp, files),
  });
  await writeDaemonConfig(host, files, settings('1s'));
  const daemon = startDaemon(host);
  // At the end of the run the newest backup is already older than one second.
  const breach = await smtp.waitFor(/SLA BREACH \(rpo\)/, mailsBefore);
  assert.match(
    breach.subject,
    new RegExp(
      `^\\[backup-agent\\] ${hostname()}: SLA BREACH \\(rpo\\) (mysql|influxdb): the newest successful backup is .* old, more than rpo 1 s$`,
    ),
  );
  await writeDaemonConfig(host, files, settings('26h'));
  daemon.signal('SIGHUP');
  const over = await smtp.waitFor(/SLA breach over/, mailsBefore);
  assert.match(over.subject, /SLA breach over \(rpo:(mysql|influxdb)\)/);
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  const subjects = smtp.mails.slice(mailsBefore).map((mail) => mail.subject);
  assert.equal(subjects.filter((subject) => /SLA BREACH/.test(subject)).length, 2, subjects.join('\n'));
  assert.equal(subjects.filter((subject) => /SLA breach over/.test(subject)).length, 2, subjects.join('\n'));
  assert.equal((await readStateFile(files)).slaBreaches['rpo:mysql'], undefined);
});

let bulkReady = false;

/** About 60 MB of poorly compressible dump in its own database, so that a run lasts long enough to be hit. */
async function prepareBulkDatabase(): Promise<void> {
  if (bulkReady) return;
  await mariadb.sql(`CREATE DATABASE ${BULK_DATABASE}`);
  await mariadb.sql(
    'CREATE TABLE bulk (id INT PRIMARY KEY, a CHAR(128), b CHAR(64), c CHAR(64)) ENGINE=InnoDB; ' +
      'INSERT INTO bulk SELECT seq, SHA2(seq, 512), SHA2(seq + 1, 256), MD5(seq) FROM seq_1_to_200000',
    BULK_DATABASE,
  );
  await mariadb.createBackupUser('bk', MYSQL_PASSWORD, [MYSQL_DATABASE, BULK_DATABASE]);
  bulkReady = true;
}

test("with a spread the daemon runs at this host's slot, not at the schedule's time; status, run --dry-run and check name the offset", async () => {
  // The offset is this machine's (its /etc/machine-id and host name) for this target: the spread is
  // sized so that the offset is about 25 s, and the schedule's time is put that far before the slot.
  await writeDaemonConfig(host, files, { agent: { schedule: '0 0 1 1 *', catch_up: 'false' } });
  const identity = readHostIdentity();
  const url = formatRsyncUrl((await loadConfig(host.configFile, ENGINES)).target.url);
  const fraction = spreadOffsetMs(identity, url, 1e12) / 1e12;
  const spread = `${Math.max(30, Math.ceil(25 / fraction))}s`;
  const slotAt = Math.ceil(Date.now() / 1000) * 1000 + 20_000;
  const planned = async (schedule: string) => {
    await writeDaemonConfig(host, files, { agent: { schedule, spread, catch_up: 'false' } });
    return hostCalendar(await loadConfig(host.configFile, ENGINES), identity);
  };
  const { offsetMs } = await planned('0 0 1 1 *');
  assert.ok(offsetMs >= 10_000, `offset ${offsetMs} ms of spread ${spread}`);
  const scheduled = new Date(slotAt - offsetMs);
  const calendar = await planned(
    `${scheduled.getUTCSeconds()} ${scheduled.getUTCMinutes()} ${scheduled.getUTCHours()} * * *`,
  );
  assert.equal(calendar.schedule.next(new Date())?.getTime(), slotAt);

  const daemon = startDaemon(host);
  const ready = await daemon.waitForLog('daemon ready', (line) => /^daemon ready/.test(line.msg));
  assert.equal(ready['offsetMs'], offsetMs);
  const started = await daemon.waitForLog(
    'the run',
    (line) => /^run started: daemon \(scheduled /.test(line.msg),
    90_000,
  );
  const startedAt = Date.parse(String(started['time']));
  assert.ok(startedAt >= slotAt, `started ${startedAt - slotAt} ms after the slot`);
  assert.ok(startedAt < slotAt + 5_000, `started ${startedAt - slotAt} ms after the slot`);
  await waitFor('the run to be recorded', async () => (await lastRunOf())?.slot === new Date(slotAt).toISOString());
  assert.equal((await lastRunOf())?.result, 'ok');
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());

  const tomorrow = formatTime(new Date(slotAt + 86_400_000), 'UTC');
  const status = await host.run(['status']);
  assert.match(
    status.stdout,
    new RegExp(`^next run: {3}${tomorrow} \\(schedule ".*" in UTC, offset \\d+s of spread \\S+\\)$`, 'm'),
  );
  assert.match(status.stdout, /^full day: {3}\w{3}$/m);
  const plan = await host.run(['run', '--dry-run']);
  assert.equal(plan.exitCode, 0, plan.stderr);
  assert.match(plan.stdout, new RegExp(`^Next slot: ${tomorrow} \\(.*, offset \\d+s of spread .*\\); full day`, 'm'));

  // 23:15 + 2 h cannot end by 01:00, whatever the run takes: check says by how much.
  await writeDaemonConfig(host, files, { agent: { schedule: '15 23 * * *', spread: '2h', deadline: '01:00' } });
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 78, check.stdout);
  assert.match(
    check.stdout,
    /^\[FAIL\] schedule: schedule .* 23:15 UTC \+ spread 2h00m \+ run time .* ends .*, [\d.]+ (min|h) after agent\.deadline 01:00 .*; this host: offset .* of spread 2h00m, next slot .*$/m,
  );
  assert.match(check.stdout, /^ {7}fix: with this run time agent\.spread can be at most /m);
});
