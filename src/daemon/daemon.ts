// `backup-agent daemon`, what the systemd unit runs for months unattended. It fires runBackup on
// this host's slots (agent.schedule plus its offset within agent.spread), catches up a slot missed
// while the host was off, keeps state.json (shared with manual runs), the metrics file and
// systemd's STATUS= current, mails failures, recoveries and SLA breaches, reloads its configuration
// on SIGHUP (keeping the old one when the new one is invalid) and, on SIGTERM, stops the running
// backup through the shared AbortSignal, records that, and returns for exit 0.
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { ConfigError, errorMessage } from '../errors.js';
import { writeMetrics } from '../metrics/textfile.js';
import { createMailer } from '../notify/mail.js';
import type { Logger } from '../report/logger.js';
import { ensureWritableDirectory } from '../system/directories.js';
import { connectToSystemd } from '../system/sd-notify.js';
import { Activity } from './activity.js';
import { decideCatchUp } from '../history/catch-up.js';
import type { LogTail } from './log-tail.js';
import { nextRun } from '../history/next-run.js';
import { alertAboutBreaches, alertAboutRun } from '../notify/alerts.js';
import { type RunRequest, executeRun, recordRunEnd } from './run-cycle.js';
import type { HostCalendar } from '../history/schedule.js';
import { hostCalendar, offsetText, readHostIdentity } from '../history/spread.js';
import { StateStore } from '../history/state-store.js';
import { type Breach, evaluateSla, reconcileBreaches } from '../history/sla.js';
import { statusLine } from './status-line.js';
import * as stateFile from '../history/state.js';
import { formatTime } from '../history/time-text.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Receives the same log lines; their tail goes into failure mails. */
  readonly logTail: LogTail;
  /** Aborted by SIGTERM/SIGINT (main.ts): stops the daemon and the running backup. */
  readonly cancel: AbortSignal;
  /** Reads and validates the configuration file again, for SIGHUP; throws ConfigError when invalid. */
  readonly reload: () => Promise<Config>;
}

/** After a boot the database and the network come up with the daemon; let them settle first. */
const CATCH_UP_DELAY_MS = 30_000;
/** "At least hourly"; the check reads the small state file (a manual run may have changed it) and compares. */
const SLA_CHECK_MS = 5 * 60_000;
/** How often STATUS= refreshes the elapsed time of a running backup. */
const RUNNING_STATUS_MS = 10_000;
const MAIL_LOG_LINES = 25;

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const daemon = new Daemon(options);
  await daemon.start();
  await new Promise<void>((resolve) => {
    if (options.cancel.aborted) resolve();
    else options.cancel.addEventListener('abort', () => resolve(), { once: true });
  });
  await daemon.stop();
}

type ScheduledRun = RunRequest & { readonly slot: Date | null; readonly catchUp?: boolean };

class Daemon {
  private config: Config;
  private calendar: HostCalendar;
  private state: stateFile.AgentState = stateFile.emptyState(new Date());
  private breaches: readonly Breach[] = [];
  private reloadProblem: string | null = null;
  private current: Promise<void> | null = null;
  private stopping = false;
  private disarm: () => void = () => undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly notifier;
  private readonly activity = new Activity(() => this.publishStatus());
  private readonly store: StateStore;
  private readonly onHangup = (): void => void this.guard('reload', this.reload());

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.calendar = hostCalendar(this.config, readHostIdentity());
    this.notifier = connectToSystemd(options.logger);
    this.store = new StateStore(() => this.config.agent.state_file, options.logger, 'backup-agent daemon');
  }

  async start(): Promise<void> {
    const { agent } = this.config;
    await ensureWritableDirectory(dirname(agent.state_file), 'agent.state_file');
    const stored = await this.store.load();
    await this.change((state) => ({ state }), stored ?? stateFile.emptyState(new Date()));
    await writeMetrics(this.config, this.state, this.log);
    this.armSchedule();
    this.planCatchUp(stored);
    process.on('SIGHUP', this.onHangup);
    this.repeat(SLA_CHECK_MS, () => this.guard('SLA check', this.checkSla()));
    this.repeat(RUNNING_STATUS_MS, () => this.activity.busy && this.publishStatus());
    this.breaches = this.evaluateSla(this.state, new Date()).breaches;
    // Only now: the configuration is valid, the state readable and the schedule armed.
    this.notifier.ready();
    this.publishStatus();
    this.startWatchdog();
    const { offsetMs, spreadMs, fullDay } = this.calendar;
    const next = this.calendar.schedule.next(new Date());
    this.log.info(
      {
        schedule: agent.schedule,
        timezone: agent.timezone,
        spreadMs,
        offsetMs,
        fullDay,
        next,
        notify: this.notifier.active,
      },
      'daemon ready: schedule "%s" (%s), %s, next run %s',
      agent.schedule,
      agent.timezone,
      offsetText(this.calendar),
      next === null ? 'never' : this.show(next),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.notifier.stopping();
    this.notifier.status(this.current === null ? 'stopping' : 'stopping: ending the running backup');
    process.off('SIGHUP', this.onHangup);
    this.disarm();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.current !== null) {
      this.log.info('stopping: waiting for the running backup to end its child processes');
      await this.current;
    }
    await this.store.flushed();
    this.log.info('daemon stopped');
  }

  private armSchedule(): void {
    this.disarm();
    const job = this.calendar.schedule.arm((slot) =>
      this.startRun({ trigger: `daemon (scheduled ${this.show(slot)})`, slot }),
    );
    this.disarm = () => job.stop();
  }

  private planCatchUp(stored: stateFile.AgentState | null): void {
    if (!this.config.agent.catch_up) return;
    const decide = (state: stateFile.AgentState | null) =>
      decideCatchUp({
        latestSlot: this.calendar.schedule.latestAtOrBefore(new Date()),
        state,
        sources: enabledSourceKinds(this.config),
        show: (date) => this.show(date),
      });
    const decision = decide(stored);
    if (!decision.run) {
      this.log.info({ reason: decision.reason }, 'no catch-up needed: %s', decision.reason);
      return;
    }
    const at = new Date(Date.now() + CATCH_UP_DELAY_MS);
    this.log.warn(
      { slot: decision.slot, sources: decision.sources },
      'catching up: %s; the backup starts at %s',
      decision.reason,
      this.show(at),
    );
    this.later(CATCH_UP_DELAY_MS, () => {
      // A scheduled run may have come first in the meantime.
      const still =
        this.current === null ? decide(this.state) : { run: false as const, reason: 'a run is in progress' };
      if (!still.run) {
        this.log.info({ reason: still.reason }, 'catch-up no longer needed: %s', still.reason);
        return;
      }
      const trigger = `daemon (catch-up for ${this.show(still.slot)})`;
      this.startRun({ trigger, slot: still.slot, sources: still.sources, catchUp: true });
    });
  }

  private startRun(request: ScheduledRun): void {
    if (this.stopping) return;
    if (this.current !== null) {
      const now = new Date();
      const reason = 'the previous run is still in progress';
      this.log.warn({ trigger: request.trigger }, 'run skipped (%s): %s', request.trigger, reason);
      const window = { startedAt: now, finishedAt: now, trigger: request.trigger, slot: request.slot };
      void this.change((state) => ({ state: stateFile.recordRunWithoutOutcome(state, window, 'skipped', reason) }));
      return;
    }
    this.current = this.guard('run', this.cycle(request)).finally(() => {
      this.current = null;
      this.publishStatus();
    });
  }

  private async cycle(request: ScheduledRun): Promise<void> {
    // A SIGHUP during the run applies to the next one.
    const config = this.config;
    const startedAt = new Date();
    if (request.catchUp === true && request.slot !== null) {
      // Recorded first, so that a daemon dying in the catch-up does not start it again on every restart.
      const catchUp = { slot: request.slot, startedAt };
      await this.change((state) => ({ state: { ...state, catchUp } }));
    }
    this.log.info({ trigger: request.trigger }, 'run started: %s', request.trigger);
    this.activity.begin();
    let end;
    try {
      end = await executeRun(config, this.log, this.options.cancel, this.activity, request, this.options.logTail);
    } finally {
      this.activity.end();
    }
    const window = { startedAt, finishedAt: new Date(), trigger: request.trigger, slot: request.slot };
    if (end.result === 'skipped' || end.result === 'interrupted') {
      this.log.warn({ trigger: request.trigger, reason: end.reason }, 'run %s: %s', end.result, end.reason);
    }
    if (end.result === 'start-failure') {
      this.log.error({ error: end.error }, 'run failed before any source ran: %s', end.error);
    }
    const recorded = await this.change((state) => recordRunEnd(state, window, end));
    if (recorded.transitions === null) return;
    await writeMetrics(config, this.state, this.log);
    const report = {
      host: hostname(),
      trigger: request.trigger,
      results: stateFile.recordsOfRun(this.state, startedAt),
      logLines: this.options.logTail.last(MAIL_LOG_LINES),
      next: this.calendar.schedule.next(new Date()),
      show: (date: Date) => this.show(date),
    };
    await alertAboutRun(createMailer(config.notify, this.log), config.notify.on, report, recorded.transitions);
    await this.checkSla();
  }

  private async reload(): Promise<void> {
    if (this.stopping) return;
    this.log.info('SIGHUP: reloading %s', this.config.file);
    let config: Config;
    try {
      config = await this.options.reload();
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [errorMessage(error)];
      this.reloadProblem = problems.join('; ');
      this.log.error(
        { problems },
        'the configuration is invalid, keeping the previous one (schedule "%s"): %s',
        this.config.agent.schedule,
        this.reloadProblem,
      );
      this.publishStatus();
      return;
    }
    this.config = config;
    this.calendar = hostCalendar(config, readHostIdentity());
    this.reloadProblem = null;
    this.armSchedule();
    const next = this.calendar.schedule.next(new Date());
    this.log.info(
      { schedule: config.agent.schedule, offsetMs: this.calendar.offsetMs, next },
      'configuration reloaded: schedule "%s", %s, next run %s',
      config.agent.schedule,
      offsetText(this.calendar),
      next === null ? 'never' : this.show(next),
    );
    // A new rpo or deadline may open or close a breach right now.
    await this.checkSla();
  }

  private evaluateSla(state: stateFile.AgentState, now: Date) {
    const { agent } = this.config;
    return evaluateSla({
      state,
      sources: enabledSourceKinds(this.config),
      now,
      rpoMs: agent.rpo,
      deadline: agent.deadline === null ? null : this.calendar.schedule.lastDeadline(agent.deadline, now),
      show: (date) => this.show(date),
    });
  }

  private async checkSla(): Promise<void> {
    const now = new Date();
    const { breaches, opened, closed } = await this.change((state) => {
      const current = this.evaluateSla(state, now).breaches;
      const change = reconcileBreaches(state.slaBreaches, current, now);
      const unchanged = change.opened.length === 0 && change.closed.length === 0;
      return { ...change, breaches: current, state: unchanged ? state : { ...state, slaBreaches: change.alerted } };
    });
    this.breaches = breaches;
    this.publishStatus();
    if (opened.length === 0 && closed.length === 0) return;
    await alertAboutBreaches(createMailer(this.config.notify, this.log), this.log, { opened, closed }, (date) =>
      this.show(date),
    );
  }

  private publishStatus(): void {
    if (this.stopping) return;
    const now = new Date();
    const { startedAt } = this.activity;
    this.notifier.status(
      statusLine({
        now,
        timeZone: this.config.agent.timezone,
        running: startedAt === null ? null : { startedAt, steps: this.activity.steps },
        next: nextRun(this.config, this.calendar, this.state, enabledSourceKinds(this.config), now),
        state: this.state,
        breaches: this.breaches,
        reloadProblem: this.reloadProblem,
      }),
    );
  }

  private startWatchdog(): void {
    const timeoutMs = this.notifier.watchdogTimeoutMs();
    if (timeoutMs <= 0) return;
    // The timer only fires while the event loop turns: a wedged loop stops the pings and systemd restarts us.
    this.notifier.watchdog();
    this.repeat(timeoutMs / 2, () => this.notifier.watchdog());
    this.log.info({ timeoutMs }, 'systemd watchdog: WATCHDOG=1 every %d ms', timeoutMs / 2);
  }

  /** Every change goes through the file as it is now: a manual run may have recorded a run since. */
  private async change<T extends { readonly state: stateFile.AgentState }>(
    change: (state: stateFile.AgentState) => T,
    base: stateFile.AgentState = this.state,
  ): Promise<T> {
    const changed = await this.store.update(change, base);
    this.state = changed.state;
    return changed;
  }

  /** A daemon must outlive a bug in one cycle: log it (the next slot may well work) instead of crashing. */
  private guard(what: string, work: Promise<void>): Promise<void> {
    return work.catch((error: unknown) =>
      this.log.error({ err: error }, 'unexpected error in the %s: %s', what, errorMessage(error)),
    );
  }

  private show(date: Date): string {
    return formatTime(date, this.config.agent.timezone);
  }

  private repeat(ms: number, action: () => unknown): void {
    this.timers.add(setInterval(action, ms));
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }
}
