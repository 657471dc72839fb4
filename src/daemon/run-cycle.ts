// One run of the daemon, exactly what `backup-agent run` does (same runBackup, lock and pings), with
// every way it can end turned into a value the daemon records: outcomes per source, a failure
// before any source ran, a skip because someone else holds the lock, or an interruption.
import { runBackup } from '../actions/backup.js';
import { createContext, enabledSources } from '../context/context.js';
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { type SourceKind, type SourceOutcome } from '../domain.js';
import { AgentError, InterruptedError, errorMessage } from '../errors.js';
import { type RecentLogLines, pingedRun } from '../notify/ping.js';
import type { Logger } from '../report/logger.js';
import { LockBusyError } from '../system/lock.js';
import { type Activity, ActivityRunner } from './activity.js';
import {
  type AgentState,
  type RunWindow,
  type Transitions,
  recordOutcomes,
  recordRunWithoutOutcome,
  recordStartFailure,
} from '../history/state.js';

export interface RunRequest {
  /** Names the lock holder and appears in the state and the mails. */
  readonly trigger: string;
  /** Only these sources (catch-up of the uncovered ones); undefined: every enabled source. */
  readonly sources?: readonly SourceKind[];
}

export type RunEnd =
  | { readonly result: 'outcomes'; readonly outcomes: readonly SourceOutcome[] }
  | { readonly result: 'start-failure'; readonly sources: readonly SourceKind[]; readonly error: string }
  | { readonly result: 'skipped'; readonly reason: string }
  | { readonly result: 'interrupted'; readonly reason: string };

export async function executeRun(
  config: Config,
  logger: Logger,
  cancel: AbortSignal,
  activity: Activity,
  request: RunRequest,
  logs: RecentLogLines,
): Promise<RunEnd> {
  const kinds = enabledSourceKinds(config).filter(
    (kind) => request.sources === undefined || request.sources.includes(kind),
  );
  if (kinds.length === 0) return { result: 'skipped', reason: 'none of the requested sources is enabled any more' };
  try {
    const summary = await pingedRun(config.notify, logger, cancel, logs, async () => {
      const sources = await enabledSources(config, kinds);
      const base = await createContext(config, logger, cancel);
      // The same secrets as the context's own runner masks.
      const context = { ...base, runner: new ActivityRunner(logger, cancel, [base.passphrase], activity) };
      return runBackup(context, { sources, trigger: request.trigger });
    });
    return { result: 'outcomes', outcomes: summary.outcomes };
  } catch (error) {
    // "restore by pid 812 in progress, …": the journal says why this slot uploaded nothing.
    if (error instanceof LockBusyError) return { result: 'skipped', reason: error.activity };
    if (error instanceof InterruptedError || cancel.aborted) {
      return { result: 'interrupted', reason: `stopped by ${String(cancel.reason ?? 'a signal')}` };
    }
    if (!(error instanceof AgentError)) logger.error({ err: error }, 'unexpected error before the backup started');
    const hint = error instanceof AgentError && error.hint !== undefined ? ` (${error.hint})` : '';
    return { result: 'start-failure', sources: kinds, error: `${errorMessage(error)}${hint}` };
  }
}

/** The state after a run ended; transitions are null for a run without outcomes (skipped, interrupted). */
export function recordRunEnd(
  state: AgentState,
  window: RunWindow,
  end: RunEnd,
): { state: AgentState; transitions: Transitions | null } {
  switch (end.result) {
    case 'skipped':
    case 'interrupted':
      return { state: recordRunWithoutOutcome(state, window, end.result, end.reason), transitions: null };
    case 'start-failure':
      return recordStartFailure(state, window, end.sources, end.error);
    case 'outcomes':
      return recordOutcomes(state, window, end.outcomes);
  }
}
