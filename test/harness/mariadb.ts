import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, ExecaError } from 'execa';
import type { ResultPromise } from 'execa';
import { freePort } from './ports.js';
import { backupUser, makeTempDir, removeDir } from './temp-dir.js';

export interface MyCnfOptions {
  user: string;
  password: string;
  /** Connect through the unix socket (the default when no host is given). */
  socket?: boolean;
  host?: string;
  port?: number;
}

/** What the backup user is granted on each database, and whether it may read routine bodies. */
export interface BackupGrant {
  readonly privileges: string;
  /** SELECT ON mysql.proc: without it mariadb-dump --routines leaves procedures and functions out. */
  readonly routines: boolean;
}

/** The grant README's Configure step documents. */
export const DOCUMENTED_GRANT: BackupGrant = {
  privileges: 'SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT',
  routines: true,
};

/** The grant older installs were told to give: enough for tables only. */
export const REDUCED_GRANT: BackupGrant = { privileges: 'SELECT, LOCK TABLES', routines: false };

export interface MariaDb {
  readonly dir: string;
  readonly socket: string;
  readonly port: number;
  sql(query: string, database?: string): Promise<string>;
  importFile(database: string, path: string): Promise<void>;
  createBackupUser(user: string, password: string, databases: string[], grant?: BackupGrant): Promise<void>;
  writeMyCnf(path: string, options: MyCnfOptions): Promise<void>;
  fingerprint(database: string): Promise<string>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export function quoteString(value: string): string {
  // \x1a (Ctrl-Z) is one of the characters MySQL's own escaping covers.
  // eslint-disable-next-line no-control-regex
  const escaped = value.replace(/[\\'\0\n\r\x1a]/g, (ch) => {
    switch (ch) {
      case '\0':
        return '\\0';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\x1a':
        return '\\Z';
      default:
        return `\\${ch}`;
    }
  });
  return `'${escaped}'`;
}

export function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

// Option-file values are unquoted by default, so a password with `#` or spaces
// would be truncated; double quotes with backslash escapes are read verbatim.
function optionValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

async function tail(path: string, bytes = 4000): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.slice(-bytes);
}

function errorText(err: unknown): string {
  if (err instanceof ExecaError) return String(err.stderr ?? '').trim() || err.shortMessage;
  return err instanceof Error ? err.message : String(err);
}

export async function startMariaDb(): Promise<MariaDb> {
  const dir = await makeTempDir('mariadb');
  const dataDir = join(dir, 'data');
  const runDir = join(dir, 'run');
  const tmpDir = join(dir, 'tmp');
  const socket = join(runDir, 'mysqld.sock');
  const logPath = join(dir, 'mariadbd.log');
  // runDir stays 0755 so uid 34 can reach the socket; the data dir stays private.
  await mkdir(runDir, { mode: 0o755 });
  await mkdir(tmpDir, { mode: 0o700 });

  let server: ResultPromise | undefined;
  try {
    const port = await freePort();
    await execa('mariadb-install-db', [
      '--no-defaults',
      `--datadir=${dataDir}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--user=root',
    ]).catch((err: unknown) => {
      throw new Error(`mariadb-install-db failed: ${errorText(err)}`);
    });

    server = execa(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${join(runDir, 'mariadbd.pid')}`,
        `--tmpdir=${tmpDir}`,
        '--user=root',
        '--skip-log-bin',
        // Without it a TCP login from 127.0.0.1 may also match user@localhost,
        // which would hide a missing user@127.0.0.1 grant.
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=64M',
        // Durability per commit is pointless for a throw-away server and slows seeding.
        '--innodb-flush-log-at-trx-commit=2',
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_general_ci',
      ],
      {
        stdin: 'ignore',
        stdout: { file: logPath, append: true },
        stderr: { file: logPath, append: true },
        reject: false,
      },
    );

    const db = makeHandle(dir, socket, port, server);
    await waitUntilUp(db, server, logPath);
    return db;
  } catch (err) {
    if (server !== undefined) await stopProcess(server);
    await removeDir(dir);
    throw err;
  }
}

async function waitUntilUp(db: MariaDb, server: ResultPromise, logPath: string): Promise<void> {
  let exited = false;
  void server.finally(() => {
    exited = true;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`mariadbd exited during startup:\n${await tail(logPath)}`);
    }
    try {
      await db.sql('SELECT 1');
      return;
    } catch (err) {
      lastError = errorText(err);
    }
    await sleep(200);
  }
  throw new Error(
    `mariadbd did not accept root queries within ${START_TIMEOUT_MS / 1000} s (last error: ${lastError}):\n${await tail(logPath)}`,
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

function makeHandle(dir: string, socket: string, port: number, server: ResultPromise): MariaDb {
  const clientArgs = ['--no-defaults', `--socket=${socket}`, '-u', 'root', '--default-character-set=utf8mb4'];

  const sql = async (query: string, database?: string): Promise<string> => {
    const args = [...clientArgs, '--batch', '--skip-column-names', '-e', query];
    if (database !== undefined) args.push(database);
    try {
      const result = await execa('mariadb', args, { stdin: 'ignore', stripFinalNewline: false });
      return result.stdout.trim();
    } catch (err) {
      throw new Error(`mariadb query failed: ${errorText(err)}\nquery: ${query.slice(0, 500)}`);
    }
  };

  const importFile = async (database: string, path: string): Promise<void> => {
    try {
      await execa('mariadb', [...clientArgs, database], { stdin: { file: path } });
    } catch (err) {
      throw new Error(`importing ${path} into ${database} failed: ${errorText(err)}`);
    }
  };

  const createBackupUser = async (
    user: string,
    password: string,
    databases: string[],
    grant = DOCUMENTED_GRANT,
  ): Promise<void> => {
    // Both hosts: `localhost` only matches socket logins, TCP logins come from 127.0.0.1.
    const statements: string[] = [];
    for (const host of ['localhost', '127.0.0.1']) {
      const account = `${quoteString(user)}@${quoteString(host)}`;
      statements.push(`CREATE OR REPLACE USER ${account} IDENTIFIED BY ${quoteString(password)}`);
      for (const database of databases) {
        statements.push(`GRANT ${grant.privileges} ON ${quoteIdent(database)}.* TO ${account}`);
      }
      if (grant.routines) statements.push(`GRANT SELECT ON mysql.proc TO ${account}`);
    }
    await sql(statements.join(';\n'));
  };

  const writeMyCnf = async (path: string, options: MyCnfOptions): Promise<void> => {
    const lines = ['[client]', `user=${optionValue(options.user)}`, `password=${optionValue(options.password)}`];
    const useTcp = options.socket !== true && (options.host !== undefined || options.port !== undefined);
    if (useTcp) {
      // "localhost" would silently switch the client to the socket.
      lines.push(`host=${optionValue(options.host ?? '127.0.0.1')}`, `port=${options.port ?? port}`, 'protocol=TCP');
    } else {
      lines.push(`socket=${optionValue(socket)}`);
    }
    await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    await chmod(path, 0o600);
    const { uid, gid } = await backupUser();
    await chown(path, uid, gid);
  };

  const fingerprint = async (database: string): Promise<string> => {
    const hash = createHash('sha256');
    const tables = await sql(
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} ORDER BY TABLE_NAME`,
    );
    for (const table of tables === '' ? [] : tables.split('\n')) {
      const where = `TABLE_SCHEMA = ${quoteString(database)} AND TABLE_NAME = ${quoteString(table)}`;
      const columns = await sql(
        `SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE ${where} ORDER BY ORDINAL_POSITION`,
      );
      const primary = await sql(
        `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE ${where} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
      );
      // Without a primary key only a total order over all columns is stable.
      const orderBy = (
        primary === '' ? columns.split('\n').map((line) => line.split('\t')[0] ?? '') : primary.split('\n')
      )
        .map(quoteIdent)
        .join(', ');
      const rows = await sql(`SELECT * FROM ${quoteIdent(database)}.${quoteIdent(table)} ORDER BY ${orderBy}`);
      hash.update(`table ${table}\n${columns}\n--\n${rows}\n==\n`);
    }
    return hash.digest('hex');
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= stopProcess(server).finally(() => removeDir(dir));
    return stopped;
  };

  return { dir, socket, port, sql, importFile, createBackupUser, writeMyCnf, fingerprint, stop };
}

// A small seeded PRNG so that the same seed always produces the same data.
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters that a dump must carry through unchanged (quotes, escapes, multibyte).
const NOTE_FRAGMENTS = [
  'plain',
  "O'Brien",
  'back\\slash',
  'tab\there',
  'line\nbreak',
  'ümlaut',
  '日本語',
  '🙂 emoji',
  '"double"',
];
const NAMES = ['Ada', 'Brian', 'Chen', 'Dana', 'Emeka', 'Farah', 'Goran', 'Hiro', 'Ines', 'Jonas'];
const BASE_TIME_MS = Date.UTC(2026, 0, 1, 0, 0, 0);
const BATCH = 400;

function datetime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function customerRow(id: number, random: () => number): string {
  const name = `${NAMES[Math.floor(random() * NAMES.length)] ?? 'X'} ${id}`;
  const balance = (random() * 100_000 - 20_000).toFixed(2);
  const note = `${NOTE_FRAGMENTS[id % NOTE_FRAGMENTS.length] ?? ''} #${Math.floor(random() * 1e6)}`;
  return `(${id}, ${quoteString(name)}, ${balance}, ${quoteString(note)})`;
}

function orderRow(id: number, customers: number, random: () => number): string {
  const customer = 1 + Math.floor(random() * customers);
  const amount = (random() * 5_000).toFixed(2);
  const created = datetime(BASE_TIME_MS + id * 60_000 + Math.floor(random() * 59) * 1000);
  return `(${id}, ${customer}, ${amount}, ${quoteString(created)})`;
}

async function insertBatches(db: MariaDb, database: string, table: string, rows: string[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) {
    await db.sql(`INSERT INTO ${quoteIdent(table)} VALUES ${rows.slice(i, i + BATCH).join(',\n')}`, database);
  }
}

export async function seedDatabase(db: MariaDb, name: string, rows: number): Promise<void> {
  const random = prng(0x5eed ^ rows);
  await db.sql(`CREATE DATABASE ${quoteIdent(name)} CHARACTER SET utf8mb4`);
  await db.sql(
    [
      'CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, balance DECIMAL(12,2) NOT NULL, note TEXT) ENGINE=InnoDB',
      'CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, created DATETIME NOT NULL, KEY (customer_id)) ENGINE=InnoDB',
    ].join(';\n'),
    name,
  );
  const customerRows = Array.from({ length: rows }, (_, i) => customerRow(i + 1, random));
  const orderRows = Array.from({ length: rows }, (_, i) => orderRow(i + 1, rows, random));
  await insertBatches(db, name, 'customers', customerRows);
  await insertBatches(db, name, 'orders', orderRows);
}

// Touches ~1 % of the rows and appends a few, so every call visibly changes the data.
export async function changeData(db: MariaDb, name: string, seed: number): Promise<void> {
  const random = prng(seed);
  const [countText = '0', maxText = '0'] = (
    await db.sql('SELECT COUNT(*), COALESCE(MAX(id), 0) FROM customers', name)
  ).split('\t');
  const count = Number(countText);
  const maxCustomer = Number(maxText);
  const maxOrder = Number(await db.sql('SELECT COALESCE(MAX(id), 0) FROM orders', name));
  const touched = Math.max(1, Math.round(count / 100));

  const ids = new Set<number>();
  while (ids.size < Math.min(touched, count)) ids.add(1 + Math.floor(random() * count));
  const delta = (1 + random() * 100).toFixed(2);
  const statements: string[] = [];
  if (ids.size > 0) {
    const idList = [...ids].sort((a, b) => a - b).join(', ');
    statements.push(
      `UPDATE customers SET balance = balance + ${delta}, note = CONCAT(COALESCE(note, ''), ${quoteString(` changed@${seed}`)}) WHERE id IN (${idList})`,
      `UPDATE orders SET amount = amount + ${delta} WHERE id IN (${idList})`,
    );
  }
  const added = 3;
  const newCustomers = Array.from({ length: added }, (_, i) => customerRow(maxCustomer + i + 1, random));
  const newOrders = Array.from({ length: added }, (_, i) => orderRow(maxOrder + i + 1, maxCustomer + added, random));
  statements.push(
    `INSERT INTO customers VALUES ${newCustomers.join(', ')}`,
    `INSERT INTO orders VALUES ${newOrders.join(', ')}`,
  );
  await db.sql(statements.join(';\n'), name);
}
