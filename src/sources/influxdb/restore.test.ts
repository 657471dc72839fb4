// The counts after an InfluxDB restore, against an HTTP server on loopback that answers the way
// influxd does while it reopens a restored shard: the transient refusals are waited out, any other
// refusal is reported at once.
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { quickDeadline, CommandRunner } from '../../system/run-command.js';
import { InfluxAdmin } from './restore.js';

/** What SHOW MEASUREMENTS answers next; the last entry repeats. */
let measurementAnswers: (string | null)[] = [];
let measurementQueries = 0;
let server: Server;
let admin: InfluxAdmin;

before(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const statement = new URLSearchParams(Buffer.concat(chunks).toString()).get('q') ?? '';
      response.setHeader('content-type', 'application/json');
      if (statement === 'SHOW DATABASES') {
        response.end(JSON.stringify({ results: [{ series: [{ name: 'databases', values: [['telegraf']] }] }] }));
      } else if (statement === 'SHOW MEASUREMENTS') {
        const error = measurementAnswers[Math.min(measurementQueries++, measurementAnswers.length - 1)];
        response.end(
          JSON.stringify({
            results: [error ? { error } : { series: [{ name: 'measurements', values: [['cpu'], ['mem']] }] }],
          }),
        );
      } else {
        response.end(JSON.stringify({ results: [{ series: [{ name: 'x', values: [[0, 12, 7]] }] }] }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const logger = pino({ level: 'silent' });
  admin = new InfluxAdmin(
    new CommandRunner(logger, new AbortController().signal),
    logger,
    {
      enabled: true,
      databases: ['telegraf'],
      host: '127.0.0.1:1',
      http_url: `http://127.0.0.1:${port}`,
      stop_services: [],
    },
    quickDeadline('the influxdb restore'),
  );
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

for (const transient of ['shard is disabled', 'engine is closed']) {
  test(`"${transient}" right after a restore is waited out, and the counts come back`, async () => {
    measurementAnswers = [transient, transient, null];
    measurementQueries = 0;
    const counts = await admin.measurementCounts('telegraf');
    assert.deepEqual(counts, [
      { name: 'cpu', count: 12, unit: 'points' },
      { name: 'mem', count: 12, unit: 'points' },
    ]);
    assert.equal(measurementQueries, 3);
  });
}

test('any other refusal is reported at once, naming the statement and influxd words', async () => {
  measurementAnswers = ['authorization failed'];
  measurementQueries = 0;
  await assert.rejects(
    admin.measurementCounts('telegraf'),
    /influxdb refused "SHOW MEASUREMENTS": authorization failed/,
  );
  assert.equal(measurementQueries, 1);
});
