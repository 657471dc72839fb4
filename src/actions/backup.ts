// One backup run: every enabled source in parallel, each strictly dump → check → upload. A source
// that fails does not stop the others; the run fails (exit 1) if any source failed.
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupKind, HealNotice, PlannedStep, SourceKind, SourceOutcome } from '../domain.js';
import { findCacheDamage, mayBeCacheFault, moveCacheAside } from '../duplicity/cache-health.js';
import type { DuplicitySettings } from '../duplicity/command.js';
import { TargetUnreachableError } from '../remote/failures.js';
import { chainStatusFromListing } from '../duplicity/listing-chains.js';
import { proveSigningKey } from '../duplicity/signing-key.js';
import type { TargetListing } from '../duplicity/target-listing.js';
import { recordUpload } from '../duplicity/upload-ledger.js';
import type { Duplicity } from '../duplicity/run.js';
import { AgentError, BackupFailedError, InterruptedError, errorMessage } from '../errors.js';
import { formatBytes } from '../report/format.js';
import { runDump } from '../sources/dump.js';
import { writeManifest, totalSize } from '../sources/manifest.js';
import type { DataSource } from '../sources/source.js';
import { StagingArea } from '../sources/staging.js';
import { ensureWritableDirectory } from '../system/directories.js';
import { acquireRunLock } from '../system/lock.js';
import { type RemoteFile, ensureRemoteDirectory } from '../remote/remote.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import {
  type AgentContext,
  duplicitySettings,
  endSession,
  lockPath,
  openDuplicity,
  scratchDirectory,
  targetDeadline,
} from '../context/context.js';
import type { Deadline } from '../system/run-command.js';
import { findInterruptedUpload, markUploadFinished, markUploadStarted } from './interrupted-upload.js';
import { verifyNewFull } from '../plan/decide.js';
import { type ChainDecision, type SourcePlan, decideFromChain, listTarget, targetSteps } from './run-plan.js';

export interface BackupRequest {
  readonly sources: readonly DataSource[];
  readonly kind?: BackupKind | undefined;
  /** Names the lock holder, e.g. "backup-agent run" or "daemon (scheduled)". */
  readonly trigger: string;
}

export interface RunSummary {
  readonly outcomes: readonly SourceOutcome[];
  readonly ok: boolean;
}

export async function runBackup(context: AgentContext, request: BackupRequest): Promise<RunSummary> {
  const { config, logger } = context;
  await ensureWritableDirectory(config.agent.cache_dir, 'agent.cache_dir');
  await ensureWritableDirectory(config.agent.staging_dir, 'agent.staging_dir');
  await ensureWritableDirectory(scratchDirectory(config), 'agent.cache_dir');
  await ensureWritableDirectory(config.target.gnupg_home, 'target.gnupg_home');
  const lock = await acquireRunLock(lockPath(config.agent.cache_dir), request.trigger);
  try {
    if (config.target.encryption === 'none') {
      logger.warn('target.encryption = none: backups are stored unencrypted on the target');
    }
    // Before any dump: with a missing key, duplicity would upload volumes no restore accepts.
    if (config.target.sign_key !== '')
      await proveSigningKey(context.runner, config.target.gnupg_home, config.target.sign_key);
    logger.info(
      { sources: request.sources.map((source) => source.kind), duplicity: context.duplicityVersion.text },
      'backup run started',
    );
    const outcomes = await Promise.all(request.sources.map((source) => backupSource(context, source, request.kind)));
    if (context.cancel.aborted) throw new InterruptedError(abortSignalName(context.cancel));
    for (const outcome of outcomes) logOutcome(context, outcome);
    return { outcomes, ok: outcomes.every((outcome) => outcome.result === 'ok') };
  } finally {
    await endSession(context);
    await lock.release();
  }
}

type Stage = Extract<SourceOutcome, { result: 'failed' }>['stage'];

async function backupSource(
  context: AgentContext,
  source: DataSource,
  requested: BackupKind | undefined,
): Promise<SourceOutcome> {
  const { config, logger, runner } = context;
  const log = logger.child({ source: source.kind });
  const started = Date.now();
  const duplicity = openDuplicity(context, source.kind);
  const staging = new StagingArea(config.agent.staging_dir, source.kind);
  let stage: Stage = 'resume';
  let bytesDumped = 0;
  const notices: HealNotice[] = [];
  try {
    await resumeInterruptedUpload(context, source, duplicity, staging, notices);

    stage = 'dump';
    await source.preflight(runner);
    const dumpSteps = await source.dumpSteps(runner, staging.next);
    // The decision needs the target's chain, not the new dump: the chain is read while the dump
    // runs, and its answer waits until the dump is checked and in place.
    const target = readTarget(context, source.kind, requested);
    target.catch(() => undefined);
    const dir = await staging.prepare();
    const dumpStarted = new Date();
    try {
      await staging.withinReserve(config.agent.staging_reserve, (stop) =>
        runDump(runner.stoppedBy(stop), source, dumpSteps, dir, {
          ms: config.deadlines.dump,
          step: `${source.kind} dump`,
          key: 'deadlines.dump',
        }),
      );
      const manifest = await writeManifest(dir, {
        source: source.kind,
        databases: source.databases,
        startedAt: dumpStarted.toISOString(),
        finishedAt: new Date().toISOString(),
        tools: { ...(await source.toolVersions(runner)), duplicity: context.duplicityVersion.text },
      });
      bytesDumped = totalSize(manifest.files);
    } catch (error) {
      await staging.discard();
      // Its children must not outlive the run, and its answer no longer matters.
      await target.catch(() => undefined);
      throw error;
    }
    await staging.commit();
    log.info(
      { bytes: bytesDumped, files: source.databases },
      '%s dump complete and checked (%s); the previous dump was replaced',
      source.kind,
      formatBytes(bytesDumped),
    );

    stage = 'upload';
    const { status, decision, retention, ledgerProblem } = await target;
    if (ledgerProblem !== null) log.warn('%s; the sizes of earlier uploads are not checked this time', ledgerProblem);
    const steps = targetSteps(context, duplicity, source.kind, decision.kind, retention);
    const plan: SourcePlan = {
      source: source.kind,
      decision,
      steps: [...dumpSteps, steps.upload, ...steps.retention],
    };
    log.info({ kind: decision.kind, reason: decision.reason }, '%s backup: %s', decision.kind, decision.reason);
    log.debug({ plan: plan.steps.map((step) => step.label) }, 'the plan of this run');
    if (decision.heal !== undefined) {
      notices.push(decision.heal);
      log.warn({ heal: decision.heal.kind }, 'self-healing: %s', decision.heal.reason);
    }
    const uploadStarted = new Date();
    const uploaded = await upload(context, source, duplicity, staging, decision.kind, steps.upload, notices);

    stage = 'retention';
    if (decision.kind === 'full') {
      // Without the listing recordUpload took, duplicity reads the target instead, as every run did
      // before that listing replaced it: a dropped connection or a full disk under the ledger must
      // neither let retention go unchecked nor fail a good full; if this read fails too, the source
      // fails here and no chain is removed. (duplicity also counts the signature files and partial
      // manifests of the cache, so it is more lenient about those, never about the volumes and
      // manifests on the target.)
      const after =
        uploaded.listing === undefined ? await duplicity.chainStatus() : chainStatusFromListing(uploaded.listing);
      const verification = verifyNewFull(status, after, uploadStarted);
      if (!verification.verified) {
        // A failure, not a warning: history is no longer pruned, and the new full may not restore.
        throw new BackupFailedError(
          verification.reason,
          `no chain was removed; look at the target with: backup-agent list ${source.kind}`,
        );
      }
      log.info({ retention }, 'retention: %s; %s', verification.reason, retention.reason);
      for (const step of steps.retention) await duplicity.execute(step);
      if (retention.removeOldChains) await proveRetention(context, source.kind);
    }
    return {
      source: source.kind,
      result: 'ok',
      kind: decision.kind,
      bytesDumped,
      bytesUploaded: uploaded.bytes,
      durationMs: Date.now() - started,
      notices,
    };
  } catch (error) {
    if (!(error instanceof AgentError) && !context.cancel.aborted) log.error({ err: error }, 'unexpected error');
    return {
      source: source.kind,
      result: 'failed',
      stage,
      error: describe(error),
      bytesDumped,
      durationMs: Date.now() - started,
    };
  }
}

/**
 * duplicity reports a removal done when the target took the rsync call, also when it deleted nothing:
 * rrsync with -no-del drops rsync's --delete silently. Left unseen, the target would fill up while
 * every run says OK.
 */
async function proveRetention(context: AgentContext, source: SourceKind): Promise<void> {
  const keepFull = context.config.agent.keep_full;
  const left = chainStatusFromListing((await listTarget(context, source)).files).chains.length;
  if (left > keepFull) {
    throw new BackupFailedError(
      `retention removed nothing: ${left} chains are still on the target after removing all but ${keepFull} (agent.keep_full); the target did not delete the old chains' files`,
      'let the target account delete its own files: with rrsync, no -no-del in its authorized_keys command (deploy/ansible/roles/backup_server/README.md); the new full is on the target',
    );
  }
}

/** The target's chain (its directory created when missing) and what it decides for this run. */
async function readTarget(
  context: AgentContext,
  source: SourceKind,
  requested: BackupKind | undefined,
): Promise<ChainDecision> {
  const target = await listingCreatingDirectory(context, duplicitySettings(context, source));
  return decideFromChain(context, source, target, requested, context.calendar.fullDay, new Date());
}

/**
 * Pauses before the target is listed again when it did not answer: a server that restarts, or a
 * fleet's connections past sshd's MaxStartups, which drops them at once. Each pause gets up to as
 * much again at random, so that hosts dropped together come back apart.
 */
const UNANSWERED_PAUSES_MS = [5_000, 15_000] as const;

async function listTargetPatiently(context: AgentContext, source: SourceKind): Promise<TargetListing> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await listTarget(context, source);
    } catch (error) {
      const pause = UNANSWERED_PAUSES_MS[attempt];
      if (!(error instanceof TargetUnreachableError) || pause === undefined || context.cancel.aborted) throw error;
      const wait = pause + randomInt(pause);
      context.logger.warn(
        { source, attempt: attempt + 1 },
        '%s; reading the chain again in %ss',
        error.message,
        (wait / 1000).toFixed(0),
      );
      await sleep(wait, undefined, { signal: context.cancel }).catch(() => undefined);
      if (context.cancel.aborted) throw error;
    }
  }
}

/** The target's listing; a missing directory on the target is created and means "no chain yet". */
async function listingCreatingDirectory(context: AgentContext, settings: DuplicitySettings): Promise<TargetListing> {
  const target = await listTargetPatiently(context, settings.name);
  if (target.directoryExists) return target;
  const url = formatRsyncUrl(settings.url);
  context.logger.info({ source: settings.name }, 'creating %s on the target', url);
  await ensureRemoteDirectory(
    context.runner,
    settings.url,
    settings,
    scratchDirectory(context.config),
    targetDeadline(context.config, `creating ${settings.name} on the target`),
  ).catch((error: unknown) => {
    throw new BackupFailedError(
      `cannot create ${url} on the target: ${errorMessage(error)}`,
      'check target.url and the rights of the target account',
      { cause: error },
    );
  });
  return target;
}

/** What an upload leaves: the bytes duplicity reports, and the target's listing after it (unless that failed). */
interface Uploaded {
  readonly bytes: number | null;
  readonly listing: readonly RemoteFile[] | undefined;
}

async function upload(
  context: AgentContext,
  source: DataSource,
  duplicity: Duplicity,
  staging: StagingArea,
  kind: BackupKind,
  step: PlannedStep,
  notices: HealNotice[],
): Promise<Uploaded> {
  const cacheDir = context.config.agent.cache_dir;
  await markUploadStarted(cacheDir, source.kind, kind);
  const deadline = uploadDeadline(context, source.kind, await staging.size());
  const bytes = await healingCache(context, source.kind, notices, () => duplicity.upload(step, deadline));
  await markUploadFinished(cacheDir, source.kind);
  const listing = await recordUpload(
    context.runner,
    duplicitySettings(context, source.kind),
    staging.current,
    targetDeadline(context.config, `listing the new ${source.kind} set on the target`),
  ).catch((error: unknown) => {
    if (context.cancel.aborted) throw error;
    // The upload itself succeeded; the next run then checks this set by its manifest only.
    context.logger.warn(
      { source: source.kind, error: errorMessage(error) },
      'cannot record the sizes of the uploaded files: %s',
      errorMessage(error),
    );
    return undefined;
  });
  return { bytes, listing };
}

/**
 * Runs a duplicity step of the backup; when it fails in a way a damaged cache can explain and the
 * cache is indeed damaged, moves the cache aside and runs the step once more (duplicity rebuilds
 * the cache from the target).
 */
async function healingCache<T>(
  context: AgentContext,
  source: SourceKind,
  notices: HealNotice[],
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (context.cancel.aborted || !mayBeCacheFault(error)) throw error;
    const cacheDir = context.config.agent.cache_dir;
    const damage = await findCacheDamage(join(cacheDir, source));
    if (damage === undefined) throw error;
    const aside = await moveCacheAside(cacheDir, source, new Date());
    const notice: HealNotice = {
      kind: 'damaged-cache',
      reason: `the duplicity cache was damaged (${damage}): it was moved aside to ${aside} and rebuilt from the target`,
    };
    context.logger.warn(
      { source, heal: notice.kind, failure: errorMessage(error) },
      'self-healing: %s; trying the step again',
      notice.reason,
    );
    try {
      const result = await step();
      notices.push(notice);
      return result;
    } catch (retryError) {
      if (context.cancel.aborted || !(retryError instanceof AgentError)) throw retryError;
      throw new BackupFailedError(
        `${retryError.message} (again after the damaged cache was moved aside to ${aside})`,
        retryError.hint,
        { cause: retryError },
      );
    }
  }
}

async function resumeInterruptedUpload(
  context: AgentContext,
  source: DataSource,
  duplicity: Duplicity,
  staging: StagingArea,
  notices: HealNotice[],
): Promise<void> {
  const interrupted = await findInterruptedUpload(context.config.agent.cache_dir, source.kind);
  if (interrupted === undefined) return;
  const log = context.logger.child({ source: source.kind });
  if (!(await staging.hasDump())) {
    log.warn(
      'an interrupted upload was recorded but there is no staged dump to resume it from; continuing with a new backup',
    );
    await markUploadFinished(context.config.agent.cache_dir, source.kind);
    return;
  }
  // A new dump must not be mixed into a half-uploaded set: duplicity's restart continues from the
  // last volume, so the rest must come from the very same files.
  log.warn(
    { interrupted },
    'the %s upload started %s did not complete; running it again on the same dump so duplicity resumes it',
    interrupted.kind,
    interrupted.startedAt,
  );
  await upload(
    context,
    source,
    duplicity,
    staging,
    interrupted.kind,
    duplicity.uploadStep(interrupted.kind, staging.current),
    notices,
  );
  await duplicity.execute(duplicity.cleanupStep());
}

/** deadlines.upload, plus the time the dump takes at deadlines.upload_rate. */
function uploadDeadline(context: AgentContext, source: SourceKind, bytes: number): Deadline {
  const { upload, upload_rate } = context.config.deadlines;
  return { ms: upload + Math.ceil((bytes / upload_rate) * 1000), step: `${source} upload`, key: 'deadlines.upload' };
}

function describe(error: unknown): string {
  if (error instanceof AgentError && error.hint !== undefined) return `${error.message} (${error.hint})`;
  return errorMessage(error);
}

function logOutcome(context: AgentContext, outcome: SourceOutcome): void {
  const seconds = (outcome.durationMs / 1000).toFixed(1);
  if (outcome.result === 'ok') {
    const uploaded = outcome.bytesUploaded === null ? 'unknown' : formatBytes(outcome.bytesUploaded);
    context.logger.info(
      { summary: true, host: hostname(), ...outcome },
      '%s: %s backup OK: %s dumped, %s uploaded, %ss',
      outcome.source,
      outcome.kind,
      formatBytes(outcome.bytesDumped),
      uploaded,
      seconds,
    );
  } else {
    context.logger.error(
      { summary: true, host: hostname(), ...outcome },
      '%s: backup FAILED during %s after %ss: %s',
      outcome.source,
      outcome.stage,
      seconds,
      outcome.error,
    );
  }
}

function abortSignalName(signal: AbortSignal): NodeJS.Signals {
  return signal.reason === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
}
