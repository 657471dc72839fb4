// `backup-agent check`: every prerequisite of a backup, each proven and reported on one line,
// like `nginx -t`. It changes nothing except creating missing directories (local and on the target).
import { constants } from 'node:fs';
import { access, readdir, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DEFAULT_CONFIG_FILE } from '../config/load.js';
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { readPassphrase } from '../duplicity/passphrase.js';
import { proveSigningKey } from '../duplicity/signing-key.js';
import { AgentError, errorMessage } from '../errors.js';
import { hostCalendar, judgeSlot, readHostIdentity } from '../history/spread.js';
import { readState } from '../history/state.js';
import { CLEARTEXT_WARNING } from '../notify/mail.js';
import { type Logger, createLogger } from '../report/logger.js';
import { formatBytes } from '../report/format.js';
import type { ProgramNeed } from '../sources/engine.js';
import { engineOf } from '../sources/registry.js';
import { ensureWritableDirectory } from '../system/directories.js';
import { findProgram } from '../system/find-program.js';
import { CommandFailedError, CommandRunner, quickDeadline } from '../system/run-command.js';
import {
  UNIT,
  blockedPaths,
  canonicalPath,
  describeBlocked,
  readUnitSandbox,
  resolvePaths,
} from '../system/unit-sandbox.js';
import { ensureRemoteDirectory, probeRemoteWrite } from '../remote/remote.js';
import { explainRsyncFailure } from '../remote/failures.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { chainStatusFromListing } from '../duplicity/listing-chains.js';
import { listTarget } from './run-plan.js';
import {
  type AgentContext,
  createContext,
  duplicitySettings,
  enabledSources,
  sectionOf,
  scratchDirectory,
  targetDeadline,
} from '../context/context.js';

export interface CheckItem {
  readonly name: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  readonly hint?: string | undefined;
  /** Its failure is the configuration's own (keys that contradict each other), not the host's. */
  readonly configuration?: boolean;
}

/**
 * 78 (EX_CONFIG) when a failed item is the configuration's own, as for a file that does not load:
 * the fix is in the file, not on the host. 1 for any other failure.
 */
export function checkExitCode(items: readonly CheckItem[]): number {
  const failed = items.filter((item) => item.status === 'fail');
  if (failed.some((item) => item.configuration === true)) return 78;
  return failed.length > 0 ? 1 : 0;
}

export async function runChecks(config: Config, logger: Logger, cancel: AbortSignal): Promise<CheckItem[]> {
  const items: CheckItem[] = [{ name: 'configuration', status: 'ok', detail: `${config.file} is valid` }];
  if (config.notify.smtp_cleartext_login) {
    items.push({
      name: 'mail',
      status: 'warn',
      detail: CLEARTEXT_WARNING,
      hint: 'use smtps:// or a server with STARTTLS',
    });
  }
  const check = async (name: string, proof: () => Promise<string | CheckItem>): Promise<boolean> => {
    try {
      const outcome = await proof();
      items.push(typeof outcome === 'string' ? { name, status: 'ok', detail: outcome } : outcome);
      return true;
    } catch (error) {
      items.push({
        name,
        status: 'fail',
        detail: errorMessage(error),
        hint: error instanceof AgentError ? error.hint : undefined,
      });
      return false;
    }
  };
  const sources = await enabledSources(config);
  const runner = new CommandRunner(logger, cancel);

  await check('user', () =>
    Promise.resolve(`running as uid ${process.getuid?.() ?? '?'} (${process.env['USER'] ?? 'unknown'})`),
  );
  const programs: ProgramNeed[] = [
    { program: 'duplicity', package: 'duplicity' },
    { program: 'rsync', package: 'rsync' },
    { program: 'ssh', package: 'openssh-client' },
    { program: 'gpg', package: 'gnupg' },
    { program: 'setpriv', package: 'util-linux' },
  ];
  for (const kind of enabledSourceKinds(config))
    programs.push(...(await engineOf(kind).programs(sectionOf(config, kind))));
  await check('programs', async () => {
    const missing: ProgramNeed[] = [];
    for (const need of programs) if ((await findProgram(need.program)) === undefined) missing.push(need);
    if (missing.length > 0)
      throw new CheckFailure(
        `not found on PATH: ${missing.map((need) => need.program).join(', ')}`,
        `apt install ${[...new Set(missing.map((need) => need.package))].join(' ')}`,
      );
    return `found ${programs.map((need) => need.program).join(', ')}`;
  });
  await check('staging directory', async () => {
    await ensureWritableDirectory(config.agent.staging_dir, 'agent.staging_dir');
    return freeSpace(config);
  });
  await check('cache directory', async () => {
    await ensureWritableDirectory(scratchDirectory(config), 'agent.cache_dir');
    await ensureWritableDirectory(config.target.gnupg_home, 'target.gnupg_home');
    return `${config.agent.cache_dir} is writable`;
  });
  await check('state file', async () => {
    await ensureWritableDirectory(dirname(config.agent.state_file), 'agent.state_file');
    return `${dirname(config.agent.state_file)} is writable`;
  });
  await check('schedule', async () => {
    // An unreadable state file only costs the run time estimate; the default then stands in.
    const state = await readState(config.agent.state_file).catch(() => null);
    const calendar = hostCalendar(config, readHostIdentity());
    return { name: 'schedule', configuration: true, ...judgeSlot(config, calendar, state, new Date()) };
  });
  if (config.metrics.textfile !== '') await check('metrics file', () => checkMetricsDirectory(config.metrics.textfile));
  await check('unit sandbox', () => checkSandbox(config, runner));
  const encryptionOk = await check('encryption', () => checkEncryption(config, runner));
  const { sign_key: signKey, gnupg_home: gnupgHome } = config.target;
  if (signKey !== '') {
    await check('signing', async () => {
      await proveSigningKey(runner, gnupgHome, signKey);
      return `${signKey} in ${gnupgHome} signs every volume; restores refuse volumes it did not sign`;
    });
  }
  const sshOk = await check('ssh key', () => checkSshFiles(config));
  for (const source of sources) {
    await check(`${source.kind} access`, () => source.verifyAccess(runner, scratchDirectory(config)));
    const engine = engineOf(source.kind);
    if (engine.checks !== undefined)
      items.push(...(await engine.checks(sectionOf(config, source.kind), source, runner)));
  }
  if (!encryptionOk || !sshOk) {
    items.push({ name: 'target', status: 'fail', detail: 'not checked: fix the encryption and ssh key items first' });
    return items;
  }
  let context: AgentContext | undefined;
  await check('duplicity', async () => {
    context = await createContext(config, logger, cancel);
    return `duplicity ${context.duplicityVersion.text}`;
  });
  if (context === undefined) return items;
  const ready = context;
  for (const source of sources) {
    await check(`target ${source.kind}`, async () => {
      const settings = duplicitySettings(ready, source.kind);
      const deadline = targetDeadline(config, `checking ${source.kind} on the target`);
      const url = formatRsyncUrl(settings.url);
      try {
        await ensureRemoteDirectory(ready.runner, settings.url, settings, scratchDirectory(config), deadline);
        await probeRemoteWrite(ready.runner, settings.url, settings, scratchDirectory(config), deadline);
      } catch (error) {
        if (error instanceof CommandFailedError && error.signal === undefined)
          throw explainRsyncFailure(`writing to ${url}`, error);
        throw error;
      }
      // From the listing, as a run reads it: duplicity's collection-status would wait for, or fail
      // on, the cache lock of a run in progress.
      const status = chainStatusFromListing((await listTarget(ready, source.kind)).files);
      const sets = status.chains.reduce((sum, chain) => sum + chain.sets.length, 0);
      return `${url} is reachable and writable; ${status.chains.length} chain(s), ${sets} backup set(s)`;
    });
  }
  return items;
}

/**
 * Root's part of check, before it runs again as the backup user: what only root can see, e.g. the
 * objects the backup user's grant hides from it, for the re-run's items.
 */
export async function prepareChecksAsRoot(config: Config, cancel: AbortSignal): Promise<void> {
  const runner = new CommandRunner(createLogger({ toStderr: true, level: 'warn' }), cancel);
  for (const kind of enabledSourceKinds(config))
    await engineOf(kind).prepareCheckAsRoot?.(sectionOf(config, kind), runner);
}

// Debian's prometheus-node-exporter reads this directory by default (--collector.textfile.directory).
const NODE_EXPORTER_DIR = '/var/lib/prometheus/node-exporter';

class CheckFailure extends AgentError {
  readonly exitCode = 1;
}

async function checkEncryption(config: Config, runner: CommandRunner): Promise<string | CheckItem> {
  const { target } = config;
  switch (target.encryption) {
    case 'none':
      return {
        name: 'encryption',
        status: 'warn',
        detail: 'target.encryption = none: backups are stored unencrypted',
        hint: 'use symmetric or pubkey in production',
      };
    case 'symmetric':
      await readPassphrase(target.passphrase_file);
      return `symmetric; ${target.passphrase_file} is private and not empty`;
    case 'pubkey': {
      const result = await runner
        .run({
          argv: ['gpg', '--homedir', target.gnupg_home, '--batch', '--with-colons', '--list-keys', target.encrypt_key],
          stdout: 'capture',
          deadline: quickDeadline('gpg --list-keys'),
        })
        .catch((error: unknown) => {
          throw new CheckFailure(
            `key ${target.encrypt_key} is not in ${target.gnupg_home}: ${errorMessage(error)}`,
            `import it as the backup user: gpg --homedir ${target.gnupg_home} --import public-key.asc`,
          );
        });
      const capabilities =
        result.stdout
          .split('\n')
          .find((line) => line.startsWith('pub:'))
          ?.split(':')[11] ?? '';
      if (!capabilities.includes('E'))
        throw new CheckFailure(
          `key ${target.encrypt_key} cannot encrypt (capabilities "${capabilities}")`,
          'use a key with an encryption subkey',
        );
      return `pubkey ${target.encrypt_key} found in ${target.gnupg_home}`;
    }
  }
}

async function checkSshFiles(config: Config): Promise<string> {
  const { ssh_key: key, known_hosts: knownHosts } = config.target;
  const info = await stat(key).catch(() => {
    throw new CheckFailure(
      `target.ssh_key ${key} does not exist`,
      `as root: ssh-keygen -t ed25519 -N '' -f ${key} && chown backup: ${key}; then authorise ${key}.pub on the target`,
    );
  });
  if (info.uid !== process.getuid?.() || (info.mode & 0o077) !== 0) {
    throw new CheckFailure(
      `target.ssh_key ${key} must be owned by the agent user with mode 0600 (ssh refuses it otherwise)`,
      `chown backup: ${key}; chmod 600 ${key}`,
    );
  }
  await stat(knownHosts).catch(() => {
    throw new CheckFailure(
      `target.known_hosts ${knownHosts} does not exist`,
      `as root: ssh-keyscan -p PORT HOST > ${knownHosts}, then compare the fingerprint with the target's`,
    );
  });
  return `${key} is private; host keys from ${knownHosts}`;
}

/**
 * The metrics file is replaced by a rename in its directory (node_exporter may read at any time),
 * so the agent user needs write access to the directory, not just to the file. The directory is
 * node_exporter's: the agent never creates it.
 */
async function checkMetricsDirectory(file: string): Promise<string> {
  const dir = dirname(file);
  const isDebians = dir === NODE_EXPORTER_DIR;
  const info = await stat(dir).catch(() => undefined);
  if (info?.isDirectory() !== true)
    throw new CheckFailure(
      `metrics.textfile = ${file}: the directory ${dir} does not exist`,
      isDebians
        ? 'apt install prometheus-node-exporter (its textfile collector reads that directory)'
        : `as root: install -d -m 0755 ${dir}, and point node_exporter's --collector.textfile.directory at it`,
    );
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new CheckFailure(
      `metrics.textfile = ${file}: the directory ${dir} is not writable for uid ${process.getuid?.() ?? '?'}`,
      // The package grants this entry itself (postinst); a chmod of the directory can take it back.
      `as root: setfacl -m u:backup:rwx ${dir}${isDebians ? ' (what the package does when it is installed)' : ''}`,
    );
  }
  return `${dir} is writable; node_exporter reads ${basename(file)} there`;
}

/** The directories the daemon writes in, by the key that names them. */
function writtenPaths(config: Config): { key: string; value: string; dir: string }[] {
  const { agent, target, metrics } = config;
  return [
    { key: 'agent.staging_dir', value: agent.staging_dir, dir: agent.staging_dir },
    { key: 'agent.cache_dir', value: agent.cache_dir, dir: agent.cache_dir },
    { key: 'agent.state_file', value: agent.state_file, dir: dirname(agent.state_file) },
    { key: 'target.gnupg_home', value: target.gnupg_home, dir: target.gnupg_home },
    ...(metrics.textfile === ''
      ? []
      : [{ key: 'metrics.textfile', value: metrics.textfile, dir: dirname(metrics.textfile) }]),
  ];
}

/** Whether the unit's sandbox lets the daemon write every directory it needs. */
async function checkSandbox(config: Config, runner: CommandRunner): Promise<string | CheckItem> {
  const unit = await readUnitSandbox(runner);
  if (unit === undefined) return `${UNIT} is not installed: no sandbox to check`;
  const unitConfig = resolve(unit.configFile ?? DEFAULT_CONFIG_FILE);
  if (resolve(config.file) !== unitConfig) return `not checked: ${UNIT} reads ${unitConfig}, not ${config.file}`;
  const sandbox = await resolvePaths(unit);
  const written = await Promise.all(
    writtenPaths(config).map(async (path) => ({ ...path, dir: await canonicalPath(path.dir) })),
  );
  const blocked = blockedPaths(sandbox, written);
  if (blocked.length === 0)
    return `${UNIT} lets the daemon write ${[...new Set(written.map((path) => path.dir))].join(', ')}`;
  return { name: 'unit sandbox', status: 'fail', ...describeBlocked(sandbox, blocked) };
}

async function freeSpace(config: Config): Promise<string | CheckItem> {
  const stats = await statfs(config.agent.staging_dir);
  const free = stats.bavail * stats.bsize;
  const staged = await directorySize(config.agent.staging_dir);
  // The new dump is written beside the previous one before the swap.
  const detail = `${config.agent.staging_dir} is writable; ${formatBytes(free)} free, current dumps ${formatBytes(staged)}`;
  if (free < staged)
    return {
      name: 'staging directory',
      status: 'fail',
      detail,
      hint: 'the next dump needs room beside the current one: free space or move agent.staging_dir',
    };
  return detail;
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await directorySize(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}
