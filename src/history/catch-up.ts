// Was a scheduled slot missed while the daemon was down? Hosts are switched off or rebuilt at
// night, exactly when the schedule fires. On start the daemon looks at the newest slot that has
// passed: a source whose last success started before that slot was not backed up for it. Pure:
// the slot and the state in, the decision and the sentence for the log out.
import type { SourceKind } from '../domain.js';
import type { AgentState } from './state.js';

export type CatchUpDecision =
  | { readonly run: false; readonly reason: string }
  | { readonly run: true; readonly slot: Date; readonly sources: readonly SourceKind[]; readonly reason: string };

export interface CatchUpInput {
  /** The newest slot at or before now; null when the schedule never fired in the past. */
  readonly latestSlot: Date | null;
  /** null: there is no state file (new or rebuilt host). */
  readonly state: AgentState | null;
  readonly sources: readonly SourceKind[];
  /** How a slot is shown in the reason. */
  readonly show: (date: Date) => string;
}

export function decideCatchUp(input: CatchUpInput): CatchUpDecision {
  const { latestSlot: slot, state, sources, show } = input;
  if (slot === null) return { run: false, reason: 'the schedule has no slot in the past' };
  if (state === null) {
    return {
      run: true,
      slot,
      sources,
      reason: `there is no state file, so no record that any backup covers the slot of ${show(slot)} (new or rebuilt host)`,
    };
  }
  const uncovered = sources.filter((source) => {
    const success = state.sources[source]?.lastSuccess ?? null;
    return success === null || success.startedAt.getTime() < slot.getTime();
  });
  if (uncovered.length === 0) {
    return { run: false, reason: `every source has a successful backup since the slot of ${show(slot)}` };
  }
  if (state.catchUp !== null && state.catchUp.slot.getTime() === slot.getTime()) {
    return {
      run: false,
      reason: `a catch-up for the slot of ${show(slot)} was already started at ${show(state.catchUp.startedAt)}; the next slot will run as scheduled`,
    };
  }
  const details = uncovered.map((source) => {
    const success = state.sources[source]?.lastSuccess ?? null;
    return success === null ? `${source}: never` : `${source}: last success ${show(success.startedAt)}`;
  });
  return {
    run: true,
    slot,
    sources: uncovered,
    reason: `the slot of ${show(slot)} passed without a successful backup (${details.join(', ')})`,
  };
}
