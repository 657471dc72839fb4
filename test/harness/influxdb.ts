import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { freePort } from './ports.js';
import { makeTempDir, removeDir } from './temp-dir.js';

export interface InfluxSeries {
  name: string;
  columns: string[];
  values?: unknown[][];
  tags?: Record<string, string>;
}

export interface InfluxStatementResult {
  statement_id: number;
  series?: InfluxSeries[];
  error?: string;
}

export interface InfluxQueryResponse {
  results?: InfluxStatementResult[];
  error?: string;
}

export interface InfluxDb {
  readonly dir: string;
  /** host:port of the RPC service, the `-host` argument of `influxd backup`/`restore`. */
  readonly rpcAddress: string;
  readonly httpUrl: string;
  query(q: string, db?: string): Promise<InfluxQueryResponse>;
  createDatabase(name: string): Promise<void>;
  dropDatabase(name: string): Promise<void>;
  write(db: string, lines: string[]): Promise<void>;
  fingerprint(db: string): Promise<string>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

// Debian's influxdb 1.6.7 is patched to read `reporting-enabled` (default
// false) instead of upstream's `reporting-disabled`; both are written so the
// file also works with an upstream build, and unknown keys are ignored.
function configText(dir: string, rpcPort: number, httpPort: number): string {
  return `reporting-enabled = false
reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  unix-socket-enabled = false
  flux-enabled = false

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
`;
}

async function tail(path: string, bytes = 4000): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.slice(-bytes);
}

export async function startInfluxDb(): Promise<InfluxDb> {
  const dir = await makeTempDir('influxdb');
  const configPath = join(dir, 'influxdb.conf');
  const logPath = join(dir, 'influxd.log');
  let server: ResultPromise | undefined;
  try {
    const rpcPort = await freePort();
    const httpPort = await freePort();
    await mkdir(join(dir, 'meta'), { mode: 0o700 });
    await writeFile(configPath, configText(dir, rpcPort, httpPort));

    server = execa('influxd', ['run', '-config', configPath], {
      stdin: 'ignore',
      stdout: { file: logPath, append: true },
      stderr: { file: logPath, append: true },
      reject: false,
      // influxd falls back to $INFLUXDB_* variables; a stray one must not redirect it.
      extendEnv: false,
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });

    const httpUrl = `http://127.0.0.1:${httpPort}`;
    await waitForPing(httpUrl, server, logPath);
    return makeHandle(dir, `127.0.0.1:${rpcPort}`, httpUrl, server);
  } catch (err) {
    if (server !== undefined) await stopProcess(server);
    await removeDir(dir);
    throw err;
  }
}

async function waitForPing(httpUrl: string, server: ResultPromise, logPath: string): Promise<void> {
  let exited = false;
  void server.finally(() => {
    exited = true;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    if (exited) throw new Error(`influxd exited during startup:\n${await tail(logPath)}`);
    try {
      const response = await fetch(`${httpUrl}/ping`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 204) return;
      lastError = `HTTP ${response.status}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(200);
  }
  throw new Error(
    `influxd did not answer /ping within ${START_TIMEOUT_MS / 1000} s (${lastError}):\n${await tail(logPath)}`,
  );
}

async function stopProcess(proc: ResultPromise): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    await proc;
    return;
  }
  proc.kill('SIGTERM');
  const timedOut = await Promise.race([proc.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
  if (timedOut) {
    proc.kill('SIGKILL');
    await proc;
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function makeHandle(dir: string, rpcAddress: string, httpUrl: string, server: ResultPromise): InfluxDb {
  const query = async (q: string, db?: string): Promise<InfluxQueryResponse> => {
    const form = new URLSearchParams({ q });
    if (db !== undefined) form.set('db', db);
    const response = await fetch(`${httpUrl}/query`, { method: 'POST', body: form });
    const text = await response.text();
    let parsed: InfluxQueryResponse;
    try {
      parsed = JSON.parse(text) as InfluxQueryResponse;
    } catch {
      throw new Error(`influx query ${q}: HTTP ${response.status}, not JSON: ${text.slice(0, 500)}`);
    }
    // Errors come either top-level (bad request) or per statement (HTTP 200).
    const statementError = parsed.results?.find((r) => r.error !== undefined)?.error;
    const error = parsed.error ?? statementError;
    if (error !== undefined || !response.ok) {
      throw new Error(`influx query ${q}: HTTP ${response.status}: ${error ?? text.slice(0, 500)}`);
    }
    return parsed;
  };

  const write = async (db: string, lines: string[]): Promise<void> => {
    const params = new URLSearchParams({ db, precision: 's' });
    const response = await fetch(`${httpUrl}/write?${params.toString()}`, {
      method: 'POST',
      body: `${lines.join('\n')}\n`,
    });
    if (response.status !== 204) {
      throw new Error(`influx write to ${db}: HTTP ${response.status}: ${(await response.text()).slice(0, 500)}`);
    }
  };

  const fingerprint = async (db: string): Promise<string> => {
    // `influxd restore` returns before the server re-enables the restored shard,
    // so the first query right after a restore can fail with "shard is disabled"
    // (seen in about half of the runs, settled within ~50 ms) or, rarely, "engine is closed".
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await fingerprintOnce(db);
      } catch (err) {
        const transient = err instanceof Error && /shard is disabled|engine is closed/.test(err.message);
        if (!transient || Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
  };

  const fingerprintOnce = async (db: string): Promise<string> => {
    const measurements = (await query('SHOW MEASUREMENTS', db)).results?.[0]?.series?.[0]?.values ?? [];
    const names = measurements.map((row) => String(row[0])).sort();
    const parts: string[] = [];
    for (const name of names) {
      // One query per measurement; `count(*)` and `sum(*)` cover every numeric field.
      const result = await query(`SELECT count(*), sum(*) FROM ${quoteIdent(name)}`, db);
      const series = result.results?.[0]?.series?.[0];
      const columns = series?.columns ?? [];
      const values = series?.values?.[0] ?? [];
      const cells = columns
        .map((column, i) => [column, values[i]] as const)
        .filter(([column]) => column !== 'time')
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        // Rounded so float summation order inside influxd cannot change the result.
        .map(([column, value]) => `${column}=${typeof value === 'number' ? value.toFixed(6) : String(value)}`);
      parts.push(`${name}: ${cells.join(' ')}`);
    }
    return parts.join('\n');
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= stopProcess(server).finally(() => removeDir(dir));
    return stopped;
  };

  return {
    dir,
    rpcAddress,
    httpUrl,
    query,
    createDatabase: async (name) => {
      await query(`CREATE DATABASE ${quoteIdent(name)}`);
    },
    dropDatabase: async (name) => {
      await query(`DROP DATABASE ${quoteIdent(name)}`);
    },
    write,
    fingerprint,
    stop,
  };
}

// Fixed base so two runs write identical points; recent enough for the default
// infinite retention policy and old enough never to be "in the future".
const BASE_SECONDS = Date.UTC(2026, 0, 1, 0, 0, 0) / 1000;
const HOSTS = ['web-1', 'web-2', 'db-1'];

export async function seedInflux(influx: InfluxDb, db: string, points: number): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < points; i++) {
    const host = HOSTS[i % HOSTS.length] ?? 'web-1';
    // Spread over ~6 hours, ten seconds apart per host.
    const ts = BASE_SECONDS - 6 * 3600 + Math.floor(i / HOSTS.length) * 10;
    const user = ((i * 37) % 1000) / 10;
    const system = ((i * 11) % 500) / 10;
    lines.push(`cpu,host=${host} usage_user=${user},usage_system=${system} ${ts}`);
    lines.push(`mem,host=${host} used=${1_000_000 + ((i * 7919) % 100_000)}i ${ts}`);
  }
  for (let i = 0; i < lines.length; i += 5000) await influx.write(db, lines.slice(i, i + 5000));
}

// Appends points after the seeded range, so both counts and sums change.
export async function changeInflux(influx: InfluxDb, db: string): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < 30; i++) {
    const ts = BASE_SECONDS + 60 + i * 10;
    lines.push(`cpu,host=changed usage_user=${50 + i},usage_system=${10 + i} ${ts}`);
    lines.push(`mem,host=changed used=${2_000_000 + i}i ${ts}`);
  }
  await influx.write(db, lines);
}
