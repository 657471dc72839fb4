// agent.schedule as croner evaluates it, in agent.timezone. The same object answers "when is the
// next slot", "which slot passed last" (catch-up) and "which slot's deadline passed last" (SLA), so
// the daemon, `status` and the SLA check cannot disagree about the calendar.
import { Cron } from 'croner';
import { CRON_MODE } from '../config/values.js';

export interface DeadlineWindow {
  /** The newest slot whose deadline has passed. */
  readonly slot: Date;
  /** The deadline of that slot: the first agent.deadline time of day after the slot. */
  readonly due: Date;
}

export class Schedule {
  private readonly cron: Cron;

  constructor(
    readonly pattern: string,
    readonly timeZone: string,
  ) {
    this.cron = new Cron(pattern, { paused: true, timezone: timeZone, mode: CRON_MODE });
  }

  /** The first slot strictly after `after`. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }

  /** The newest slot at or before `now`. */
  latestAtOrBefore(now: Date): Date | null {
    return this.cron.previousRuns(1, justAfter(now))[0] ?? null;
  }

  /** For agent.deadline = HH:MM: the newest slot whose deadline is at or before `now`. */
  lastDeadline(deadline: string, now: Date): DeadlineWindow | null {
    const [hour, minute] = deadline.split(':');
    const daily = new Cron(`${Number(minute)} ${Number(hour)} * * *`, { paused: true, timezone: this.timeZone });
    const due = daily.previousRuns(1, justAfter(now))[0];
    // croner's previousRuns is strictly before its reference: a slot exactly at the deadline
    // belongs to the next deadline.
    const slot = due === undefined ? undefined : this.cron.previousRuns(1, due)[0];
    return due === undefined || slot === undefined ? null : { slot, due };
  }

  /** Calls onSlot at every slot until the returned stop() is called. */
  arm(onSlot: (slot: Date) => void): { stop(): void } {
    const job = new Cron(this.pattern, { timezone: this.timeZone, mode: CRON_MODE }, () => {
      onSlot(this.latestAtOrBefore(new Date()) ?? new Date());
    });
    return { stop: () => job.stop() };
  }
}

/** croner drops milliseconds and looks strictly before its reference: the start of the next second includes `now`. */
function justAfter(now: Date): Date {
  return new Date(Math.floor(now.getTime() / 1000) * 1000 + 1000);
}
