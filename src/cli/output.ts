// Text printers for the commands whose output is for people: the plan, the restore points, the checklist.
import type { CheckItem } from '../actions/check.js';
import type { BackupPlan } from '../actions/dry-run.js';
import type { SourceListing } from '../actions/list.js';
import { formatBytes } from '../report/format.js';

export function formatPlan(plan: BackupPlan): string {
  const lines: string[] = ['Dry run: nothing will be dumped, uploaded or removed.'];
  for (const source of plan) {
    lines.push('', `${source.source}: ${source.decision.kind} backup (${source.decision.reason})`);
    for (const command of source.commands) {
      lines.push(
        `  ${command.argv.map(quoteForDisplay).join(' ')}${command.stdoutTo === undefined ? '' : ` > ${command.stdoutTo}`}`,
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
