// agent.schedule as croner evaluates it, in agent.timezone, shifted by this host's offset within
// agent.spread (spread.ts). The same object answers "when is the next slot", "which slot passed
// last" (catch-up) and "which slot's deadline passed last" (SLA), and fires the daemon's runs, so
// the daemon, `status` and the SLA check cannot disagree about the calendar.
import { Cron } from 'croner';
import { CRON_MODE } from '../config/values.js';
import type { HostFullDay } from '../plan/decide.js';

/** This host's calendar, built from the configuration and the host's identity (spread.ts). */
export interface HostCalendar {
  /** agent.schedule plus this host's offset: the slots of the daemon, catch-up, the SLA and `next run`. */
  readonly schedule: Schedule;
  readonly spreadMs: number;
  readonly offsetMs: number;
  readonly fullDay: HostFullDay;
  /** No machine-id was found: clones that share a host name share their slot. */
  readonly hostNameOnly: boolean;
}

export interface DeadlineWindow {
  /** The newest slot whose deadline has passed. */
  readonly slot: Date;
  /** The deadline of that slot: the first agent.deadline time of day after the schedule's time. */
  readonly due: Date;
}

/** A deadline and the schedule's own time (before any offset) whose run it judges. */
export interface ScheduledWindow {
  readonly scheduled: Date;
  readonly due: Date;
}

export class Schedule {
  private readonly cron: Cron;

  constructor(
    readonly pattern: string,
    readonly timeZone: string,
    /** This host's offset within agent.spread: every slot is the schedule's time plus this. */
    readonly offsetMs = 0,
  ) {
    this.cron = new Cron(pattern, { paused: true, timezone: timeZone, mode: CRON_MODE });
  }

  /** The first slot strictly after `after`. */
  next(after: Date): Date | null {
    return this.shifted(this.cron.nextRun(this.unshifted(after)));
  }

  /** The newest slot at or before `now`. */
  latestAtOrBefore(now: Date): Date | null {
    return this.shifted(this.cron.previousRuns(1, justAfter(this.unshifted(now)))[0] ?? null);
  }

  /**
   * For agent.deadline = HH:MM: the newest slot whose deadline is at or before `now`. The deadline
   * is the fleet's: it follows the schedule's time, not the slot, so a spread that pushes a slot
   * past it shows as a missed deadline (which `check` predicts) instead of moving the promise a day.
   */
  lastDeadline(deadline: string, now: Date): DeadlineWindow | null {
    const due = dailyAt(deadline, this.timeZone).previousRuns(1, justAfter(now))[0];
    // croner's previousRuns is strictly before its reference: a slot exactly at the deadline
    // belongs to the next deadline.
    const scheduled = due === undefined ? undefined : this.cron.previousRuns(1, due)[0];
    const slot = this.shifted(scheduled ?? null);
    return due === undefined || slot === null ? null : { slot, due };
  }

  /** The deadlines of the `days` days after `from`, each with the schedule's time it judges. */
  deadlinesAhead(deadline: string, from: Date, days: number): ScheduledWindow[] {
    return dailyAt(deadline, this.timeZone)
      .nextRuns(days, from)
      .flatMap((due) => {
        const scheduled = this.cron.previousRuns(1, due)[0];
        return scheduled === undefined ? [] : [{ scheduled, due }];
      });
  }

  /**
   * Calls onSlot at every slot until the returned stop() is called. Each slot is a one-off croner
   * job: croner wakes at least every 30 s and compares with the wall clock, so a clock set at boot
   * or a suspend does not shift the run, and the offset needs no timer of its own.
   */
  arm(onSlot: (slot: Date) => void): { stop(): void } {
    let job: Cron | null = null;
    const armAfter = (after: Date): void => {
      const slot = this.next(after);
      if (slot === null) return;
      job = new Cron(slot, { timezone: this.timeZone }, () => {
        // From the later of the two: a slot is never fired twice, and one missed while the event
        // loop was blocked is left to catch-up instead of firing late here.
        armAfter(new Date(Math.max(slot.getTime(), Date.now())));
        onSlot(slot);
      });
    };
    armAfter(new Date());
    return { stop: () => job?.stop() };
  }

  private shifted(scheduled: Date | null): Date | null {
    return scheduled === null ? null : new Date(scheduled.getTime() + this.offsetMs);
  }

  private unshifted(slot: Date): Date {
    return new Date(slot.getTime() - this.offsetMs);
  }
}

function dailyAt(deadline: string, timeZone: string): Cron {
  const [hour, minute] = deadline.split(':');
  return new Cron(`${Number(minute)} ${Number(hour)} * * *`, { paused: true, timezone: timeZone });
}

/** croner drops milliseconds and looks strictly before its reference: the start of the next second includes `now`. */
function justAfter(now: Date): Date {
  return new Date(Math.floor(now.getTime() / 1000) * 1000 + 1000);
}
