// The live-database probe: while the backups run, small primary-key reads and updates go to the same
// MariaDB at a steady rate, and each one's latency is recorded. It stands for the shop's checkout
// that the backup must not slow down.
//
// One persistent `mariadb` client (root over the unix socket) is fed one statement at a time on stdin;
// `--unbuffered` makes it flush each result, so the time from writing the statement to reading its one
// output line is the query's latency as a client sees it (the client's own parsing included, the same in
// every phase). Reads are `SELECT … WHERE id = N`; updates are `INSERT … ON DUPLICATE KEY UPDATE …
// RETURNING`, an autocommitted single-row update that answers with one line like the read. The table
// lives in its own database (`probe`), so the probe never changes the data the backups dump.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { MariaDb } from '../test/harness/mariadb.js';

const DATABASE = 'probe';
const ROWS = 100_000;

export interface ProbeSample {
  /** performance.now() when the statement was written. */
  readonly at: number;
  readonly ms: number;
  readonly kind: 'read' | 'update';
}

export interface Probe {
  readonly ratePerSecond: number;
  /** Latencies of the queries sent in [from, to] (performance.now() times). */
  between(from: number, to: number): ProbeSample[];
  /** Queries that got no answer within a second of the next tick: counted, not waited for. */
  readonly late: number;
  stop(): Promise<void>;
}

/** Creates `probe.accounts` (ROWS rows) and starts the client; `ratePerSecond` statements at most. */
export async function startProbe(db: MariaDb, ratePerSecond: number): Promise<Probe> {
  await db.sql(
    [
      `DROP DATABASE IF EXISTS ${DATABASE}`,
      `CREATE DATABASE ${DATABASE}`,
      `CREATE TABLE ${DATABASE}.accounts (id INT UNSIGNED NOT NULL PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(64) NOT NULL) ENGINE=InnoDB`,
    ].join(';\n'),
  );
  // The SEQUENCE engine's seq_ tables resolve in the current database only.
  await db.sql(
    `INSERT INTO accounts SELECT seq, seq * 7 % 1000, CONCAT('account ', seq) FROM seq_1_to_${ROWS}`,
    DATABASE,
  );
  const child: ChildProcess = spawn(
    'mariadb',
    [
      '--no-defaults',
      `--socket=${db.socket}`,
      '-u',
      'root',
      '--batch',
      '--skip-column-names',
      '--unbuffered',
      DATABASE,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let ended = false;
  void exited.then(() => {
    if (!ended) process.stderr.write(`probe: the mariadb client ended early: ${stderr}\n`);
    ended = true;
  });

  const samples: ProbeSample[] = [];
  let inFlight: { at: number; kind: 'read' | 'update' } | undefined;
  let late = 0;
  let counter = 0;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', () => {
    if (inFlight === undefined) return;
    samples.push({ at: inFlight.at, ms: performance.now() - inFlight.at, kind: inFlight.kind });
    inFlight = undefined;
  });

  const interval = 1000 / ratePerSecond;
  const timer = setInterval(() => {
    if (ended) return;
    if (inFlight !== undefined) {
      // Still waiting: the next statement goes when this one answered (one connection, like a request).
      if (performance.now() - inFlight.at > 1000) late++;
      return;
    }
    counter++;
    // A multiplicative hash spreads the ids over the table: no hot row, no cached neighbourhood.
    const id = 1 + ((counter * 2654435761) % ROWS);
    const kind = counter % 2 === 0 ? 'update' : 'read';
    const statement =
      kind === 'read'
        ? `SELECT id, balance FROM accounts WHERE id = ${id};\n`
        : `INSERT INTO accounts (id, balance, note) VALUES (${id}, 0, '') ON DUPLICATE KEY UPDATE balance = balance + 1 RETURNING id, balance;\n`;
    inFlight = { at: performance.now(), kind };
    child.stdin?.write(statement);
  }, interval);

  return {
    ratePerSecond,
    between: (from, to) => samples.filter((sample) => sample.at >= from && sample.at <= to),
    get late() {
      return late;
    },
    async stop() {
      clearInterval(timer);
      if (!ended) {
        ended = true;
        child.stdin?.end();
        const timeout = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timeout);
      }
      await db.sql(`DROP DATABASE IF EXISTS ${DATABASE}`).catch(() => undefined);
    },
  };
}
