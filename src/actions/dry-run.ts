// `run --dry-run`: the plan of a run (this host's slot; each source: full or incremental and why,
// every command line) built with the same calendar, decision and command builders as a real run,
// executing only read-only calls on the target: collection-status and the listing the chain check reads.
import { join } from 'node:path';
import type { BackupKind, KindDecision, SourceKind } from '../domain.js';
import { chainHeal } from '../duplicity/chain-health.js';
import { backupCommand, cleanupCommand, removeAllButNFullCommand } from '../duplicity/command.js';
import { errorMessage } from '../errors.js';
import type { DataSource, PlannedCommand } from '../sources/source.js';
import { StagingArea } from '../sources/staging.js';
import { type AgentContext, openDuplicity, duplicitySettings, targetDeadline } from '../context/context.js';
import { type HostFullDay, type RetentionPlan, decideKind, planRetention } from '../plan/decide.js';
import { hostCalendar, readHostIdentity } from '../history/spread.js';

export interface SourcePlan {
  readonly source: SourceKind;
  readonly decision: KindDecision | { readonly kind: 'unknown'; readonly reason: string };
  readonly commands: readonly PlannedCommand[];
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

export async function planBackup(
  context: AgentContext,
  sources: readonly DataSource[],
  requested: BackupKind | undefined,
): Promise<BackupPlan> {
  const { agent } = context.config;
  const now = new Date();
  const calendar = hostCalendar(context.config, readHostIdentity());
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
  const { config } = context;
  const settings = duplicitySettings(context, source.kind);
  const duplicity = openDuplicity(context, source.kind);
  let decision: SourcePlan['decision'];
  // Unknown when the target cannot be read: the plan then shows every retention call a full may make.
  let retention: RetentionPlan = { removeOldChains: true, cleanup: true, reason: 'the target could not be read' };
  try {
    // A missing directory is created by a real run and starts a chain, which is what the plan shows.
    const { status, directoryExists } = await duplicity.chainStatusIfPresent();
    const { heal } = directoryExists
      ? await chainHeal(
          context.runner,
          settings,
          new StagingArea(config.agent.staging_dir, source.kind).current,
          targetDeadline(config, `checking the ${source.kind} chain on the target`),
        )
      : { heal: undefined };
    decision = decideKind({
      status,
      now,
      fullDay,
      timezone: config.agent.timezone,
      maxFullAgeMs: config.agent.max_full_age,
      requested,
      unextendable: heal,
    });
    retention = planRetention(status, config.agent.keep_full);
  } catch (error) {
    decision = { kind: 'unknown', reason: `cannot read the target: ${errorMessage(error)}` };
  }
  const staged = new StagingArea(config.agent.staging_dir, source.kind).current;
  const kind = decision.kind === 'unknown' ? (requested ?? 'incremental') : decision.kind;
  const afterFull = kind === 'full';
  return {
    source: source.kind,
    decision,
    commands: [
      ...source.dumpCommands(join(config.agent.staging_dir, `.${source.kind}.new`)),
      { argv: backupCommand(settings, kind, staged) },
      ...(afterFull && retention.removeOldChains
        ? [{ argv: removeAllButNFullCommand(settings, config.agent.keep_full) }]
        : []),
      ...(afterFull && retention.cleanup ? [{ argv: cleanupCommand(settings) }] : []),
    ],
  };
}
