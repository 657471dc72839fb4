// Which backup set a restore uses. duplicity itself silently falls back to the oldest full when the
// requested time is before every backup (rc 0, seen in 0.8 and 3.x), so the agent resolves the time to one
// set first and refuses a time no backup covers.
import type { BackupSet, ChainStatus } from '../domain.js';
import { BackupFailedError, UsageError } from '../errors.js';

/** The --time option: 'now' (the latest backup), an ISO date/time, or an age like 3D or 1h30m. */
export interface RestoreTime {
  readonly text: string;
  readonly at: Date;
}

// duplicity's interval units (duplicity man page, TIME FORMATS): M is 30 days, Y 365 days.
const UNIT_SECONDS: Readonly<Record<string, number>> = {
  s: 1,
  m: 60,
  h: 3_600,
  D: 86_400,
  W: 604_800,
  M: 2_592_000,
  Y: 31_536_000,
};

const FORMS = 'now, an ISO date or date-time (2026-11-20, 2026-11-20T23:15:00Z), or an age such as 3D, 12h or 1W2D';

export function parseRestoreTime(text: string, now: Date = new Date()): RestoreTime {
  if (text === 'now') return { text, at: now };
  if (/^(\d+[smhDWMY])+$/.test(text)) {
    let seconds = 0;
    for (const [, count, unit] of text.matchAll(/(\d+)([smhDWMY])/g)) seconds += Number(count) * UNIT_SECONDS[unit!]!;
    return { text, at: new Date(now.getTime() - seconds * 1000) };
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    // A bare date means the end of that day: "restore the 20th" wants that day's backup.
    const at = new Date(text.length === 10 ? `${text}T23:59:59` : text.replace(' ', 'T'));
    if (!Number.isNaN(at.getTime())) return { text, at };
  }
  throw new UsageError(`cannot read --time "${text}"`, `use ${FORMS}`);
}

/** The newest backup set at or before the requested time. */
export function chooseBackupSet(status: ChainStatus, time: RestoreTime, url: string): BackupSet {
  const sets = status.chains.flatMap((chain) => chain.sets).sort((a, b) => a.time.getTime() - b.time.getTime());
  const oldest = sets[0];
  if (oldest === undefined) {
    throw new BackupFailedError(`there is no backup at ${url}`, 'check target.url, or run a backup first');
  }
  const chosen = sets.filter((set) => set.time.getTime() <= time.at.getTime()).at(-1);
  if (chosen === undefined) {
    throw new BackupFailedError(
      `there is no backup at or before ${time.at.toISOString()} (--time ${time.text}); the oldest is from ${oldest.time.toISOString()}`,
      'pick a later --time; backup-agent list shows every restore point',
    );
  }
  return chosen;
}
