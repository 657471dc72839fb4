// When the daemon runs next (this host's slot, spread included) and what kind of backup each source is expected to get then. The kind
// comes from the same decideKind a run uses; the newest full is taken from the state file (or from
// the target, for `status --remote`), so "expected" can differ from the run's own decision only
// when the target changed behind the agent's back.
import { decideKind } from '../plan/decide.js';
import type { Config } from '../config/schema.js';
import { type ChainStatus, type KindDecision, type SourceKind } from '../domain.js';
import type { HostCalendar } from './schedule.js';
import type { AgentState } from './state.js';

export interface ExpectedRun {
  readonly at: Date;
  readonly kinds: readonly {
    readonly source: SourceKind;
    readonly kind: KindDecision['kind'];
    readonly reason: string;
  }[];
}

export function nextRun(
  config: Config,
  calendar: HostCalendar,
  state: AgentState,
  sources: readonly SourceKind[],
  now: Date,
  chains: Partial<Record<SourceKind, ChainStatus>> = {},
): ExpectedRun | null {
  const at = calendar.schedule.next(now);
  if (at === null) return null;
  return {
    at,
    kinds: sources.map((source) => {
      const decision = decideKind({
        status: chains[source] ?? chainFromState(state.sources[source]?.lastFull ?? null),
        now: at,
        fullDay: calendar.fullDay,
        timezone: config.agent.timezone,
        maxFullAgeMs: config.agent.max_full_age,
      });
      return { source, kind: decision.kind, reason: decision.reason };
    }),
  };
}

/** The only fact decideKind needs from a chain is its newest full. */
function chainFromState(lastFull: Date | null): ChainStatus {
  const sets = lastFull === null ? [] : [{ kind: 'full' as const, time: lastFull, volumes: 0, encrypted: true }];
  return { chains: sets.length === 0 ? [] : [{ sets, complete: true }], orphanedSets: 0, incompleteSets: 0 };
}
