// A host's place in its fleet's calendar: its offset within agent.spread and, with full_day = auto,
// its weekday for fulls. Without them a thousand hosts with the default schedule reach one backup
// server in the same minute (sshd refuses logins from 10 unauthenticated connections on) and send
// every full on the same night. Both are hashed from who the host is, so they stay the same across
// restarts and upgrades without being stored anywhere. systemd's FixedRandomDelay= hashes the
// machine-id alone, so cloned VMs collide; the host name joins it here, and the target URL, so that
// one host's agents for two targets differ too.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { WEEKDAYS, type Weekday } from '../config/values.js';
import type { HostFullDay } from '../plan/decide.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { formatDuration } from '../report/format.js';
import { type HostCalendar, Schedule } from './schedule.js';
import { deadlineFit, expectedRunTime } from './sla.js';
import type { AgentState } from './state.js';
import { formatAge, formatTime } from './time-text.js';

export interface HostIdentity {
  /** /etc/machine-id; null where it is missing or not set up (some containers): the host name alone then. */
  readonly machineId: string | null;
  readonly hostname: string;
}

const MACHINE_ID_FILE = '/etc/machine-id';

/**
 * Read synchronously: 33 bytes, needed where the calendar is built (the daemon's constructor, the
 * pure status report). The arguments are for tests, which build identities of hosts they are not.
 */
export function readHostIdentity(machineIdFile = MACHINE_ID_FILE, name = hostname()): HostIdentity {
  let text: string;
  try {
    text = readFileSync(machineIdFile, 'utf8').trim();
  } catch {
    return { machineId: null, hostname: name };
  }
  // machine-id(5): 32 lower-case hex digits; "uninitialized" or empty before the first boot.
  return { machineId: /^[0-9a-f]{32}$/.test(text) ? text : null, hostname: name };
}

/**
 * A number in [0, 1) from the host, the target and what it is for, the same on every run and every
 * version: changing this moves every host of every fleet. The machine-id is confidential
 * (machine-id(5)); only this digest of it is used.
 */
function hashedFraction(purpose: 'spread' | 'full_day', identity: HostIdentity, target: string): number {
  const digest = createHash('sha256')
    .update(JSON.stringify(['backup-agent', purpose, identity.machineId ?? '', identity.hostname, target]))
    .digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * This host's offset in [0, spread), in whole seconds (cron's resolution). Proportional to the
 * spread, so a wider spread keeps the fleet's order instead of shuffling it.
 */
export function spreadOffsetMs(identity: HostIdentity, target: string, spreadMs: number): number {
  return Math.floor(hashedFraction('spread', identity, target) * Math.floor(spreadMs / 1000)) * 1000;
}

export function autoFullDay(identity: HostIdentity, target: string): Weekday {
  // The index is below 7: the fraction is below 1.
  return WEEKDAYS[Math.floor(hashedFraction('full_day', identity, target) * WEEKDAYS.length)] as Weekday;
}

function hostFullDay(config: Config, identity: HostIdentity): HostFullDay {
  const day = config.agent.full_day;
  return day === 'auto'
    ? { day: autoFullDay(identity, formatRsyncUrl(config.target.url)), auto: true }
    : { day, auto: false };
}

export function hostCalendar(config: Config, identity: HostIdentity): HostCalendar {
  const { agent } = config;
  const offsetMs = spreadOffsetMs(identity, formatRsyncUrl(config.target.url), agent.spread);
  return {
    schedule: new Schedule(agent.schedule, agent.timezone, offsetMs),
    spreadMs: agent.spread,
    offsetMs,
    fullDay: hostFullDay(config, identity),
    hostNameOnly: identity.machineId === null,
  };
}

/** "offset 27m12s of spread 2h00m", or that there is none. */
export function offsetText(calendar: Pick<HostCalendar, 'spreadMs' | 'offsetMs'>): string {
  return calendar.spreadMs === 0
    ? 'no spread (agent.spread = 0)'
    : `offset ${formatDuration(calendar.offsetMs)} of spread ${formatDuration(calendar.spreadMs)}`;
}

export interface SlotJudgement {
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  readonly hint?: string;
}

/** The deadlines of a week cover every weekday a schedule may single out. */
const DEADLINE_DAYS = 7;

/**
 * `check`: this host's offset and next slot, and whether the schedule's time + the whole spread +
 * the expected run time meet agent.deadline on every day of the coming week. The whole spread, not
 * this host's offset: the same file goes to every host of the fleet, and one of them draws the end.
 */
export function judgeSlot(config: Config, calendar: HostCalendar, state: AgentState | null, now: Date): SlotJudgement {
  const { agent } = config;
  const show = (date: Date): string => formatTime(date, agent.timezone);
  const next = calendar.schedule.next(now);
  const slot = `${offsetText(calendar)}, next slot ${next === null ? 'never' : show(next)}`;
  const identity =
    calendar.hostNameOnly && (calendar.spreadMs > 0 || calendar.fullDay.auto)
      ? 'there is no machine-id (/etc/machine-id), so the host name alone chooses the slot and full day: clones with one name share them'
      : null;
  if (agent.deadline === null) return judged(identity, `${slot}; no agent.deadline to meet`);
  const run = expectedRunTime(state, enabledSourceKinds(config));
  const windows = calendar.schedule.deadlinesAhead(agent.deadline, now, DEADLINE_DAYS);
  const fit = deadlineFit(windows, calendar.spreadMs, run.ms);
  if (fit === null) return judged(identity, `${slot}; no slot ahead for agent.deadline to judge`);
  const sum = `schedule ${show(fit.window.scheduled)} + spread ${formatDuration(calendar.spreadMs)} + run time ${formatDuration(run.ms)} (${run.basis})`;
  // A guessed run time only warns (a schedule every few minutes is common before the first run);
  // a measured one, or a spread that alone leaves no room, fails.
  const certain = run.measured || fit.maxSpreadMs + run.ms < calendar.spreadMs;
  if (fit.fleetMarginMs < 0) {
    const ends = new Date(fit.window.scheduled.getTime() + calendar.spreadMs + run.ms);
    return {
      status: certain ? 'fail' : 'warn',
      detail: `${sum} ends ${show(ends)}, ${formatAge(-fit.fleetMarginMs)} after agent.deadline ${agent.deadline} (${show(fit.window.due)}); this host: ${slot}`,
      hint:
        fit.maxSpreadMs > 0
          ? `with this run time agent.spread can be at most ${formatDuration(fit.maxSpreadMs)}; or start agent.schedule earlier, or set agent.deadline later`
          : 'the run alone does not fit between agent.schedule and agent.deadline: start the schedule earlier or set the deadline later',
    };
  }
  return judged(
    identity,
    `${slot}; ${sum} ends ${formatAge(fit.fleetMarginMs)} before agent.deadline ${agent.deadline}`,
  );
}

function judged(identityProblem: string | null, detail: string): SlotJudgement {
  return identityProblem === null
    ? { status: 'ok', detail }
    : {
        status: 'warn',
        detail: `${detail}; ${identityProblem}`,
        hint: 'give the host a machine-id: systemd-machine-id-setup',
      };
}
