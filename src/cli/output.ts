// Text printers for the commands whose output is for people: the plan, the restore points, the checklist.
import type { CheckItem } from '../actions/check.js';
import type { BackupPlan } from '../actions/run-plan.js';
import type { SourceListing } from '../actions/list.js';
import type { RestoreReport } from '../actions/restore.js';
import type { DrillResult } from '../actions/verify.js';
import { seconds } from '../system/run-command.js';
import { formatBytes } from '../report/format.js';
import type { SourceStatus, StatusReport } from '../actions/status.js';
import type { DeadlineStatus } from '../history/sla.js';
import type { SourceRun } from '../history/state.js';
import { offsetText } from '../history/spread.js';
import type { HostFullDay } from '../plan/decide.js';
import { formatAge as formatHours, formatTime } from '../history/time-text.js';
import { formatDuration } from '../report/format.js';

export function formatPlan(plan: BackupPlan): string {
  const { slot } = plan;
  const lines: string[] = [
    'Dry run: nothing will be dumped, uploaded or removed.',
    `Next slot: ${slot.next === null ? 'never' : formatTime(slot.next, slot.timezone)} (${slotText(slot.schedule, slot.timezone, slot)}); full day ${fullDayLine(slot.fullDay)}.`,
  ];
  for (const source of plan.sources) {
    lines.push('', `${source.source}: ${source.decision.kind} backup (${source.decision.reason})`);
    if (source.problem !== undefined) lines.push(`  ${source.problem}`);
    for (const step of source.steps) {
      lines.push(
        `  ${step.label}:`,
        `    ${step.argv.map(quoteForDisplay).join(' ')}${step.stdoutTo === undefined ? '' : ` > ${step.stdoutTo}`}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function formatListing(listing: SourceListing): string {
  const lines = [`${listing.source}: ${listing.url}`];
  if (listing.points.length === 0) return `${lines[0]}\n  no backups on the target\n`;
  lines.push(`  ${'time (UTC)'.padEnd(20)} ${'kind'.padEnd(12)} ${'volumes'.padStart(7)} ${'size'.padStart(10)}`);
  for (const point of listing.points) {
    const time = point.time
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d{3}Z$/, '');
    lines.push(
      `  ${time.padEnd(20)} ${point.kind.padEnd(12)} ${String(point.volumes).padStart(7)} ${formatBytes(point.bytes).padStart(10)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function formatChecklist(items: readonly CheckItem[]): string {
  const mark = { ok: '[ ok ]', warn: '[warn]', fail: '[FAIL]' } as const;
  const lines = items.flatMap((item) => [
    `${mark[item.status]} ${item.name}: ${item.detail}`,
    ...(item.hint === undefined ? [] : [`       fix: ${item.hint}`]),
  ]);
  const failed = items.filter((item) => item.status === 'fail').length;
  lines.push(failed === 0 ? 'check passed: a backup can run' : `check FAILED: ${failed} problem(s)`);
  return `${lines.join('\n')}\n`;
}

/** Arguments with spaces are shown in single quotes so a reader can tell where each one ends. */
function quoteForDisplay(argument: string): string {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", "'\\''")}'`;
}

export function formatRestoreReport(report: RestoreReport): string {
  const from = report.backupTime === null ? report.dir : `the backup of ${report.backupTime.toISOString()}`;
  if (report.downloadOnly) {
    return `Downloaded ${report.source} from ${from} into ${report.dir}; every file matches MANIFEST.json.\nRestore it later with: backup-agent restore ${report.source} --from-dir ${report.dir}\n`;
  }
  const lines = [`Restored ${report.source} from ${from}.`];
  for (const database of report.databases) {
    lines.push(
      '',
      `${database.database}${database.restoredAs === database.database ? '' : ` → ${database.restoredAs}`}:`,
    );
    for (const row of database.contents) {
      lines.push(`  ${row.name.padEnd(32)} ${String(row.count).padStart(12)} ${row.unit}`);
    }
    lines.push(
      database.safetyCopy === null
        ? '  (no earlier database to save)'
        : `  previous state saved in ${database.safetyCopy}\n  undo: ${database.undo ?? ''}`,
    );
  }
  if (report.servicesRestarted.length > 0) lines.push('', `started again: ${report.servicesRestarted.join(', ')}`);
  lines.push(
    '',
    'timings:',
    ...report.steps.map((step) => `  ${step.step.padEnd(32)} ${seconds(step.ms).padStart(8)} s`),
  );
  return `${lines.join('\n')}\n`;
}

/** `status --json`: one line (for jq and line-based tools); dates ISO 8601 in UTC, durations in ms, sizes in bytes. */
export function formatStatusJson(report: StatusReport): string {
  return `${JSON.stringify(report)}\n`;
}

export function formatStatus(report: StatusReport): string {
  const show = (date: Date | null): string => (date === null ? 'never' : formatTime(date, report.timezone));
  const lines = [`backup-agent on ${report.host}: ${report.healthy ? 'healthy' : 'NOT HEALTHY'}`];
  if (report.stateProblem !== null) lines.push(`  ${report.stateProblem}`);
  const last = report.lastRun;
  if (last !== null) {
    const reason = last.reason === null ? '' : `: ${last.reason}`;
    lines.push(`last run:   ${show(last.startedAt)} ${last.result.toUpperCase()}${reason} (${last.trigger})`);
  }
  lines.push(`next run:   ${show(report.nextRun)} (${slotText(report.schedule, report.timezone, report.spread)})`);
  lines.push(`full day:   ${fullDayLine(report.fullDay)}`);
  for (const source of report.sources) {
    lines.push('', `${source.source}: ${source.health.toUpperCase()}`);
    const run = source.lastRun;
    lines.push(`  last run      ${run === null ? 'none recorded' : runText(run, show)}`);
    if (run?.result === 'failed') lines.push(`                ${run.error ?? ''}`);
    lines.push(`  last success  ${source.lastSuccess === null ? 'none recorded' : show(source.lastSuccess.startedAt)}`);
    const chain = source.chainLength === null ? '' : `, chain of ${source.chainLength} set(s)`;
    lines.push(`  newest full   ${show(source.newestFull)}${chain} (state file)`);
    if (source.lastHeal !== null) lines.push(`  last heal     ${show(source.lastHeal.at)}: ${source.lastHeal.reason}`);
    if (source.target !== null) lines.push(`  on target     ${targetText(source.target, show)}`);
    lines.push(`  deadline      ${deadlineText(source.deadline, show)}`);
    const rpo = source.rpo;
    lines.push(
      `  rpo           ${rpo.hasSuccess ? `newest backup ${formatHours(rpo.ageMs)} old` : `no backup for ${formatHours(rpo.ageMs)}`}, limit ${formatHours(rpo.limitMs)}${rpo.breached ? ' BREACHED' : ''}`,
    );
    if (source.nextKind !== null) {
      const basis = source.target === null ? ' (expected from the state file; --remote asks the target)' : '';
      lines.push(`  next run      ${source.nextKind}${basis}: ${source.nextKindReason ?? ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** 'schedule "15 23 * * *" in UTC + offset 27m12s of spread 2h00m': where this host's slot comes from. */
function slotText(schedule: string, timezone: string, spread: { spreadMs: number; offsetMs: number }): string {
  return `schedule "${schedule}" in ${timezone}, ${offsetText(spread)}`;
}

function fullDayLine(fullDay: HostFullDay): string {
  return fullDay.auto ? `${fullDay.day} (full_day = auto: chosen for this host)` : fullDay.day;
}

function runText(run: SourceRun, show: (date: Date) => string): string {
  const kind = run.kind === null ? '' : ` ${run.kind}`;
  const uploaded = run.bytesUploaded === null ? '' : `, ${formatBytes(run.bytesUploaded)} uploaded`;
  const stage = run.result === 'failed' ? ` during ${run.stage ?? '?'}` : '';
  return `${show(run.startedAt)}${kind} ${run.result === 'ok' ? 'OK' : 'FAILED'}${stage}, ${formatBytes(run.bytesDumped)} dumped${uploaded}, ${formatDuration(run.durationMs)} (${run.trigger})`;
}

function targetText(target: NonNullable<SourceStatus['target']>, show: (date: Date | null) => string): string {
  if ('error' in target) return `cannot read the chain: ${target.error.split('\n')[0] ?? ''}`;
  return `newest full ${show(target.newestFull)}, chain of ${target.chainLength} set(s), ${target.chains} chain(s)`;
}

function deadlineText(deadline: DeadlineStatus, show: (date: Date) => string): string {
  switch (deadline.state) {
    case 'none':
      return 'no slot to judge yet (or agent.deadline is empty)';
    case 'met':
      return `met: the run for ${show(deadline.slot)} finished ${show(deadline.finishedAt)}, due ${show(deadline.due)}`;
    case 'late':
      return `late: the run for ${show(deadline.slot)} finished ${show(deadline.finishedAt)}, after ${show(deadline.due)}`;
    case 'missed':
      return `MISSED: no successful run for ${show(deadline.slot)} by ${show(deadline.due)}`;
  }
}

export function formatDrill(results: readonly DrillResult[]): string {
  const now = Date.now();
  const lines = results.flatMap((result) => {
    const age =
      result.backupTime === null
        ? ''
        : `, backup of ${result.backupTime.toISOString()} (${formatHours(now - result.backupTime.getTime())} old)`;
    return [
      `${result.ok ? '[ ok ]' : '[FAIL]'} ${result.source}${age}, ${formatBytes(result.bytes)}, drill took ${seconds(result.durationMs)}s`,
      ...result.findings.map((finding) => `       ${finding}`),
    ];
  });
  return `${lines.join('\n')}\n`;
}
