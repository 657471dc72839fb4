// A throwaway PostgreSQL 15 for the tests: its own data directory, a socket directory the backup
// user can reach, a free port on 127.0.0.1 (never 5432), and Debian's authentication: peer over
// the socket, scram-sha-256 over TCP. initdb and postgres refuse root, so they run as `postgres`.
import { createHash } from 'node:crypto';
import { chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, ExecaError } from 'execa';
import { freePort } from './ports.js';
import { makeTempDir, removeDir } from './temp-dir.js';

const BIN = '/usr/lib/postgresql/15/bin';

export interface Postgres {
  readonly dir: string;
  /** unix_socket_directories: the `host` of a peer login. */
  readonly socketDir: string;
  readonly port: number;
  /** As the superuser through the socket; several statements may follow each other. */
  sql(query: string, database?: string): Promise<string>;
  /** The role the documented grant makes: backup LOGIN with pg_read_all_data, peer login as uid 34. */
  createBackupRole(): Promise<void>;
  /** A database owned by role `app`, with customers and orders of `rows` rows each and a grant to `app_reader`. */
  seed(database: string, rows: number): Promise<void>;
  /** A hash over every table's columns and rows in a stable order. */
  fingerprint(database: string): Promise<string>;
  /** Updates `fraction` of the customers and their orders and appends three of each. */
  change(database: string, fraction: number): Promise<void>;
  databases(): Promise<string[]>;
  roles(): Promise<string[]>;
  stop(): Promise<void>;
}

async function idOf(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execa('id', ['-u', user])).stdout.trim());
  const gid = Number((await execa('id', ['-g', user])).stdout.trim());
  return { uid, gid };
}

function asPostgres(argv: readonly string[]): string[] {
  return ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv];
}

function errorText(error: unknown): string {
  if (error instanceof ExecaError) return String(error.stderr ?? '').trim() || error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

export async function startPostgres(): Promise<Postgres> {
  const dir = await makeTempDir('postgres');
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'run');
  const log = join(dir, 'postgres.log');
  const owner = await idOf('postgres');
  for (const path of [dataDir, socketDir]) {
    await mkdir(path, { mode: 0o700 });
    await chown(path, owner.uid, owner.gid);
  }
  await execa('chmod', ['0755', socketDir]);
  await execa('install', ['-o', 'postgres', '-m', '0600', '/dev/null', log]);
  const port = await freePort();
  const pgCtl = (args: string[]) => execa('setpriv', asPostgres([join(BIN, 'pg_ctl'), '-D', dataDir, ...args]));
  try {
    await execa(
      'setpriv',
      asPostgres([
        join(BIN, 'initdb'),
        '-D',
        dataDir,
        '--username=postgres',
        '--auth-local=peer',
        '--auth-host=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C.UTF-8',
        '--no-sync',
      ]),
    );
    await pgCtl([
      '-l',
      log,
      '-w',
      '-t',
      '60',
      '-o',
      `-c port=${port} -c unix_socket_directories=${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
  } catch (error) {
    const serverLog = await readFile(log, 'utf8').catch(() => '');
    await removeDir(dir);
    throw new Error(`PostgreSQL did not start: ${errorText(error)}\n${serverLog.slice(-3000)}`);
  }

  const sql = async (query: string, database = 'postgres'): Promise<string> => {
    try {
      const result = await execa(
        'setpriv',
        asPostgres([
          'psql',
          '--no-psqlrc',
          `--host=${socketDir}`,
          `--port=${port}`,
          '--username=postgres',
          '--set=ON_ERROR_STOP=1',
          '--no-align',
          '--tuples-only',
          '--quiet',
          `--dbname=${database}`,
        ]),
        { input: query },
      );
      return result.stdout.trim();
    } catch (error) {
      throw new Error(`psql failed: ${errorText(error)}\nquery: ${query.slice(0, 500)}`);
    }
  };

  const lines = (text: string): string[] => (text === '' ? [] : text.split('\n'));

  const fingerprint = async (database: string): Promise<string> => {
    const hash = createHash('sha256');
    const tables = lines(
      await sql(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        database,
      ),
    );
    for (const table of tables) {
      const columns = await sql(
        `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped`,
        database,
      );
      const rows = await sql(
        `SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM ${table} t`,
        database,
      );
      hash.update(`${table}\n${columns}\n${rows}\n`);
    }
    return hash.digest('hex');
  };

  let stopped: Promise<void> | undefined;
  return {
    dir,
    socketDir,
    port,
    sql,
    async createBackupRole() {
      await sql('CREATE ROLE backup LOGIN; GRANT pg_read_all_data TO backup;');
    },
    async seed(database, rows) {
      await sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN; CREATE ROLE app_reader; END IF; END $$;",
      );
      await sql(`CREATE DATABASE "${database}" OWNER app;`);
      await sql(
        [
          'SET ROLE app;',
          'CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2) NOT NULL, note text);',
          'CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, amount numeric(12,2) NOT NULL, created timestamptz NOT NULL);',
          `INSERT INTO customers SELECT g, 'customer ' || g, (g * 37 % 100000) / 100.0, md5(g::text) || E' O''Brien \\\\ tab\\there 日本語' FROM generate_series(1, ${rows}) g;`,
          `INSERT INTO orders SELECT g, 1 + g * 7 % ${rows}, (g * 13 % 5000) / 10.0, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, ${rows}) g;`,
          'GRANT SELECT ON customers, orders TO app_reader;',
          `COMMENT ON TABLE customers IS '${'The customers of the shop, one row each. '.repeat(4)}';`,
        ].join('\n'),
        database,
      );
    },
    fingerprint,
    async change(database, fraction) {
      const every = Math.max(1, Math.round(1 / fraction));
      await sql(
        [
          `UPDATE customers SET balance = balance + 1, note = note || ' changed' WHERE id % ${every} = 0;`,
          `UPDATE orders SET amount = amount + 1 WHERE id % ${every} = 0;`,
          "INSERT INTO customers SELECT max(id) + g, 'new ' || g, 1, NULL FROM customers, generate_series(1, 3) g GROUP BY g;",
          'INSERT INTO orders SELECT max(id) + g, 1, 1, now() FROM orders, generate_series(1, 3) g GROUP BY g;',
        ].join('\n'),
        database,
      );
    },
    async databases() {
      return lines(await sql('SELECT datname FROM pg_database ORDER BY 1'));
    },
    async roles() {
      return lines(await sql("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"));
    },
    stop() {
      stopped ??= pgCtl(['-m', 'immediate', 'stop'])
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => removeDir(dir));
      return stopped;
    },
  };
}
