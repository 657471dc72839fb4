// pingedRun against a real HTTP server on loopback (node:http in this process): which requests a
// healthchecks check and an Uptime Kuma push monitor get for each way a run ends, that a monitor
// that is down or silent costs at most the timeout and a warning, and that the check's token never
// reaches the log. The ping_url key itself: what the loader accepts, how it tells the two apart,
// and that a bad value is refused without being shown.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { SourceOutcome } from '../domain.js';
import { ConfigError } from '../errors.js';
import { LockBusyError } from '../system/lock.js';
import { PING_TIMEOUT_MS, pingedRun } from './ping.js';
import { ENGINES } from '../sources/registry.js';

const TOKEN = '5f3c0e1a-9b7d-4c2e-8f61-0a1b2c3d4e5f';
const MINIMAL = `[target]\nurl = rsync://backup@backup.example.org/backups\n[mysql]\ndatabases = agama\n`;

interface Received {
  readonly method: string;
  readonly url: string;
  readonly body: string;
}

let server: Server;
let base: string;
const received: Received[] = [];
/** Requests to paths under /silent/ get no answer at all. */
const silent: ServerResponse[] = [];

before(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = request.url ?? '';
      received.push({ method: request.method ?? '', url, body: Buffer.concat(chunks).toString('utf8') });
      if (url.startsWith('/silent/')) silent.push(response);
      else if (url.startsWith('/gone/')) response.writeHead(404).end('not found');
      else response.writeHead(200).end('OK');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const response of silent) response.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function notifyWith(pingUrl: string): Config['notify'] {
  return parseConfig(`${MINIMAL}[notify]\nping_url = ${pingUrl}\n`, '/etc/backup-agent.ini', ENGINES).notify;
}

function capture(): { logger: pino.Logger; lines: () => string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }), lines: () => lines };
}

const LOGS = { last: (count: number) => ['first log line', 'last log line'].slice(-count) };
const OK: SourceOutcome = {
  source: 'mysql',
  result: 'ok',
  kind: 'full',
  bytesDumped: 1000,
  bytesUploaded: 400,
  durationMs: 1200,
};
const FAILED: SourceOutcome = {
  source: 'influxdb',
  result: 'failed',
  stage: 'dump',
  error: 'influxd backup: connection refused\nsecond line',
  bytesDumped: 0,
  durationMs: 300,
};

async function pingRun(
  pingUrl: string,
  run: () => Promise<{ outcomes: readonly SourceOutcome[] }>,
  cancel = new AbortController(),
) {
  const since = received.length;
  const { logger, lines } = capture();
  const started = Date.now();
  const outcome = await pingedRun(notifyWith(pingUrl), logger, cancel.signal, LOGS, run).then(
    (value) => ({ value, error: null }),
    (error: unknown) => ({ value: null, error }),
  );
  return { ...outcome, requests: received.slice(since), log: lines().join(''), ms: Date.now() - started };
}

test('healthchecks: GET /start before the run, POST to the URL with the results and the log after it', async () => {
  const order: string[] = [];
  const result = await pingRun(`${base}/ping/${TOKEN}`, () => {
    order.push(`run after ${received.length} requests`);
    return Promise.resolve({ outcomes: [OK] });
  });
  assert.deepEqual(result.value, { outcomes: [OK] });
  assert.deepEqual(
    result.requests.map(({ method, url }) => `${method} ${url}`),
    [`GET /ping/${TOKEN}/start`, `POST /ping/${TOKEN}`],
  );
  assert.equal(order[0], `run after ${received.length - 1} requests`, 'the start ping comes before the run');
  assert.equal(result.requests[1]?.body, 'mysql: full backup OK\n\nLast log lines:\nfirst log line\nlast log line\n');
  assert.match(result.log, /"ping":"start".*ping sent: start/);
  assert.ok(!result.log.includes(TOKEN), result.log);
});

test('healthchecks: a failed source POSTs /fail with the cause and the last log lines; a query stays', async () => {
  const result = await pingRun(`${base}/${TOKEN}/?create=1`, () => Promise.resolve({ outcomes: [OK, FAILED] }));
  assert.deepEqual(
    result.requests.map(({ method, url }) => `${method} ${url}`),
    [`GET /${TOKEN}/start?create=1`, `POST /${TOKEN}/fail?create=1`],
  );
  assert.equal(
    result.requests[1]?.body,
    [
      'mysql: full backup OK',
      'influxdb: backup FAILED during dump: influxd backup: connection refused',
      '',
      'Last log lines:',
      'first log line',
      'last log line',
      '',
    ].join('\n'),
  );
});

test('healthchecks: a run that fails before any source /fails with the error, which is thrown on', async () => {
  const boom = new Error('agent.staging_dir is not writable');
  const result = await pingRun(`${base}/${TOKEN}`, () => Promise.reject(boom));
  assert.equal(result.error, boom);
  assert.deepEqual(
    result.requests.map(({ method, url }) => `${method} ${url}`),
    [`GET /${TOKEN}/start`, `POST /${TOKEN}/fail`],
  );
  assert.match(
    result.requests[1]?.body ?? '',
    /^backup run failed before any source ran: agent.staging_dir is not writable\n/,
  );
});

test('a run that another holder of the lock prevented, or that a signal stopped, sends no verdict', async () => {
  const busy = new LockBusyError('/var/cache/backup-agent/backup-agent.lock', undefined);
  const locked = await pingRun(`${base}/${TOKEN}`, () => Promise.reject(busy));
  assert.equal(locked.error, busy);
  const cancel = new AbortController();
  const stopped = await pingRun(
    `${base}/${TOKEN}`,
    () => {
      cancel.abort('SIGTERM');
      return Promise.reject(new Error('mariadb-dump was killed by SIGTERM'));
    },
    cancel,
  );
  assert.match(String(stopped.error), /killed by SIGTERM/);
  for (const result of [locked, stopped]) {
    assert.deepEqual(
      result.requests.map(({ url }) => url),
      [`/${TOKEN}/start`],
    );
  }
});

test('Uptime Kuma: no start, then status=up, or status=down with the cause as msg, on the push URL', async () => {
  const push = `${base}/api/push/${TOKEN}?status=up&msg=OK&ping=`;
  const good = await pingRun(push, () => Promise.resolve({ outcomes: [OK] }));
  const bad = await pingRun(push, () => Promise.resolve({ outcomes: [OK, FAILED] }));
  assert.deepEqual(
    [...good.requests, ...bad.requests].map(({ method, url, body }) => ({ method, url, body })),
    [
      { method: 'GET', url: `/api/push/${TOKEN}?status=up&msg=mysql%3A+full+backup+OK&ping=`, body: '' },
      {
        method: 'GET',
        url: `/api/push/${TOKEN}?status=down&msg=mysql%3A+full+backup+OK%3B+influxdb%3A+backup+FAILED+during+dump%3A+influxd+backup%3A+connection+refused&ping=`,
        body: '',
      },
    ],
  );
});

test('a monitor that does not answer costs the timeout and a warning, never the result or the token', async () => {
  // Collections while the pings wait, as a daemon has them after a backup: a timeout that only a
  // weak reference held would be collected and never fire.
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  const collecting = setInterval(collect, 200);
  const result = await pingRun(`${base}/silent/${TOKEN}`, () => Promise.resolve({ outcomes: [OK] })).finally(() =>
    clearInterval(collecting),
  );
  assert.deepEqual(result.value, { outcomes: [OK] });
  assert.equal(result.requests.length, 2);
  assert.ok(result.ms >= 2 * PING_TIMEOUT_MS - 100, `${result.ms} ms: both pings waited for the timeout`);
  assert.ok(result.ms < 2 * PING_TIMEOUT_MS + 2000, `${result.ms} ms: and no longer`);
  const warnings = result.log
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: number; msg: string; server: string });
  assert.deepEqual(
    warnings.map((line) => [line.level, line.msg, line.server]),
    ['start', 'success'].map((signal) => [
      40,
      `cannot ping the monitor in notify.ping_url (${signal}): no answer within 5s; the backup is not affected`,
      base,
    ]),
  );
  assert.ok(!result.log.includes(TOKEN), result.log);
});

test('a monitor that is not there, or does not know the check, is a warning naming why', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const refused = await pingRun(`http://127.0.0.1:${port}/${TOKEN}`, () => Promise.resolve({ outcomes: [FAILED] }));
  assert.deepEqual(refused.value, { outcomes: [FAILED] });
  assert.ok(refused.ms < 2000, `${refused.ms} ms`);
  assert.match(refused.log, new RegExp(`\\(fail\\): fetch failed: connect ECONNREFUSED 127.0.0.1:${port}; the backup`));
  const gone = await pingRun(`${base}/gone/${TOKEN}`, () => Promise.resolve({ outcomes: [OK] }));
  assert.match(gone.log, /\(success\): the server answered 404 Not Found; the backup is not affected/);
  for (const log of [refused.log, gone.log]) assert.ok(!log.includes(TOKEN), log);
});

test('an empty ping_url sends nothing', async () => {
  const since = received.length;
  const config = parseConfig(MINIMAL, '/etc/backup-agent.ini', ENGINES);
  assert.equal(config.notify.ping_url, null);
  const { logger } = capture();
  await pingedRun(config.notify, logger, new AbortController().signal, LOGS, () => Promise.resolve({ outcomes: [] }));
  assert.equal(received.length, since);
});

test('ping_url: healthchecks and Uptime Kuma URLs are told apart by the push path', () => {
  assert.deepEqual(notifyWith(`https://hc-ping.com/${TOKEN}#note`).ping_url, {
    href: `https://hc-ping.com/${TOKEN}`,
    service: 'healthchecks',
  });
  assert.equal(notifyWith(`https://hc.example.org/ping/${TOKEN}`).ping_url?.service, 'healthchecks');
  assert.equal(
    notifyWith(`https://status.example.org/kuma/api/push/${TOKEN}?status=up&msg=OK&ping=`).ping_url?.service,
    'uptime-kuma',
  );
});

test('ping_url: a bad value is refused naming the key, never showing the value', () => {
  for (const bad of [
    `hc-ping.com/${TOKEN}`,
    `ftp://hc-ping.com/${TOKEN}`,
    'https://hc-ping.com/',
    `https://user:${TOKEN}@hc-ping.com/check`,
  ]) {
    let problems: readonly string[] = [];
    try {
      parseConfig(`${MINIMAL}[notify]\nping_url = ${bad}\n`, '/etc/backup-agent.ini', ENGINES);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      problems = error.problems;
    }
    assert.equal(problems.length, 1, `${bad} was accepted`);
    assert.match(problems[0] ?? '', /^notify\.ping_url \(value not shown: it can hold a password\): /);
    assert.ok(!(problems[0] ?? '').includes(TOKEN), problems[0]);
  }
});
