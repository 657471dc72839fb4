// What every action needs, built once per run from the validated Config.
import { join } from 'node:path';
import { type Config, type EngineSection, enabledSourceKinds } from '../config/schema.js';
import type { SourceKind } from '../domain.js';
import { type DuplicitySettings, type Encryption, duplicityEnvironment } from '../duplicity/command.js';
import { stopGpgAgent } from '../duplicity/gpg-agent.js';
import { readPassphrase } from '../duplicity/passphrase.js';
import { Duplicity } from '../duplicity/run.js';
import type { DuplicityVersion } from '../duplicity/version.js';
import { duplicityVersion as readDuplicityVersion } from '../duplicity/version-cache.js';
import { UsageError, errorMessage } from '../errors.js';
import type { HostCalendar } from '../history/schedule.js';
import { hostCalendar, readHostIdentity } from '../history/spread.js';
import type { Logger } from '../report/logger.js';
import type { EngineTools } from '../sources/engine.js';
import { engineOf } from '../sources/registry.js';
import type { DataSource } from '../sources/source.js';
import { acquireBriefRunLock } from '../system/lock.js';
import { type SystemUser, isRoot } from '../system/privileges.js';
import { CommandRunner, type Deadline } from '../system/run-command.js';
import { childUrl } from '../remote/rsync-url.js';
import { stopSharedConnection } from '../remote/ssh-master.js';

export interface AgentContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly runner: CommandRunner;
  /**
   * For what must happen however the command ends (ending its daemons, starting stopped services,
   * dropping scratch databases): no cancel reaches it, each command has a quick deadline of its own.
   */
  readonly cleanup: CommandRunner;
  readonly cancel: AbortSignal;
  readonly duplicityVersion: DuplicityVersion;
  /** The symmetric passphrase, or '' (duplicity still needs PASSPHRASE set). */
  readonly passphrase: string;
  /** This host's schedule: its slot within agent.spread and its full day. */
  readonly calendar: HostCalendar;
}

export async function createContext(config: Config, logger: Logger, cancel: AbortSignal): Promise<AgentContext> {
  const passphrase =
    config.target.encryption === 'symmetric' ? await readPassphrase(config.target.passphrase_file) : '';
  const runner = new CommandRunner(logger, cancel, [passphrase]);
  // Root takes nothing from the backup user's cache as an instruction.
  const duplicityVersion = await readDuplicityVersion(runner, isRoot() ? null : config.agent.cache_dir);
  return {
    config,
    logger,
    runner,
    cleanup: cleanupRunner(logger, [passphrase]),
    cancel,
    duplicityVersion,
    passphrase,
    calendar: hostCalendar(config, readHostIdentity()),
  };
}

/** A runner that a SIGTERM to the agent does not stop: see AgentContext.cleanup. */
export function cleanupRunner(logger: Logger, secrets: readonly string[] = []): CommandRunner {
  return new CommandRunner(logger, new AbortController().signal, secrets);
}

/**
 * Ends what a command holding the run lock may have left running: the ssh connection master and
 * the gpg-agent, as `runAs` when root ran them as the backup user. Call it before the lock is
 * released, on every path: while the lock is held, no other run can be using either.
 */
export async function endSession(context: AgentContext, runAs?: SystemUser): Promise<void> {
  await stopTargetConnection(context.cleanup, context.config, runAs);
  await stopGpgAgent(context.cleanup, context.config.target.gnupg_home, runAs);
}

/**
 * The same for a command that works without the run lock (list, status --remote, check, run
 * --dry-run), which runs as the backup user. Its gpg-agent is the gnupg home's, which a backup
 * running meanwhile may be using: it is stopped only under the lock, taken for that moment. While
 * another run holds the lock, that run stops it when it ends.
 */
export async function endLockFreeSession(config: Config, runner: CommandRunner, command: string): Promise<void> {
  await stopTargetConnection(runner, config);
  const lock = await acquireBriefRunLock(lockPath(config.agent.cache_dir), `${command} (stopping the gpg-agent)`).catch(
    (error: unknown) => {
      runner.logger.debug({ err: errorMessage(error) }, 'the gpg-agent is left to the run that holds the lock');
      return undefined;
    },
  );
  if (lock === undefined) return;
  try {
    await stopGpgAgent(runner, config.target.gnupg_home);
  } finally {
    await lock.release();
  }
}

function stopTargetConnection(runner: CommandRunner, config: Config, runAs?: SystemUser): Promise<void> {
  const { agent, target } = config;
  const access = { sshKey: target.ssh_key, knownHosts: target.known_hosts, controlDir: agent.cache_dir };
  return stopSharedConnection(runner, target.url, access, runAs);
}

export function duplicitySettings(context: AgentContext, source: SourceKind): DuplicitySettings {
  const { agent, target } = context.config;
  return {
    version: context.duplicityVersion,
    archiveDir: agent.cache_dir,
    name: source,
    url: childUrl(target.url, source),
    sshKey: target.ssh_key,
    knownHosts: target.known_hosts,
    controlDir: agent.cache_dir,
    encryption: encryption(context.config),
    signKey: target.sign_key === '' ? null : target.sign_key,
    volumeSizeMb: target.volume_size,
    fullCompressLevel: target.full_compress_level,
    tempDir: scratchDirectory(context.config),
  };
}

/** duplicity for one source's place on the target, with the run's environment and deadlines. */
export function openDuplicity(context: AgentContext, source: SourceKind, runAs?: SystemUser): Duplicity {
  const { config } = context;
  return new Duplicity(
    context.runner,
    duplicitySettings(context, source),
    duplicityEnvironment(context.passphrase, config.target.gnupg_home),
    { target: config.deadlines.target, restore: config.deadlines.restore },
    runAs,
  );
}

/** The run lock: one run, restore or verify at a time per cache (and so per target). */
export function lockPath(cacheDir: string): string {
  return join(cacheDir, 'backup-agent.lock');
}

/** Private scratch space on the cache filesystem (volumes, empty dirs for rsync). */
export function scratchDirectory(config: Config): string {
  return join(config.agent.cache_dir, 'tmp');
}

function encryption(config: Config): Encryption {
  switch (config.target.encryption) {
    case 'none':
      return { mode: 'none' };
    case 'symmetric':
      return { mode: 'symmetric' };
    case 'pubkey':
      return { mode: 'pubkey', key: config.target.encrypt_key };
  }
}

/** The enabled sources, optionally narrowed to those named with --source. */
export async function enabledSources(config: Config, only: readonly SourceKind[] = []): Promise<DataSource[]> {
  const kinds = enabledSourceKinds(config).filter((kind) => only.length === 0 || only.includes(kind));
  return Promise.all(kinds.map((kind) => engineOf(kind).source(sectionOf(config, kind))));
}

/** A source's ini section; its engine knows the keys beyond `enabled` and `databases`. */
export function sectionOf(config: Config, kind: SourceKind): EngineSection {
  const section = config.sources[kind];
  if (section === undefined) throw new UsageError(`no [${kind}] section in ${config.file}`);
  return section;
}

/** What an engine's restore and verify work with: this run's runners, logger and restore deadline. */
export function engineTools(context: AgentContext): EngineTools {
  return {
    runner: context.runner,
    cleanup: context.cleanup,
    logger: context.logger,
    deadline: (step) => restoreDeadline(context.config, step),
  };
}

/** The deadline of one step of a restore or verify: the download, the safety dump, the import. */
export function restoreDeadline(config: Config, step: string): Deadline {
  return { ms: config.deadlines.restore, step, key: 'deadlines.restore' };
}

/** The deadline of a call on the target that moves no dump: the chain read, listing, retention. */
export function targetDeadline(config: Config, step: string): Deadline {
  return { ms: config.deadlines.target, step, key: 'deadlines.target' };
}
