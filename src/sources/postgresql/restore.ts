// Root's side of a PostgreSQL restore. The clients run as postgresql.admin_user (Debian: postgres,
// the superuser by peer authentication) for the administration, and the archive's SQL runs in a
// session of a role that is no superuser (session-role.ts). A restore loads into a new database
// first and swaps it in only once it is proven: a failed or refused import leaves the live
// database untouched, and the safety copy is taken right before the swap.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupFailedError, UsageError } from '../../errors.js';
import { formatBytes } from '../../report/format.js';
import { type SystemUser, lookupUser } from '../../system/privileges.js';
import { CommandFailedError, type CommandRunner, type Deadline, quickDeadline } from '../../system/run-command.js';
import type { DatabaseRestore, EngineTools, ObjectCount, RestoredDatabase, Restorer } from '../engine.js';
import { importProgress } from '../import-progress.js';
import { inState } from '../restore-state.js';
import type { Argv } from '../source.js';
import { type ArchiveContents, archiveFile, proveArchive, proveDownloadedArchive } from './archive.js';
import {
  type Connection,
  dumpCommand,
  ident,
  isSocketDirectory,
  literal,
  queryCommand,
  restoreCommand,
  rowsCommand,
} from './commands.js';
import type { PostgresqlSection } from './keys.js';
import { SESSION_ROLE, type SessionLogin, createSessionRoleSql, writeSessionLogin } from './session-role.js';

/** The live database's owner and locale, which the restored one keeps. */
interface LiveDatabase {
  readonly owner: string;
  readonly encoding: string;
  readonly collate: string;
  readonly ctype: string;
}

/** Every ordinary table with its rows, counted in the server: no table name reaches a command line. */
const COUNT_ROWS = [
  "SELECT n.nspname, c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text",
  'FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace',
  "WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
].join(' ');

export class PostgresqlRestorer implements Restorer {
  readonly stopServices: readonly string[] = [];
  private readonly admin: Connection;
  /** The archive's session: over TCP, where a password login is possible (see session-role.ts). */
  private readonly session: Connection;

  private constructor(
    private readonly section: PostgresqlSection,
    private readonly tools: EngineTools,
    private readonly adminUser: SystemUser,
  ) {
    this.admin = { host: section.host, port: section.port, user: section.admin_user };
    this.session = {
      host: isSocketDirectory(section.host) ? '127.0.0.1' : section.host,
      port: section.port,
      user: SESSION_ROLE,
    };
  }

  static async create(section: PostgresqlSection, tools: EngineTools): Promise<PostgresqlRestorer> {
    const user = await lookupUser(section.admin_user);
    if (user === undefined) {
      throw new BackupFailedError(
        `the system user ${section.admin_user} (postgresql.admin_user) does not exist`,
        "set postgresql.admin_user to the system user whose role is PostgreSQL's superuser (Debian: postgres)",
      );
    }
    return new PostgresqlRestorer(section, tools, user);
  }

  plannedCommands(restore: DatabaseRestore): string[] {
    const { database, into } = restore;
    const dump = archiveFile(restore.dir, database);
    const work = into ?? workName(restore.stamp, database);
    const as = `(as ${this.adminUser.name})`;
    const show = (argv: Argv): string => `${as} ${this.tools.runner.display(argv).join(' ')}`;
    const admin = (sql: string, in_ = 'postgres'): string => show(queryCommand(this.admin, in_, sql));
    return [
      `${as} pg_restore --list < ${dump}`,
      `${as} pg_restore --file=/dev/null < ${dump}`,
      admin(
        `CREATE ROLE ${SESSION_ROLE} LOGIN NOSUPERUSER … VALID UNTIL … PASSWORD '<SCRAM verifier of a random password>'`,
      ),
      admin(`CREATE DATABASE ${ident(work)} OWNER ${SESSION_ROLE} TEMPLATE template0`),
      `PGPASSFILE=… ${show(restoreCommand(this.session, work))} < ${dump}`,
      admin(`REASSIGN OWNED BY ${SESSION_ROLE} TO <owner>; DROP OWNED BY ${SESSION_ROLE}`, work),
      ...(into === undefined
        ? [
            `${show(dumpCommand(this.admin, database))} > ${safetyFile(restore)}`,
            admin(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`),
            admin(`ALTER DATABASE ${ident(work)} RENAME TO ${ident(database)}`),
          ]
        : []),
      admin(`DROP ROLE IF EXISTS ${SESSION_ROLE}`),
    ];
  }

  async restore(restore: DatabaseRestore): Promise<RestoredDatabase> {
    const { database, into } = restore;
    const dump = archiveFile(restore.dir, database);
    const contents = await this.prove(database, dump);
    if (into !== undefined && (await this.exists(into))) {
      throw new UsageError(
        `database ${into} already exists; --into needs a new name`,
        `nothing was changed; drop ${into} first or pick another name`,
      );
    }
    const live = into === undefined ? await this.live(database) : null;
    const work = into ?? workName(restore.stamp, database);
    const untouched =
      into === undefined
        ? `database ${database} untouched; the partial import in ${work} was dropped`
        : `nothing was changed; the partial import in ${into} was dropped`;
    // Set once the work database is the result or holds the only copy: from then on it stays.
    let keep = false;
    try {
      const owner = live?.owner ?? contents.owner ?? this.section.admin_user;
      const counts = await inState(untouched, () => this.load(work, dump, contents, live, owner, restore.showProgress));
      if (into !== undefined) {
        keep = true;
        return { database, restoredAs: into, safetyCopy: null, undo: null, contents: counts };
      }
      const safetyCopy = live === null ? null : safetyFile(restore);
      if (safetyCopy !== null) await inState(untouched, () => this.safetyDump(database, safetyCopy));
      keep = true;
      await inState(
        `database ${database} may be dropped already; the restored data is database ${work}: rename it with ALTER DATABASE ${ident(work)} RENAME TO ${ident(database)}${safetyCopy === null ? '' : `; the previous state is in ${safetyCopy}`}`,
        async () => {
          if (live !== null) await this.sql(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
          await this.sql(`ALTER DATABASE ${ident(work)} RENAME TO ${ident(database)}`);
        },
      );
      return {
        database,
        restoredAs: database,
        safetyCopy,
        undo: safetyCopy === null ? null : this.undoCommand(database, safetyCopy),
        contents: counts,
      };
    } finally {
      await this.cleanUp(keep ? null : work);
    }
  }

  async importScratch(database: string, dir: string, scratch: string): Promise<string> {
    const dump = archiveFile(dir, database);
    const contents = await this.prove(database, dump);
    if (await this.exists(scratch)) throw new BackupFailedError(`the scratch database ${scratch} exists already`);
    try {
      const counts = await this.load(scratch, dump, contents, null, null, false);
      const rows = counts.reduce((sum, row) => sum + row.count, 0);
      return `${database} imports into a scratch database: ${counts.length} table(s), ${rows} row(s)`;
    } finally {
      await this.cleanUp(scratch);
    }
  }

  /** The archive is there, complete and of `database`; it is read as the admin user, never as root. */
  private prove(database: string, dump: string): Promise<ArchiveContents> {
    return proveDownloadedArchive(
      this.tools.runner,
      dump,
      database,
      this.tools.deadline(`reading the dump of ${database}`),
      this.adminUser,
    );
  }

  /**
   * Creates `work` owned by the session role, loads the archive in the session role's login,
   * counts the rows there, and proves every table the archive has data for arrived. With `owner`,
   * the database and everything in it then go to that role (created without login when missing:
   * on a new host the roles come back with globals.sql, see the hint).
   */
  private async load(
    work: string,
    dump: string,
    contents: ArchiveContents,
    live: LiveDatabase | null,
    owner: string | null,
    showProgress: boolean,
  ): Promise<ObjectCount[]> {
    const login = await this.createSession();
    try {
      const locale =
        live === null
          ? ''
          : ` ENCODING ${literal(live.encoding)} LC_COLLATE ${literal(live.collate)} LC_CTYPE ${literal(live.ctype)}`;
      await this.sql(`CREATE DATABASE ${ident(work)} OWNER ${SESSION_ROLE} TEMPLATE template0${locale}`);
      await this.importArchive(work, dump, login, showProgress);
      const counts = await this.countRows(work, login);
      const missing = contents.tables.filter((table) => !counts.some((row) => row.name === table));
      if (missing.length > 0) {
        throw new BackupFailedError(
          `after the import, ${work} lacks table(s) ${missing.join(', ')} that the archive holds`,
        );
      }
      if (owner !== null) await this.handOver(work, owner);
      return counts;
    } finally {
      await login.remove();
    }
  }

  private async createSession(): Promise<SessionLogin> {
    await this.sql(`DROP ROLE IF EXISTS ${SESSION_ROLE}`);
    const login = await writeSessionLogin(this.adminUser, this.session.host, this.session.port);
    try {
      const validUntil = new Date(Date.now() + this.tools.deadline('the postgresql restore').ms + 3_600_000);
      await this.sql(createSessionRoleSql(login.verifier, validUntil));
    } catch (error) {
      await login.remove();
      throw error;
    }
    return login;
  }

  private async importArchive(work: string, dump: string, login: SessionLogin, showProgress: boolean): Promise<void> {
    const size = (await stat(dump)).size;
    const progress = importProgress(work, size, showProgress);
    try {
      await this.run(
        restoreCommand(this.session, work),
        this.tools.deadline(`the import of ${work}`),
        `pg_restore into ${work}`,
        { stdinFile: dump, onStart: progress.onStart, env: { PGPASSFILE: login.passfile } },
      );
    } finally {
      progress.stop();
    }
    this.tools.logger.info({ database: work, bytes: size }, 'imported %s into %s', formatBytes(size), work);
  }

  private async countRows(database: string, login: SessionLogin): Promise<ObjectCount[]> {
    const output = await this.run(
      rowsCommand(this.session, database, COUNT_ROWS),
      this.tools.deadline(`counting the rows of ${database}`),
      `counting the rows of ${database}`,
      { env: { PGPASSFILE: login.passfile } },
    );
    const fields = output.split('\0').slice(0, -1);
    const counts: ObjectCount[] = [];
    for (let at = 0; at + 2 < fields.length; at += 3) {
      counts.push({ name: `${fields[at]}.${fields[at + 1]}`, count: Number(fields[at + 2]), unit: 'rows' });
    }
    return counts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * The session role gives up everything to `owner`: objects, the database, and the privileges
   * the archive granted it. A live database's owner is the server's own word; the archive's is
   * only used on a host that does not have the database.
   */
  private async handOver(work: string, owner: string): Promise<void> {
    if ((await this.sql(`SELECT 1 FROM pg_roles WHERE rolname = ${literal(owner)}`)).trim() !== '1') {
      await this.sql(`CREATE ROLE ${ident(owner)} NOLOGIN`);
      this.tools.logger.warn(
        { role: owner },
        'role %s, the owner, did not exist: created it without login; restore the roles from globals.sql of the same backup for its login and password',
        owner,
      );
    }
    await this.sql(`REASSIGN OWNED BY ${SESSION_ROLE} TO ${ident(owner)}`, work, this.tools.deadline('handing over'));
    await this.sql(`DROP OWNED BY ${SESSION_ROLE}`, work);
  }

  /** Root's copy of the live database, in the archive format, proven before anything is dropped. */
  private async safetyDump(database: string, file: string): Promise<void> {
    await this.run(
      dumpCommand(this.admin, database),
      this.tools.deadline(`the safety dump of ${database}`),
      `the safety dump of ${database}`,
      { stdout: { file } },
    );
    await proveArchive(
      this.tools.runner,
      file,
      database,
      this.tools.deadline(`reading back the safety dump of ${database}`),
      this.adminUser,
      'the restore stopped before dropping anything',
    );
    const bytes = (await stat(file)).size;
    this.tools.logger.info({ database, file, bytes }, 'safety dump of %s: %s (%s)', database, file, formatBytes(bytes));
  }

  private async exists(database: string): Promise<boolean> {
    return (await this.sql(`SELECT 1 FROM pg_database WHERE datname = ${literal(database)}`)).trim() === '1';
  }

  private async live(database: string): Promise<LiveDatabase | null> {
    const output = await this.run(
      rowsCommand(
        this.admin,
        'postgres',
        `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = ${literal(database)}`,
      ),
      quickDeadline(`reading the owner of ${database}`),
      `reading the owner of ${database}`,
    );
    const [owner, encoding, collate, ctype] = output.split('\0');
    if (owner === undefined || encoding === undefined || collate === undefined || ctype === undefined) return null;
    return { owner, encoding, collate, ctype };
  }

  /** On the cleanup runner, which a SIGTERM does not stop: no scratch database or login role stays. */
  private async cleanUp(database: string | null): Promise<void> {
    const runner = this.tools.cleanup;
    if (database !== null)
      await this.sql(
        `DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`,
        'postgres',
        quickDeadline(`dropping ${database}`),
        runner,
      );
    await this.sql(
      `DROP ROLE IF EXISTS ${SESSION_ROLE}`,
      'postgres',
      quickDeadline(`dropping ${SESSION_ROLE}`),
      runner,
    );
  }

  private sql(
    sql: string,
    database = 'postgres',
    deadline: Deadline = quickDeadline('a PostgreSQL statement'),
    runner: CommandRunner = this.tools.runner,
  ): Promise<string> {
    return this.run(queryCommand(this.admin, database, sql), deadline, `psql: ${sql.slice(0, 80)}`, {}, runner);
  }

  /** Runs a client as the admin user; a failure names the step and how root logs in. */
  private async run(
    argv: Argv,
    deadline: Deadline,
    what: string,
    options: {
      readonly stdinFile?: string;
      readonly stdout?: { readonly file: string };
      readonly env?: Readonly<Record<string, string>>;
      readonly onStart?: (pid: number) => void;
    } = {},
    runner: CommandRunner = this.tools.runner,
  ): Promise<string> {
    try {
      const result = await runner.run({ argv, deadline, runAs: this.adminUser, stdout: 'capture', ...options });
      return result.stdout;
    } catch (error) {
      // A stop by SIGTERM keeps its own message: it is not the client's failure.
      if (!(error instanceof CommandFailedError) || error.signal !== undefined) throw error;
      const detail = error.result.stderrTail.filter((line) => line.trim() !== '').join(' ');
      throw new BackupFailedError(
        `${what} failed: ${detail || `exit code ${error.result.exitCode}`}`,
        this.hint(detail),
        {
          cause: error,
        },
      );
    }
  }

  private hint(detail: string): string {
    if (/role "[^"]*" does not exist/.test(detail) && !detail.includes(SESSION_ROLE))
      return 'a role the archive grants to is missing: restore the roles first, as root: runuser -u postgres -- psql --no-psqlrc -f globals.sql (from the same backup)';
    if (
      /password authentication failed|no pg_hba.conf entry|Connection refused/.test(detail) &&
      detail.includes(SESSION_ROLE)
    )
      return `the archive's SQL runs as ${SESSION_ROLE}, logging in with a password over TCP at ${this.session.host}:${this.session.port}: pg_hba.conf needs "host all all 127.0.0.1/32 scram-sha-256" (Debian's default) and the server must listen there`;
    return `root runs the clients as the system user ${this.admin.user} (postgresql.admin_user), logging in by peer authentication through ${this.admin.host}:${this.admin.port}`;
  }

  private undoCommand(database: string, safetyCopy: string): string {
    const as = `runuser -u ${this.admin.user} --`;
    const at = `--host=${this.admin.host} --port=${this.admin.port}`;
    return `${as} dropdb ${at} --if-exists --force ${database} && ${as} pg_restore ${at} --no-password --create --dbname=postgres < ${safetyCopy}`;
  }
}

/** The database a restore loads into before the swap; PostgreSQL names are at most 63 bytes. */
function workName(stamp: string, database: string): string {
  return `restoring_${stamp}_${database}`.slice(0, 63);
}

function safetyFile(restore: DatabaseRestore): string {
  return join(restore.safetyDir, `postgresql-${restore.database}-${restore.stamp}.dump`);
}
