// The two promises a backup host makes, judged from the state file:
// - deadline: the run of a scheduled slot has succeeded by agent.deadline (e.g. 01:00 after 23:15);
// - RPO: each source's newest successful backup is younger than agent.rpo.
// A breach is alerted once when it opens and once when it closes, however often the daemon looks;
// which breaches were alerted lives in the state file, so a restart neither repeats nor forgets one.
import type { SourceKind } from '../domain.js';
import type { DeadlineWindow, ScheduledWindow } from './schedule.js';
import type { AgentState } from './state.js';
import { formatAge } from './time-text.js';

export type DeadlineStatus =
  /** No deadline configured, or no slot since the daemon started keeping state. */
  | { readonly state: 'none' }
  | { readonly state: 'met'; readonly slot: Date; readonly due: Date; readonly finishedAt: Date }
  /** A success came, but after the deadline: history, not an open breach. */
  | { readonly state: 'late'; readonly slot: Date; readonly due: Date; readonly finishedAt: Date }
  | { readonly state: 'missed'; readonly slot: Date; readonly due: Date };

export interface RpoStatus {
  /** Age of the newest successful backup, or of the state file when there never was one. */
  readonly ageMs: number;
  readonly limitMs: number;
  readonly hasSuccess: boolean;
  readonly breached: boolean;
}

export interface SourceSla {
  readonly source: SourceKind;
  readonly deadline: DeadlineStatus;
  readonly rpo: RpoStatus;
}

export interface Breach {
  /** Stable identity of the breach, e.g. "rpo:mysql". */
  readonly key: string;
  readonly source: SourceKind;
  readonly kind: 'deadline' | 'rpo';
  readonly detail: string;
}

export interface SlaInput {
  readonly state: AgentState;
  readonly sources: readonly SourceKind[];
  readonly now: Date;
  readonly rpoMs: number;
  /** The newest slot whose deadline has passed; null without agent.deadline. */
  readonly deadline: DeadlineWindow | null;
  readonly show: (date: Date) => string;
}

export function evaluateSla(input: SlaInput): { sources: SourceSla[]; breaches: Breach[] } {
  const sources: SourceSla[] = [];
  const breaches: Breach[] = [];
  for (const source of input.sources) {
    const deadline = deadlineStatus(input, source);
    const rpo = rpoStatus(input, source);
    sources.push({ source, deadline, rpo });
    if (deadline.state === 'missed') {
      breaches.push({
        key: `deadline:${source}`,
        source,
        kind: 'deadline',
        detail: `${source}: no successful backup for the slot of ${input.show(deadline.slot)} by its deadline ${input.show(deadline.due)}`,
      });
    }
    if (rpo.breached) {
      breaches.push({
        key: `rpo:${source}`,
        source,
        kind: 'rpo',
        detail: rpo.hasSuccess
          ? `${source}: the newest successful backup is ${formatAge(rpo.ageMs)} old, more than rpo ${formatAge(rpo.limitMs)}`
          : `${source}: no successful backup in the ${formatAge(rpo.ageMs)} since the daemon started keeping state, more than rpo ${formatAge(rpo.limitMs)}`,
      });
    }
  }
  return { sources, breaches };
}

function deadlineStatus(input: SlaInput, source: SourceKind): DeadlineStatus {
  const window = input.deadline;
  // Slots before the state file existed are not this daemon's to judge.
  if (window === null || window.slot.getTime() < input.state.createdAt.getTime()) return { state: 'none' };
  const success = input.state.sources[source]?.lastSuccess ?? null;
  if (success === null || success.startedAt.getTime() < window.slot.getTime()) return { state: 'missed', ...window };
  const finishedAt = success.finishedAt;
  return { state: finishedAt.getTime() <= window.due.getTime() ? 'met' : 'late', ...window, finishedAt };
}

function rpoStatus(input: SlaInput, source: SourceKind): RpoStatus {
  const success = input.state.sources[source]?.lastSuccess ?? null;
  // The data of a backup is as old as the moment its dump started.
  const since = success?.startedAt ?? input.state.createdAt;
  const ageMs = Math.max(0, input.now.getTime() - since.getTime());
  return { ageMs, limitMs: input.rpoMs, hasSuccess: success !== null, breached: ageMs > input.rpoMs };
}

export interface AlertedBreach {
  readonly since: Date;
  readonly detail: string;
}

/** Which breaches to alert now: those that opened since the last look, and those that closed. */
export function reconcileBreaches(
  alerted: Readonly<Record<string, AlertedBreach>>,
  current: readonly Breach[],
  now: Date,
): {
  opened: Breach[];
  closed: (AlertedBreach & { key: string })[];
  alerted: Record<string, AlertedBreach>;
} {
  const next: Record<string, AlertedBreach> = {};
  const opened: Breach[] = [];
  for (const breach of current) {
    const known = alerted[breach.key];
    if (known === undefined) opened.push(breach);
    next[breach.key] = known ?? { since: now, detail: breach.detail };
  }
  const closed = Object.entries(alerted)
    .filter(([key]) => next[key] === undefined)
    .map(([key, breach]) => ({ key, ...breach }));
  return { opened, closed, alerted: next };
}

/** What a run is assumed to take when the state file knows no successful run yet. */
export const DEFAULT_RUN_ESTIMATE_MS = 30 * 60_000;

export interface RunEstimate {
  readonly ms: number;
  readonly basis: string;
  /** From a recorded run; false: the default, a guess. */
  readonly measured: boolean;
}

/** Sources run in parallel: a run takes as long as the slowest source's last success took. */
export function expectedRunTime(state: AgentState | null, sources: readonly SourceKind[]): RunEstimate {
  const longest = sources
    .flatMap((source) => {
      const success = state?.sources[source]?.lastSuccess ?? null;
      return success === null ? [] : [{ source, ms: success.durationMs }];
    })
    .sort((a, b) => b.ms - a.ms)[0];
  return longest === undefined
    ? { ms: DEFAULT_RUN_ESTIMATE_MS, basis: 'no successful run recorded yet, so the default estimate', measured: false }
    : { ms: longest.ms, basis: `the last successful ${longest.source} run`, measured: true };
}

export interface DeadlineFit {
  /** The deadline with the least room after the schedule's time. */
  readonly window: ScheduledWindow;
  /** due − (schedule + spread + run time): when negative, how far the last host of the spread misses. */
  readonly fleetMarginMs: number;
  /** The widest spread that still meets the deadline with this run time; negative: none does. */
  readonly maxSpreadMs: number;
}

/** Whether every host of a fleet with this spread can finish by the deadline; null: no deadline ahead. */
export function deadlineFit(windows: readonly ScheduledWindow[], spreadMs: number, runMs: number): DeadlineFit | null {
  const room = (window: ScheduledWindow): number => window.due.getTime() - window.scheduled.getTime();
  const tightest = windows.reduce<ScheduledWindow | null>(
    (worst, window) => (worst === null || room(window) < room(worst) ? window : worst),
    null,
  );
  if (tightest === null) return null;
  const maxSpreadMs = room(tightest) - runMs;
  return {
    window: tightest,
    fleetMarginMs: maxSpreadMs - spreadMs,
    maxSpreadMs,
  };
}
