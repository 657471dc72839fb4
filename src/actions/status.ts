// `backup-agent status`: per source, what the state file knows of the daemon's and manual runs
// (last run, last success, newest full and chain length, deadline and RPO) and when the next run
// comes (this host's slot within agent.spread, and its full day) with its expected kind; with --remote, also what duplicity says about the chain on the target. Returns data only;
// cli/output.ts prints it as a table or as JSON. Healthy means: every enabled source's last run
// succeeded and no SLA promise is broken — what Nagios or cron needs to know.
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { nextRun } from '../history/next-run.js';
import { type HostIdentity, hostCalendar, readHostIdentity } from '../history/spread.js';
import { type DeadlineStatus, type RpoStatus, evaluateSla } from '../history/sla.js';
import {
  type AgentState,
  type RunRecord,
  type SourceRun,
  type SourceState,
  emptyState,
  readState,
} from '../history/state.js';
import { formatTime } from '../history/time-text.js';
import type { BackupKind, ChainStatus, SourceKind } from '../domain.js';
import { newestFull } from '../duplicity/collection-status.js';
import { chainStatusFromListing } from '../duplicity/listing-chains.js';
import type { HostFullDay } from '../plan/decide.js';
import { errorMessage } from '../errors.js';
import type { AgentContext } from '../context/context.js';
import { listTarget } from './run-plan.js';

export type SourceHealth = 'ok' | 'failing' | 'breach' | 'unknown';

export interface TargetChain {
  readonly newestFull: Date | null;
  /** Sets in the chain that holds the newest full: the full and its incrementals. */
  readonly chainLength: number;
  readonly chains: number;
}

export interface SourceStatus {
  readonly source: SourceKind;
  readonly health: SourceHealth;
  readonly lastRun: SourceRun | null;
  readonly lastSuccess: SourceRun | null;
  readonly newestFull: Date | null;
  readonly chainLength: number | null;
  /** The latest fault a run healed by itself (broken chain, damaged cache, moved staging_dir). */
  readonly lastHeal: SourceState['lastHeal'];
  /** --remote only: the chain on the target, or why it could not be read. */
  readonly target: TargetChain | { readonly error: string } | null;
  readonly deadline: DeadlineStatus;
  readonly rpo: RpoStatus;
  readonly nextKind: BackupKind | null;
  readonly nextKindReason: string | null;
}

export interface StatusReport {
  readonly version: 1;
  readonly host: string;
  readonly generatedAt: Date;
  readonly healthy: boolean;
  readonly stateFile: string;
  /** Why the state file gave nothing (missing, unreadable); null when it was read. */
  readonly stateProblem: string | null;
  readonly timezone: string;
  readonly schedule: string;
  /** agent.spread and this host's offset in it: nextRun is the schedule's time plus the offset. */
  readonly spread: { readonly spreadMs: number; readonly offsetMs: number };
  readonly fullDay: HostFullDay;
  readonly lastRun: RunRecord | null;
  readonly nextRun: Date | null;
  readonly sources: readonly SourceStatus[];
}

export interface StatusOptions {
  /** Ask the target too (--remote); null: the state file only. */
  readonly remote: AgentContext | null;
  readonly now?: Date;
}

export async function collectStatus(config: Config, options: StatusOptions): Promise<StatusReport> {
  const now = options.now ?? new Date();
  const file = config.agent.state_file;
  let state: AgentState | null = null;
  let stateProblem: string | null = null;
  try {
    state = await readState(file);
    if (state === null) stateProblem = `there is no state file ${file}: no backup has run on this host yet`;
  } catch (error) {
    stateProblem = errorMessage(error);
  }
  const sources = enabledSourceKinds(config);
  const remote = options.remote === null ? null : await readTargets(options.remote, sources);
  return buildReport(config, {
    state,
    stateProblem,
    targets: remote?.targets ?? null,
    chains: remote?.chains ?? {},
    now,
    identity: readHostIdentity(),
  });
}

interface ReportInput {
  readonly state: AgentState | null;
  readonly stateProblem: string | null;
  readonly targets: Partial<Record<SourceKind, TargetChain | { readonly error: string }>> | null;
  /** The target's chains, when read: the next kind is then decided from them, as a run would. */
  readonly chains: Partial<Record<SourceKind, ChainStatus>>;
  readonly now: Date;
  readonly identity: HostIdentity;
}

/** Pure: the report from the state, the target's chains, the host's identity and the clock. */
export function buildReport(config: Config, input: ReportInput): StatusReport {
  const { agent } = config;
  const calendar = hostCalendar(config, input.identity);
  const state = input.state ?? emptyState(input.now);
  const sources = enabledSourceKinds(config);
  const sla = evaluateSla({
    state,
    sources,
    now: input.now,
    rpoMs: agent.rpo,
    deadline: agent.deadline === null ? null : calendar.schedule.lastDeadline(agent.deadline, input.now),
    show: (date) => formatTime(date, agent.timezone),
  });
  const next = nextRun(config, calendar, state, sources, input.now, input.chains);
  const statuses = sla.sources.map((judged): SourceStatus => {
    const entry = state.sources[judged.source];
    const target = input.targets?.[judged.source] ?? null;
    const expected = next?.kinds.find((kind) => kind.source === judged.source);
    const breached = judged.deadline.state === 'missed' || judged.rpo.breached;
    const health: SourceHealth =
      input.state === null ? 'unknown' : entry?.lastRun?.result === 'failed' ? 'failing' : breached ? 'breach' : 'ok';
    return {
      source: judged.source,
      health,
      lastRun: entry?.lastRun ?? null,
      lastSuccess: entry?.lastSuccess ?? null,
      newestFull: entry?.lastFull ?? null,
      chainLength: entry?.chainLength ?? null,
      lastHeal: entry?.lastHeal ?? null,
      target,
      deadline: judged.deadline,
      rpo: judged.rpo,
      nextKind: expected?.kind ?? null,
      nextKindReason: expected?.reason ?? null,
    };
  });
  return {
    version: 1,
    host: input.identity.hostname,
    generatedAt: input.now,
    healthy: input.stateProblem === null && statuses.every((status) => status.health === 'ok'),
    stateFile: agent.state_file,
    stateProblem: input.stateProblem,
    timezone: agent.timezone,
    schedule: agent.schedule,
    spread: { spreadMs: calendar.spreadMs, offsetMs: calendar.offsetMs },
    fullDay: calendar.fullDay,
    lastRun: input.state?.lastRun ?? null,
    nextRun: next?.at ?? null,
    sources: statuses,
  };
}

async function readTargets(
  context: AgentContext,
  sources: readonly SourceKind[],
): Promise<Pick<ReportInput, 'chains'> & { targets: NonNullable<ReportInput['targets']> }> {
  const targets: NonNullable<ReportInput['targets']> = {};
  const chains: Partial<Record<SourceKind, ChainStatus>> = {};
  await Promise.all(
    sources.map(async (source) => {
      try {
        // The listing a run reads, not collection-status: no wait on the cache lock of a run in progress.
        const status = chainStatusFromListing((await listTarget(context, source)).files);
        chains[source] = status;
        targets[source] = summarizeChain(status);
      } catch (error) {
        targets[source] = { error: errorMessage(error) };
      }
    }),
  );
  return { targets, chains };
}

export function summarizeChain(status: ChainStatus): TargetChain {
  const full = newestFull(status) ?? null;
  const chain = status.chains.find((candidate) => candidate.sets.some((set) => set.time.getTime() === full?.getTime()));
  return { newestFull: full, chainLength: chain?.sets.length ?? 0, chains: status.chains.length };
}
