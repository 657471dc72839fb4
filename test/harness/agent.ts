// A throwaway host for the agent: config, staging, cache and secrets in a temp dir owned by the
// backup user, pointing at the real services the test started. Runs the built CLI (dist/main.js)
// as root, exactly as an operator would; the agent drops to `backup` itself.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { GpgHome } from './gpg.js';
import type { InfluxDb } from './influxdb.js';
import type { MariaDb } from './mariadb.js';
import type { Postgres } from './postgres.js';
import type { SshTarget } from './ssh-target.js';
import { chownToBackup, makeTempDir, removeDir } from './temp-dir.js';

export const AGENT = new URL('../../dist/main.js', import.meta.url).pathname;
/** The V8 flag the package's #! line gives node (package.json config.nodeFlag): run the agent as installed. */
export const NODE_FLAG = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { nodeFlag: string } }
).config.nodeFlag;
export const PASSPHRASE = 'correct horse battery staple 4 backups';
export const MYSQL_PASSWORD = 'bk-Secr3t-pw';
export const MYSQL_DATABASE = 'agama';
export const INFLUX_DATABASE = 'telegraf';
export const PG_DATABASE = 'shop';

export type IniOverrides = Partial<
  Record<
    'agent' | 'deadlines' | 'target' | 'mysql' | 'influxdb' | 'postgresql' | 'notify' | 'metrics',
    Record<string, string> | null
  >
>;

export interface AgentResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The JSON log lines the agent printed on stdout. */
  readonly logs: readonly LogLine[];
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface AgentHost {
  readonly dir: string;
  readonly configFile: string;
  readonly stagingDir: string;
  readonly cacheDir: string;
  readonly myCnf: string;
  /** root's client options for restores: the test server's socket, unix_socket auth. */
  readonly adminCnf: string;
  readonly restoreDir: string;
  /** agent.state_file: in the host's directory, as every run (manual or the daemon's) records itself there. */
  readonly stateFile: string;
  readonly passphraseFile: string;
  readonly gnupgHome: string;
  /** (Re)writes the config: defaults for this host, then the overrides (null removes a section). */
  writeConfig(overrides?: IniOverrides): Promise<void>;
  run(args: readonly string[], env?: Record<string, string>): Promise<AgentResult>;
  /** Starts the agent without waiting, for tests that kill or race it. */
  start(args: readonly string[]): ResultPromise<{ reject: false; all: true; stdin: 'ignore' }>;
  remove(): Promise<void>;
}

export interface HostServices {
  readonly mariadb?: MariaDb;
  readonly influx?: InfluxDb;
  /** Backed up as the role `backup` (peer login through the harness's socket dir), database PG_DATABASE. */
  readonly postgres?: Postgres;
  readonly target: SshTarget;
  readonly gpg?: GpgHome;
}

export async function makeAgentHost(services: HostServices): Promise<AgentHost> {
  const dir = await makeTempDir('agent-host');
  const etc = join(dir, 'etc');
  const host = {
    dir,
    configFile: join(etc, 'backup-agent.ini'),
    stagingDir: join(dir, 'staging'),
    cacheDir: join(dir, 'cache'),
    myCnf: join(etc, 'my.cnf'),
    adminCnf: join(etc, 'admin.cnf'),
    restoreDir: join(dir, 'restore'),
    stateFile: join(dir, 'state', 'state.json'),
    passphraseFile: join(etc, 'passphrase'),
    gnupgHome: services.gpg?.home ?? join(dir, 'gnupg'),
  };
  await mkdir(etc, { mode: 0o755 });
  // As the package does: the agent's own directories exist and belong to backup.
  const ownedDirs = [
    host.stagingDir,
    host.cacheDir,
    dirname(host.stateFile),
    ...(services.gpg ? [] : [host.gnupgHome]),
  ];
  for (const owned of ownedDirs) {
    await mkdir(owned, { mode: 0o700 });
    await chownToBackup(owned);
  }
  await writeFile(host.passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  if (services.mariadb) {
    await services.mariadb.createBackupUser('bk', MYSQL_PASSWORD, [MYSQL_DATABASE]);
    await services.mariadb.writeMyCnf(host.myCnf, { user: 'bk', password: MYSQL_PASSWORD, socket: true });
    await writeFile(host.adminCnf, `[client]\nuser = root\nsocket = ${services.mariadb.socket}\n`, { mode: 0o600 });
  }
  if (services.postgres && !(await services.postgres.roles()).includes('backup')) {
    await services.postgres.createBackupRole();
  }
  await chownToBackup(etc);

  const defaults = (): Record<string, Record<string, string>> => ({
    agent: {
      staging_dir: host.stagingDir,
      cache_dir: host.cacheDir,
      restore_dir: host.restoreDir,
      state_file: host.stateFile,
      full_day: notToday(),
    },
    target: {
      url: services.target.url,
      passphrase_file: host.passphraseFile,
      ssh_key: services.target.clientKey,
      known_hosts: services.target.knownHosts,
      gnupg_home: host.gnupgHome,
    },
    ...(services.mariadb
      ? { mysql: { databases: MYSQL_DATABASE, defaults_file: host.myCnf, admin_defaults_file: host.adminCnf } }
      : {}),
    ...(services.influx
      ? {
          influxdb: {
            databases: INFLUX_DATABASE,
            host: services.influx.rpcAddress,
            http_url: services.influx.httpUrl,
            // No systemd on the test machine; the booted-container test covers stopping telegraf.
            stop_services: '',
          },
        }
      : {}),
    ...(services.postgres
      ? {
          postgresql: {
            databases: PG_DATABASE,
            host: services.postgres.socketDir,
            port: String(services.postgres.port),
          },
        }
      : {}),
  });

  const writeConfig = async (overrides: IniOverrides = {}): Promise<void> => {
    const sections = defaults();
    for (const [name, values] of Object.entries(overrides)) {
      if (values === null) delete sections[name];
      else sections[name] = { ...sections[name], ...values };
    }
    const text = Object.entries(sections)
      .map(([name, values]) =>
        [`[${name}]`, ...Object.entries(values).map(([key, value]) => `${key} = ${value}`)].join('\n'),
      )
      .join('\n\n');
    await writeFile(host.configFile, `${text}\n`, { mode: 0o644 });
  };
  await writeConfig();

  const run = async (args: readonly string[], env: Record<string, string> = {}): Promise<AgentResult> => {
    const result = await execa(process.execPath, [NODE_FLAG, AGENT, '--config', host.configFile, ...args], {
      reject: false,
      stdin: 'ignore',
      env,
      timeout: 600_000,
    });
    return {
      exitCode: result.exitCode ?? -1,
      stdout: result.stdout,
      stderr: result.stderr,
      logs: parseLogs(result.stdout),
    };
  };
  const start = (args: readonly string[]) =>
    execa(process.execPath, [NODE_FLAG, AGENT, '--config', host.configFile, ...args], {
      reject: false,
      all: true,
      stdin: 'ignore',
    });

  const remove = async (): Promise<void> => {
    await execa('gpgconf', ['--homedir', host.gnupgHome, '--kill', 'gpg-agent'], { reject: false });
    await removeDir(dir);
  };
  return { ...host, writeConfig, run, start, remove };
}

export function parseLogs(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The summary line the agent logs for a source at the end of a run. */
export function summaryOf(result: AgentResult, source: string): LogLine {
  const line = result.logs.find((log) => log['summary'] === true && log['source'] === source);
  if (!line) throw new Error(`no summary for ${source} in:\n${result.stdout}\n${result.stderr}`);
  return line;
}

/** A weekday that is not today (UTC), so that full_day does not force a full unless a test wants it. */
export function notToday(): string {
  return ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(new Date().getUTCDay() + 3) % 7] ?? 'sun';
}

export function today(): string {
  return ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][new Date().getUTCDay()] ?? 'sun';
}
