// The plan of a run, per source: full or incremental and why, and every command it runs, in order.
// A real run (backup.ts) builds it with these functions and executes its steps; `run --dry-run`
// builds the same plan and prints it, running only read-only calls: the server's grants and one
// listing of the target, which the chain and its health are both read from.
import type { BackupKind, ChainStatus, KindDecision, PlannedStep, SourceKind } from '../domain.js';
import { chainHeal } from '../duplicity/chain-health.js';
import { chainStatusFromListing } from '../duplicity/listing-chains.js';
import type { Duplicity } from '../duplicity/run.js';
import { type TargetListing, readTargetListing } from '../duplicity/target-listing.js';
import { errorMessage } from '../errors.js';
import type { DataSource } from '../sources/source.js';
import { StagingArea } from '../sources/staging.js';
import { type AgentContext, openDuplicity, duplicitySettings, targetDeadline } from '../context/context.js';
import { type HostFullDay, type RetentionPlan, decideKind, planRetention } from '../plan/decide.js';

export interface SourcePlan {
  readonly source: SourceKind;
  readonly decision: KindDecision | { readonly kind: 'unknown'; readonly reason: string };
  /** Dump, upload and retention, in the order the run executes them. */
  readonly steps: readonly PlannedStep[];
  /** Why the dump could not be planned (the server did not answer); the run would fail there. */
  readonly problem?: string;
}

/** When the daemon would run: the schedule, this host's offset within the spread, and its full day. */
export interface SlotPlan {
  readonly schedule: string;
  readonly timezone: string;
  readonly spreadMs: number;
  readonly offsetMs: number;
  readonly next: Date | null;
  readonly fullDay: HostFullDay;
}

export interface BackupPlan {
  readonly slot: SlotPlan;
  readonly sources: readonly SourcePlan[];
}

/** What the target's chain decides for this run. */
export interface ChainDecision {
  /** The chain before the upload: the check before retention compares the chain after with it. */
  readonly status: ChainStatus;
  readonly decision: KindDecision;
  /** Which retention calls a full makes afterwards. */
  readonly retention: RetentionPlan;
  /** The upload ledger could not be read: earlier uploads' sizes were not checked. */
  readonly ledgerProblem: string | null;
}

/** One listing of the source's directory on the target: all that the decision reads there. */
export function listTarget(context: AgentContext, source: SourceKind): Promise<TargetListing> {
  return readTargetListing(
    context.runner,
    duplicitySettings(context, source),
    targetDeadline(context.config, `reading the ${source} chain on the target`),
  );
}

/**
 * Full or incremental, from the target's own chain: its sets (read from the listing as duplicity's
 * collection-status would report them), the sizes of the files on the target against the upload
 * ledger, and where the staged dump lies (a moved staging_dir needs a full). A directory not on
 * the target yet holds nothing to check.
 */
export async function decideFromChain(
  context: AgentContext,
  source: SourceKind,
  target: TargetListing,
  requested: BackupKind | undefined,
  fullDay: HostFullDay,
  now: Date,
): Promise<ChainDecision> {
  const { config } = context;
  const status = chainStatusFromListing(target.files);
  const { heal, ledgerProblem } = target.directoryExists
    ? await chainHeal(
        target.files,
        duplicitySettings(context, source),
        new StagingArea(config.agent.staging_dir, source).current,
      )
    : { heal: undefined, ledgerProblem: null };
  const decision = decideKind({
    status,
    now,
    fullDay,
    timezone: config.agent.timezone,
    maxFullAgeMs: config.agent.max_full_age,
    requested,
    unextendable: heal,
  });
  return { status, decision, retention: planRetention(status, config.agent.keep_full), ledgerProblem };
}

/** The upload of the staged dump, and after a full the retention calls. */
export function targetSteps(
  context: AgentContext,
  duplicity: Duplicity,
  source: SourceKind,
  kind: BackupKind,
  retention: RetentionPlan,
): { readonly upload: PlannedStep; readonly retention: readonly PlannedStep[] } {
  const { config } = context;
  return {
    upload: duplicity.uploadStep(kind, new StagingArea(config.agent.staging_dir, source).current),
    retention: kind === 'full' ? duplicity.retentionSteps(retention, config.agent.keep_full) : [],
  };
}

export async function planBackup(
  context: AgentContext,
  sources: readonly DataSource[],
  requested: BackupKind | undefined,
): Promise<BackupPlan> {
  const { agent } = context.config;
  const now = new Date();
  const { calendar } = context;
  const slot: SlotPlan = {
    schedule: agent.schedule,
    timezone: agent.timezone,
    spreadMs: calendar.spreadMs,
    offsetMs: calendar.offsetMs,
    next: calendar.schedule.next(now),
    fullDay: calendar.fullDay,
  };
  return {
    slot,
    sources: await Promise.all(sources.map((source) => planSource(context, source, requested, calendar.fullDay, now))),
  };
}

async function planSource(
  context: AgentContext,
  source: DataSource,
  requested: BackupKind | undefined,
  fullDay: HostFullDay,
  now: Date,
): Promise<SourcePlan> {
  const duplicity = openDuplicity(context, source.kind);
  let decision: SourcePlan['decision'];
  // Unknown when the target cannot be read: the plan then shows every retention call a full may make.
  let retention: RetentionPlan = { removeOldChains: true, cleanup: true, reason: 'the target could not be read' };
  try {
    // A missing directory is created by a real run and starts a chain, which is what the plan shows.
    const target = await listTarget(context, source.kind);
    ({ decision, retention } = await decideFromChain(context, source.kind, target, requested, fullDay, now));
  } catch (error) {
    decision = { kind: 'unknown', reason: `cannot read the target: ${errorMessage(error)}` };
  }
  const kind = decision.kind === 'unknown' ? (requested ?? 'incremental') : decision.kind;
  const target = targetSteps(context, duplicity, source.kind, kind, retention);
  let dump: readonly PlannedStep[] = [];
  let problem: string | undefined;
  try {
    await source.preflight(context.runner);
    dump = await source.dumpSteps(context.runner, new StagingArea(context.config.agent.staging_dir, source.kind).next);
  } catch (error) {
    problem = `the dump cannot be planned: ${errorMessage(error)}`;
  }
  return {
    source: source.kind,
    decision,
    steps: [...dump, target.upload, ...target.retention],
    ...(problem === undefined ? {} : { problem }),
  };
}
