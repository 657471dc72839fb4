// Dead-man's pings (notify.ping_url) from real runs: `backup-agent run` and the daemon's scheduled
// run, against real MariaDB and an sshd+rsync target, pinging an HTTP(S) server this test runs on
// loopback. What the monitor receives (exact method, path and body) for a run that succeeds and
// for runs that fail (a database that does not exist, a MariaDB that is down); that a monitor which
// never answers costs each ping at most its timeout and a warning, not the backup; that https to a
// private CA works through NODE_EXTRA_CA_CERTS, as for mail, and fails without it; and that the
// check's token appears nowhere in what the agent prints.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { PING_TIMEOUT_MS } from '../src/notify/ping.js';
import { type AgentHost, MYSQL_DATABASE, MYSQL_PASSWORD, type AgentResult, makeAgentHost } from './harness/agent.js';
import { killLeftoverDaemons, prepareDaemonFiles, slotIn, startDaemon, writeDaemonConfig } from './harness/daemon.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { freePort } from './harness/ports.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { type TestCa, makeTestCa } from './harness/tls-ca.js';

const TOKEN = 'c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c';

interface Ping {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  /** When the request had arrived whole (ms since the epoch). */
  readonly at: number;
}

/** A monitor on loopback that records every request; paths under /silent/ never get an answer. */
interface Monitor {
  readonly url: string;
  readonly pings: Ping[];
  stop(): Promise<void>;
}

async function startMonitor(tls?: TestCa): Promise<Monitor> {
  const pings: Ping[] = [];
  const held: ServerResponse[] = [];
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      pings.push({ method: request.method ?? '', path, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      if (path.startsWith('/silent/')) held.push(response);
      else response.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
    });
  };
  const server: Server | HttpsServer =
    tls === undefined ? createServer(handle) : createHttpsServer({ key: tls.key, cert: tls.cert }, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    pings,
    stop: async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let mariadb: MariaDb;
let target: SshTarget;
let ca: TestCa;
let http: Monitor;
let https: Monitor;
let host: AgentHost;

before(async () => {
  ca = await makeTestCa();
  [mariadb, target, http, https] = await Promise.all([
    startMariaDb(),
    startSshTarget(),
    startMonitor(),
    startMonitor(ca),
  ]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 50);
  host = await makeAgentHost({ mariadb, target });
});

afterEach(async () => {
  await killLeftoverDaemons();
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), http?.stop(), https?.stop(), host?.remove()]);
  await ca?.remove();
});

/** `backup-agent run` with this ping_url; the pings the monitor got during it. */
async function manualRun(
  monitor: Monitor,
  pingUrl: string,
  overrides: Record<string, Record<string, string>> = {},
  env: Record<string, string> = {},
): Promise<{ result: AgentResult; pings: Ping[]; exitedAt: number }> {
  await host.writeConfig({ ...overrides, notify: { ping_url: pingUrl } });
  const since = monitor.pings.length;
  const result = await host.run(['run'], env);
  return { result, pings: monitor.pings.slice(since), exitedAt: Date.now() };
}

function requests(pings: readonly Ping[]): string[] {
  return pings.map((ping) => `${ping.method} ${ping.path}`);
}

function assertTokenHidden(printed: string): void {
  assert.ok(!printed.includes(TOKEN), `the check's token was printed:\n${printed}`);
}

function logTime(result: AgentResult, message: RegExp): number {
  const line = result.logs.find((log) => message.test(log.msg));
  assert.ok(line !== undefined, `no log line ${String(message)}:\n${result.stdout}`);
  return Date.parse(String(line['time']));
}

test('a successful manual run: GET /start before the backup, then POST to the check URL with the results', async () => {
  const { result, pings } = await manualRun(http, `${http.url}/ping/${TOKEN}`);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.deepEqual(requests(pings), [`GET /ping/${TOKEN}/start`, `POST /ping/${TOKEN}`]);
  const [start, success] = pings;
  assert.equal(start?.body, '');
  assert.ok((start?.at ?? Infinity) <= logTime(result, /^backup run started/), 'the start ping precedes the run');
  assert.match(success?.body ?? '', /^mysql: (full|incremental) backup OK\n\nLast log lines:\n/);
  assert.match(success?.body ?? '', /INFO \[mysql\] mysql: (full|incremental) backup OK: .* dumped, .* uploaded/);
  assert.ok(
    result.logs.some((log) => log.msg === 'ping sent: success' && log['server'] === http.url),
    result.stdout,
  );
  assertTokenHidden(result.stdout + result.stderr);
});

test('a manual run of a database that does not exist: POST /fail with the cause and the last log lines', async () => {
  const { result, pings } = await manualRun(http, `${http.url}/${TOKEN}`, { mysql: { databases: 'nosuchdb' } });
  assert.equal(result.exitCode, 1, result.stdout + result.stderr);
  assert.deepEqual(requests(pings), [`GET /${TOKEN}/start`, `POST /${TOKEN}/fail`]);
  const body = pings[1]?.body ?? '';
  assert.match(body, /^mysql: backup FAILED during dump: .*nosuchdb/);
  assert.match(body, /\nLast log lines:\n(.*\n)*.*ERROR \[mysql\] mysql: backup FAILED during dump after/);
  assertTokenHidden(result.stdout + result.stderr);
});

test('an Uptime Kuma push URL, pasted as Kuma shows it: one GET at the end, status=up', async () => {
  const { result, pings } = await manualRun(http, `${http.url}/api/push/${TOKEN}?status=up&msg=OK&ping=`);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.equal(pings.length, 1, requests(pings).join('\n'));
  const url = new URL(pings[0]?.path ?? '', http.url);
  assert.equal(pings[0]?.method, 'GET');
  assert.equal(url.pathname, `/api/push/${TOKEN}`);
  assert.equal(url.searchParams.get('status'), 'up');
  assert.match(url.searchParams.get('msg') ?? '', /^mysql: (full|incremental) backup OK$/);
  assertTokenHidden(result.stdout + result.stderr);
});

test('a monitor that never answers: the backup succeeds, each ping waits at most its timeout, with a warning', async () => {
  const { result, pings, exitedAt } = await manualRun(http, `${http.url}/silent/${TOKEN}`);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  assert.deepEqual(requests(pings), [`GET /silent/${TOKEN}/start`, `POST /silent/${TOKEN}`]);
  const warnings = result.logs.filter((log) => log.level === 40 && log['component'] === 'ping');
  assert.deepEqual(
    warnings.map((log) => log.msg),
    ['start', 'success'].map(
      (signal) =>
        `cannot ping the monitor in notify.ping_url (${signal}): no answer within ${PING_TIMEOUT_MS / 1000}s; the backup is not affected`,
    ),
  );
  const waitedAtStart = logTime(result, /^backup run started/) - (pings[0]?.at ?? 0);
  assert.ok(
    waitedAtStart >= PING_TIMEOUT_MS - 100 && waitedAtStart < PING_TIMEOUT_MS + 3000,
    `the run began ${waitedAtStart} ms after the start ping`,
  );
  const waitedAtEnd = exitedAt - (pings[1]?.at ?? 0);
  assert.ok(waitedAtEnd < PING_TIMEOUT_MS + 3000, `the agent exited ${waitedAtEnd} ms after the last ping`);
  assertTokenHidden(result.stdout + result.stderr);
});

test('a monitor that is not listening: a warning naming the refusal, and the backup succeeds', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await host.writeConfig({ notify: { ping_url: `${closed}/${TOKEN}` } });
  const result = await host.run(['run']);
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const warnings = result.logs.filter((log) => log.level === 40 && log['component'] === 'ping');
  assert.equal(warnings.length, 2, result.stdout);
  for (const warning of warnings) {
    assert.match(warning.msg, /: fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+; the backup is not affected$/);
    assert.equal(warning['server'], closed);
  }
  assertTokenHidden(result.stdout + result.stderr);
});

test('https to a private CA: refused without NODE_EXTRA_CA_CERTS (a warning), pinged with it', async () => {
  const untrusted = await manualRun(https, `${https.url}/${TOKEN}`);
  assert.equal(untrusted.result.exitCode, 0, untrusted.result.stdout + untrusted.result.stderr);
  assert.deepEqual(untrusted.pings, [], 'no request crossed an unverified connection');
  const warnings = untrusted.result.logs.filter((log) => log.level === 40 && log['component'] === 'ping');
  assert.equal(warnings.length, 2, untrusted.result.stdout);
  assert.match(warnings[0]?.msg ?? '', /\(start\): fetch failed: unable to verify the first certificate;/);

  const trusted = await manualRun(https, `${https.url}/${TOKEN}`, {}, { NODE_EXTRA_CA_CERTS: ca.caFile });
  assert.equal(trusted.result.exitCode, 0, trusted.result.stdout + trusted.result.stderr);
  assert.deepEqual(requests(trusted.pings), [`GET /${TOKEN}/start`, `POST /${TOKEN}`]);
});

test('the daemon: a scheduled run with MariaDB down pings /start, then /fail with the log, over https', async () => {
  const downCnf = join(host.dir, 'etc', 'down.cnf');
  await mariadb.writeMyCnf(downCnf, {
    user: 'bk',
    password: MYSQL_PASSWORD,
    host: '127.0.0.1',
    port: await freePort(),
  });
  const files = await prepareDaemonFiles(host);
  const slot = slotIn(10);
  await writeDaemonConfig(host, files, {
    agent: { schedule: slot.cron, catch_up: 'false', deadline: '' },
    mysql: { defaults_file: downCnf },
    notify: { ping_url: `${https.url}/${TOKEN}` },
  });
  const since = https.pings.length;
  const daemon = startDaemon(host, { NODE_EXTRA_CA_CERTS: ca.caFile });
  await daemon.waitForLog('the final ping', (line) => line.msg === 'ping sent: fail');
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  const pings = https.pings.slice(since);
  assert.deepEqual(requests(pings), [`GET /${TOKEN}/start`, `POST /${TOKEN}/fail`]);
  assert.ok((pings[0]?.at ?? 0) >= slot.at.getTime() - 1000, 'the start ping goes at the slot');
  const body = pings[1]?.body ?? '';
  assert.match(body, /^mysql: backup FAILED during dump: .*Can't connect/);
  assert.match(body, /\nLast log lines:\n(.*\n)*.* INFO run started: daemon \(scheduled /);
  assertTokenHidden(daemon.output());
});
