// The one line systemd shows as "Status:" in `systemctl status backup-agent`: what the daemon does
// now, when it runs next and how the last run ended, e.g.
//   idle · next 2026-11-24 23:15 UTC (incremental) · last OK 2026-11-23 23:19 full 1.2 GiB in 4m12s
//   running mysql dump, influxdb full upload (3m10s)
//   idle · next … · last run FAILED: influxdb: influxdb is not reachable at 127.0.0.1:8088 …
import type { BackupKind, SourceKind } from '../domain.js';
import { formatBytes } from '../report/format.js';
import type { Breach } from '../history/sla.js';
import { type AgentState, recordsOfRun } from '../history/state.js';
import { formatDuration } from '../report/format.js';
import { formatTime } from '../history/time-text.js';

export interface NextRun {
  readonly at: Date;
  readonly kinds: readonly { readonly source: SourceKind; readonly kind: BackupKind }[];
}

export interface StatusLineInput {
  readonly now: Date;
  readonly timeZone: string;
  readonly running: { readonly startedAt: Date; readonly steps: readonly string[] } | null;
  readonly next: NextRun | null;
  readonly state: AgentState;
  readonly breaches: readonly Breach[];
  /** Set while the newest SIGHUP brought an invalid configuration. */
  readonly reloadProblem: string | null;
}

const CAUSE_LENGTH = 120;

export function statusLine(input: StatusLineInput): string {
  const { running, now, timeZone } = input;
  if (running !== null) {
    const what = running.steps.length === 0 ? 'backup' : running.steps.join(', ');
    return `running ${what} (${formatDuration(now.getTime() - running.startedAt.getTime())})`;
  }
  const parts = ['idle'];
  if (input.next !== null) parts.push(`next ${formatTime(input.next.at, timeZone)} (${kindsText(input.next.kinds)})`);
  parts.push(lastRunText(input.state, timeZone));
  if (input.breaches.length > 0) {
    parts.push(`SLA BREACH: ${input.breaches.map((breach) => `${breach.source} ${breach.kind}`).join(', ')}`);
  }
  if (input.reloadProblem !== null) parts.push('config reload FAILED, previous configuration in use');
  return parts.join(' · ');
}

function kindsText(kinds: NextRun['kinds']): string {
  const distinct = new Set(kinds.map((entry) => entry.kind));
  if (distinct.size <= 1) return [...distinct][0] ?? 'no source';
  return kinds.map((entry) => `${entry.source} ${entry.kind}`).join(', ');
}

function lastRunText(state: AgentState, timeZone: string): string {
  const run = state.lastRun;
  if (run === null) return 'no run yet';
  switch (run.result) {
    case 'skipped':
      return `last run SKIPPED: ${shorten(run.reason ?? 'unknown reason')}`;
    case 'interrupted':
      return `last run INTERRUPTED at ${formatTime(run.finishedAt, timeZone, 'short')}`;
    case 'failed': {
      const failed = recordsOfRun(state, run.startedAt).filter((record) => record.result === 'failed');
      if (failed.length === 0) return `last run FAILED: ${shorten(run.reason ?? 'unknown cause')}`;
      return `last run FAILED: ${failed.map((record) => `${record.source}: ${shorten(record.error ?? '')}`).join('; ')}`;
    }
    case 'ok': {
      const records = recordsOfRun(state, run.startedAt);
      const kinds = [...new Set(records.map((record) => record.kind ?? 'unknown'))].join('+');
      const bytes = records.reduce((sum, record) => sum + record.bytesDumped, 0);
      const duration = formatDuration(run.finishedAt.getTime() - run.startedAt.getTime());
      return `last OK ${formatTime(run.finishedAt, timeZone, 'short')} ${kinds} ${formatBytes(bytes)} in ${duration}`;
    }
  }
}

function shorten(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length <= CAUSE_LENGTH ? line : `${line.slice(0, CAUSE_LENGTH - 1)}…`;
}
