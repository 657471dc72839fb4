// The text of every alert mail, pure: what happened in, subject and body out. A failure mail is
// read by someone woken at night, so its subject names host, source and cause, and its body says
// what was NOT affected before the log lines.
import type { SourceKind } from '../domain.js';
import type { AlertedBreach, Breach } from '../history/sla.js';
import type { Healed, SourceRun } from '../history/state.js';
import { formatDuration } from '../report/format.js';
import { formatBytes } from '../report/format.js';
import type { MailMessage } from './mail.js';

export type SourceResult = SourceRun & { readonly source: SourceKind };

export interface RunReport {
  readonly host: string;
  readonly trigger: string;
  readonly results: readonly SourceResult[];
  readonly logLines: readonly string[];
  readonly next: Date | null;
  readonly show: (date: Date) => string;
}

const SUBJECT_CAUSE_LENGTH = 100;

export function failureMail(report: RunReport): MailMessage {
  const failed = report.results.filter((result) => result.result === 'failed');
  const first = failed[0];
  const cause = first === undefined ? 'unknown cause' : shorten(firstLine(first.error ?? ''), SUBJECT_CAUSE_LENGTH);
  const stages = [...new Set(failed.map((result) => result.stage ?? 'unknown'))].join(', ');
  const subject = `[backup-agent] ${report.host}: ${failed.map((result) => result.source).join(', ')} backup FAILED (${stages}): ${cause}`;
  const lines = [`A backup run on ${report.host} failed (${report.trigger}).`, '', 'FAILED'];
  for (const result of failed) {
    lines.push(
      `  ${result.source}: during ${result.stage ?? 'unknown stage'}, after ${formatDuration(result.durationMs)}`,
      ...indent(result.error ?? '', '    '),
    );
  }
  lines.push('', 'NOT AFFECTED');
  for (const result of report.results) {
    lines.push(`  ${result.result === 'ok' ? successText(result) : untouchedText(result)}`);
  }
  lines.push(
    '',
    `Last log lines of ${report.host}:`,
    ...report.logLines.map((line) => `  ${line}`),
    '',
    footer(report),
  );
  return { subject, text: `${lines.join('\n')}\n` };
}

export function recoveryMail(
  report: RunReport,
  recovered: readonly { source: SourceKind; failingSince: Date }[],
): MailMessage {
  const names = recovered.map((entry) => entry.source).join(', ');
  const lines = [`Backups on ${report.host} work again (${report.trigger}).`, ''];
  for (const entry of recovered) {
    const result = report.results.find((candidate) => candidate.source === entry.source);
    lines.push(
      `  ${result === undefined ? entry.source : successText(result)}; failing since ${report.show(entry.failingSince)}`,
    );
  }
  lines.push('', footer(report));
  return { subject: `[backup-agent] ${report.host}: ${names} backup recovered`, text: `${lines.join('\n')}\n` };
}

/**
 * Sent for the run that healed a fault (whatever notify.on says): the backups are fine again, but
 * someone should know the target or the cache was damaged, or that a full was taken out of turn.
 */
export function healMail(report: RunReport, healed: readonly Healed[]): MailMessage {
  const kinds = [...new Set(healed.flatMap((entry) => entry.notices.map((notice) => HEAL_TITLES[notice.kind])))];
  const lines = [`A backup run on ${report.host} (${report.trigger}) got past a fault by itself.`, ''];
  for (const entry of healed) {
    const result = report.results.find((candidate) => candidate.source === entry.source);
    lines.push(`  ${result === undefined ? entry.source : successText(result)}`);
    for (const notice of entry.notices) lines.push(...indent(`${HEAL_TITLES[notice.kind]}: ${notice.reason}`, '    '));
  }
  lines.push(
    '',
    'This mail is sent once, for this run; backup-agent status shows the latest such notice.',
    '',
    footer(report),
  );
  const names = healed.map((entry) => entry.source).join(', ');
  return {
    subject: `[backup-agent] ${report.host}: ${names} backup OK after self-healing (${kinds.join(', ')})`,
    text: `${lines.join('\n')}\n`,
  };
}

const HEAL_TITLES: Record<Healed['notices'][number]['kind'], string> = {
  'broken-chain': 'broken chain, new full taken',
  'damaged-cache': 'damaged cache, moved aside and rebuilt',
  'staging-moved': 'staging path changed, new full taken',
};

export function successMail(report: RunReport): MailMessage {
  const kinds = report.results.map((result) => `${result.source} ${result.kind ?? ''}`.trim()).join(', ');
  const lines = [`Backup run on ${report.host} succeeded (${report.trigger}).`, ''];
  for (const result of report.results) lines.push(`  ${successText(result)}`);
  lines.push('', footer(report));
  return { subject: `[backup-agent] ${report.host}: backup OK (${kinds})`, text: `${lines.join('\n')}\n` };
}

export function breachMail(host: string, breach: Breach): MailMessage {
  const what = breach.kind === 'rpo' ? 'agent.rpo' : 'agent.deadline';
  return {
    subject: `[backup-agent] ${host}: SLA BREACH (${breach.kind}) ${breach.detail}`,
    text:
      `${breach.detail}.\n\nThe promise in ${what} is broken until a backup of ${breach.source} succeeds. ` +
      `This mail is sent once; another follows when the breach is over.\n\n` +
      `See: backup-agent status; journalctl -u backup-agent\n`,
  };
}

export function breachOverMail(
  host: string,
  key: string,
  breach: AlertedBreach,
  show: (date: Date) => string,
): MailMessage {
  return {
    subject: `[backup-agent] ${host}: SLA breach over (${key})`,
    text: `The breach alerted at ${show(breach.since)} is over:\n  ${breach.detail}\n`,
  };
}

function successText(result: SourceResult): string {
  const uploaded = result.bytesUploaded === null ? '' : `, ${formatBytes(result.bytesUploaded)} uploaded`;
  return `${result.source}: ${result.kind ?? ''} backup OK, ${formatBytes(result.bytesDumped)} dumped${uploaded} in ${formatDuration(result.durationMs)}`;
}

/** What a failure at this stage leaves intact; the pipeline swaps dumps and sets only when complete. */
function untouchedText(result: SourceResult): string {
  switch (result.stage) {
    case 'start':
      return `${result.source}: nothing was dumped or uploaded; the staged dump and the backups on the target are untouched`;
    case 'dump':
      return `${result.source}: nothing was uploaded; the previous dump in staging and the backups on the target are untouched`;
    case 'upload':
    case 'resume':
      return `${result.source}: the backups already on the target are untouched; the staged dump is kept and the next run uploads it again`;
    case 'retention':
      return `${result.source}: the upload finished but retention did not complete: chains due for removal may still be on the target, beyond agent.keep_full`;
    default:
      return `${result.source}: the backups already on the target are untouched`;
  }
}

function footer(report: RunReport): string {
  const next = report.next === null ? 'none scheduled' : report.show(report.next);
  return `Next scheduled run: ${next}\nDetails: backup-agent status; journalctl -u backup-agent`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** ASCII on purpose: a subject with non-ASCII characters is MIME-encoded, which some filters and tools read badly. */
function shorten(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 3)}...`;
}

function indent(text: string, prefix: string): string[] {
  return text.split('\n').map((line) => `${prefix}${line}`);
}
