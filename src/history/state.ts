// The daemon's memory across restarts: state.json holds the last run and, per source, the last
// run, the last success and the newest full. Catch-up, SLA checks, recovery mails, metrics and
// `backup-agent status` all read it. It is replaced atomically after every change, so a reader
// (or a daemon killed mid-write) sees the old or the new file, never half of one.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { type HealNotice, type SourceKind, type SourceOutcome } from '../domain.js';
import { writeFileAtomic } from '../system/atomic-write.js';

const timestamp = z.iso.datetime({ offset: true }).transform((text) => new Date(text));

const sourceRunSchema = z.object({
  startedAt: timestamp,
  finishedAt: timestamp,
  trigger: z.string(),
  result: z.enum(['ok', 'failed']),
  kind: z.enum(['full', 'incremental']).nullable(),
  /** Where a failed run stopped: dump, upload, retention, resume, or start (before any source ran). */
  stage: z.string().nullable(),
  error: z.string().nullable(),
  bytesDumped: z.number(),
  bytesUploaded: z.number().nullable(),
  durationMs: z.number(),
});

const sourceStateSchema = z.object({
  lastRun: sourceRunSchema.nullable(),
  lastSuccess: sourceRunSchema.nullable(),
  /** Start of the newest successful full backup. */
  lastFull: timestamp.nullable(),
  /** Sets in the newest chain (the full and its incrementals) as far as this host knows; null: unknown. */
  chainLength: z.number().int().nullable(),
  /** Start of the first failed run of the current failure streak: the next success is a recovery. */
  failingSince: timestamp.nullable(),
  /** The latest fault a run healed by itself (the newest of its notices); files before it lack the key. */
  lastHeal: z
    .object({
      at: timestamp,
      kind: z.enum(['broken-chain', 'damaged-cache', 'staging-moved']),
      reason: z.string(),
    })
    .nullable()
    .default(null),
  /**
   * Bytes dumped by the success before lastSuccess: the metrics compare the two, so that a dump that
   * silently lost a table shows as a shrink. Files before it lack the key; null: no such success.
   */
  previousSuccessBytesDumped: z.number().nullable().default(null),
});

const runRecordSchema = z.object({
  startedAt: timestamp,
  finishedAt: timestamp,
  trigger: z.string(),
  result: z.enum(['ok', 'failed', 'skipped', 'interrupted']),
  /** Why a run was skipped or interrupted, or what failed before any source ran. */
  reason: z.string().nullable(),
  /** The schedule slot the run was for; null for runs not tied to a slot. */
  slot: timestamp.nullable(),
});

const breachSchema = z.object({ since: timestamp, detail: z.string() });

const stateSchema = z.object({
  version: z.literal(1),
  /** When this host's daemon first wrote the file: the start of what it can vouch for. */
  createdAt: timestamp,
  lastRun: runRecordSchema.nullable(),
  /** The catch-up last attempted, so that a daemon restarting in a loop does not start one each time. */
  catchUp: z.object({ slot: timestamp, startedAt: timestamp }).nullable(),
  sources: z.record(z.string(), sourceStateSchema),
  /** SLA breaches already alerted, by key: alert once when one opens and once when it closes. */
  slaBreaches: z.record(z.string(), breachSchema),
});

export type SourceRun = z.output<typeof sourceRunSchema>;
export type SourceState = z.output<typeof sourceStateSchema>;
export type RunRecord = z.output<typeof runRecordSchema>;
export type AgentState = z.output<typeof stateSchema>;

export class StateFileError extends Error {
  override readonly name = 'StateFileError';
}

export function emptyState(now: Date): AgentState {
  return { version: 1, createdAt: now, lastRun: null, catchUp: null, sources: {}, slaBreaches: {} };
}

export function emptySourceState(): SourceState {
  return {
    lastRun: null,
    lastSuccess: null,
    lastFull: null,
    chainLength: null,
    failingSince: null,
    lastHeal: null,
    previousSuccessBytesDumped: null,
  };
}

/** The state in the file; null when there is no file yet. Throws StateFileError for a file that is not a valid state. */
export async function readState(file: string): Promise<AgentState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateFileError(`cannot read the state file ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(`the state file ${file} is not JSON: ${(error as Error).message}`);
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new StateFileError(`the state file ${file} is not a valid state: ${where}`);
  }
  return parsed.data;
}

export async function writeState(file: string, state: AgentState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}

export interface RunWindow {
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly trigger: string;
  readonly slot: Date | null;
}

/** Sources whose run failed this time, those whose run succeeded after a failure streak, and the faults it healed. */
export interface Transitions {
  readonly failed: readonly SourceKind[];
  readonly recovered: readonly { readonly source: SourceKind; readonly failingSince: Date }[];
  /** Each source whose run this time healed a fault, with its notices: mailed once, for this run only. */
  readonly healed: readonly Healed[];
}

export interface Healed {
  readonly source: SourceKind;
  readonly notices: readonly HealNotice[];
}

/** The state after a run that produced an outcome per source. */
export function recordOutcomes(
  state: AgentState,
  run: RunWindow,
  outcomes: readonly SourceOutcome[],
): { state: AgentState; transitions: Transitions } {
  const healed = outcomes.flatMap((outcome): Healed[] =>
    outcome.result === 'ok' && outcome.notices !== undefined && outcome.notices.length > 0
      ? [{ source: outcome.source, notices: outcome.notices }]
      : [],
  );
  const recorded = applyRecords(
    state,
    run,
    outcomes.map((outcome) => ({
      source: outcome.source,
      startedAt: run.startedAt,
      finishedAt: new Date(run.startedAt.getTime() + outcome.durationMs),
      trigger: run.trigger,
      result: outcome.result,
      kind: outcome.result === 'ok' ? outcome.kind : null,
      stage: outcome.result === 'failed' ? outcome.stage : null,
      error: outcome.result === 'failed' ? outcome.error : null,
      bytesDumped: outcome.bytesDumped,
      bytesUploaded: outcome.result === 'ok' ? outcome.bytesUploaded : null,
      durationMs: outcome.durationMs,
    })),
    null,
  );
  const sources = { ...recorded.state.sources };
  for (const { source, notices } of healed) {
    const latest = notices.at(-1);
    const entry = sources[source];
    if (latest !== undefined && entry !== undefined) {
      sources[source] = { ...entry, lastHeal: { at: run.startedAt, kind: latest.kind, reason: latest.reason } };
    }
  }
  return { state: { ...recorded.state, sources }, transitions: { ...recorded.transitions, healed } };
}

/** The state after a run that failed before any source ran (no duplicity, unreadable passphrase …). */
export function recordStartFailure(
  state: AgentState,
  run: RunWindow,
  sources: readonly SourceKind[],
  error: string,
): { state: AgentState; transitions: Transitions } {
  const durationMs = run.finishedAt.getTime() - run.startedAt.getTime();
  return applyRecords(
    state,
    run,
    sources.map((source) => ({
      source,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      trigger: run.trigger,
      result: 'failed',
      kind: null,
      stage: 'start',
      error,
      bytesDumped: 0,
      bytesUploaded: null,
      durationMs,
    })),
    error,
  );
}

function applyRecords(
  state: AgentState,
  run: RunWindow,
  records: readonly (SourceRun & { readonly source: SourceKind })[],
  reason: string | null,
): { state: AgentState; transitions: Transitions } {
  const sources = { ...state.sources };
  const failed: SourceKind[] = [];
  const recovered: { source: SourceKind; failingSince: Date }[] = [];
  for (const { source, ...record } of records) {
    const previous = sources[source] ?? emptySourceState();
    if (record.result === 'ok') {
      if (previous.failingSince !== null) recovered.push({ source, failingSince: previous.failingSince });
      const full = record.kind === 'full';
      sources[source] = {
        lastRun: record,
        lastSuccess: record,
        lastFull: full ? record.startedAt : previous.lastFull,
        chainLength: full ? 1 : previous.chainLength === null ? null : previous.chainLength + 1,
        failingSince: null,
        lastHeal: previous.lastHeal,
        previousSuccessBytesDumped: previous.lastSuccess?.bytesDumped ?? null,
      };
    } else {
      failed.push(source);
      sources[source] = { ...previous, lastRun: record, failingSince: previous.failingSince ?? record.startedAt };
    }
  }
  const result = failed.length === 0 ? 'ok' : 'failed';
  return {
    state: { ...state, sources, lastRun: { ...run, result, reason } },
    transitions: { failed, recovered, healed: [] },
  };
}

/** A run that produced no outcome: skipped (lock held, previous run still going) or interrupted. */
export function recordRunWithoutOutcome(
  state: AgentState,
  run: RunWindow,
  result: 'skipped' | 'interrupted',
  reason: string,
): AgentState {
  return { ...state, lastRun: { ...run, result, reason } };
}

/** The per-source records of the run started at `startedAt`, i.e. the sources it backed up. */
export function recordsOfRun(state: AgentState, startedAt: Date): (SourceRun & { readonly source: SourceKind })[] {
  return Object.entries(state.sources).flatMap(([source, record]) => {
    const lastRun = record?.lastRun ?? null;
    return lastRun !== null && lastRun.startedAt.getTime() === startedAt.getTime() ? [{ source, ...lastRun }] : [];
  });
}
