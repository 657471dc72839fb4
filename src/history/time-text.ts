// Times and durations as the operator reads them in STATUS=, mails and `backup-agent status`:
// wall-clock time in the schedule's time zone, because that is how the schedule is written.

/**
 * "2026-11-24 23:15 UTC": seconds only when not zero (schedules with a seconds field). 'short' is
 * "2026-11-24 23:15", for a time next to one that already names the zone.
 */
export function formatTime(date: Date, timeZone: string, style: 'full' | 'short' = 'full'): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(date);
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  const day = `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}`;
  if (style === 'short') return day;
  return `${day}${part('second') === '00' ? '' : `:${part('second')}`} ${part('timeZoneName')}`;
}

/** Ages for SLA texts: "40 s", "12 min", "27.0 h", "3.2 d". */
export function formatAge(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  const hours = ms / 3_600_000;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
}
