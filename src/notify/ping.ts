// Dead-man's pings (notify.ping_url) to a monitor outside this host: a healthchecks.io check or an
// Uptime Kuma push monitor. It alerts when the pings stop, which catches what no mail from here
// can: a host that is off, a daemon that died, a schedule that never fires. A ping is best effort:
// it waits at most PING_TIMEOUT_MS, and a monitor that cannot be reached is a warning, never a
// failed or noticeably delayed backup. The URL's path and query identify the check (whoever has
// them can ping it), so logs show only its scheme, host and port.
import type { Config } from '../config/schema.js';
import type { PingUrl } from '../config/values.js';
import type { SourceOutcome } from '../domain.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { LockBusyError } from '../system/lock.js';

export const PING_TIMEOUT_MS = 5_000;
/** As many as the daemon's failure mails carry. */
const LOG_LINES = 25;
/** Uptime Kuma shows msg as one line in its list of heartbeats, and it travels in the request line. */
const KUMA_MESSAGE_LENGTH = 200;

/** The newest log lines (daemon/log-tail.ts), for the body of the final ping. */
export interface RecentLogLines {
  last(count: number): readonly string[];
}

/**
 * Runs one backup run between its pings: start, then success when every source succeeded, else
 * fail. A run that never happened sends no verdict: another process holds the lock (the holder, if
 * it is a backup, pings for itself) or a signal stopped it (the catch-up after the restart pings);
 * if that goes on, the monitor's own timeout alerts.
 */
export async function pingedRun<T extends { readonly outcomes: readonly SourceOutcome[] }>(
  settings: Config['notify'],
  logger: Logger,
  cancel: AbortSignal,
  logs: RecentLogLines,
  run: () => Promise<T>,
): Promise<T> {
  if (settings.ping_url === null) return run();
  const monitor = new Monitor(settings.ping_url, logger, cancel);
  await monitor.start();
  let result: T;
  try {
    result = await run();
  } catch (error) {
    if (!(error instanceof LockBusyError || cancel.aborted)) {
      await monitor.end(false, [`backup run failed before any source ran: ${errorMessage(error)}`], logs);
    }
    throw error;
  }
  const ok = result.outcomes.every((outcome) => outcome.result === 'ok');
  await monitor.end(ok, result.outcomes.map(headline), logs);
  return result;
}

function headline(outcome: SourceOutcome): string {
  if (outcome.result === 'ok') return `${outcome.source}: ${outcome.kind} backup OK`;
  return `${outcome.source}: backup FAILED during ${outcome.stage}: ${outcome.error.split('\n')[0] ?? ''}`;
}

type Signal = 'start' | 'success' | 'fail';

class Monitor {
  private readonly log: Logger;

  constructor(
    private readonly target: PingUrl,
    logger: Logger,
    private readonly cancel: AbortSignal,
  ) {
    this.log = logger.child({ component: 'ping', server: new URL(target.href).origin });
  }

  async start(): Promise<void> {
    // Uptime Kuma knows only up and down: an "up" now would claim a success the run has not had.
    if (this.target.service === 'uptime-kuma') return;
    await this.send('start', this.healthchecksUrl('/start'), { method: 'GET' });
  }

  async end(ok: boolean, headlines: readonly string[], logs: RecentLogLines): Promise<void> {
    const signal: Signal = ok ? 'success' : 'fail';
    if (this.target.service === 'uptime-kuma') {
      const url = new URL(this.target.href);
      url.searchParams.set('status', ok ? 'up' : 'down');
      url.searchParams.set('msg', shorten(headlines.join('; '), KUMA_MESSAGE_LENGTH));
      await this.send(signal, url, { method: 'GET' });
      return;
    }
    const body = [...headlines, '', 'Last log lines:', ...logs.last(LOG_LINES), ''].join('\n');
    await this.send(signal, this.healthchecksUrl(ok ? '' : '/fail'), {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body,
    });
  }

  /** <check URL>/start and /fail, keeping a query such as healthchecks' ?create=1. */
  private healthchecksUrl(suffix: string): URL {
    const url = new URL(this.target.href);
    url.pathname = `${url.pathname.replace(/\/$/, '')}${suffix}`;
    return url;
  }

  private async send(signal: Signal, url: URL, init: RequestInit): Promise<void> {
    const started = Date.now();
    // Referenced again below, so it lives until the request ends: AbortSignal.any holds its sources
    // only weakly, and node 20 collects a pending timeout signal, which then never fires (the
    // request would wait for undici's own 300 s).
    const timeout = AbortSignal.timeout(PING_TIMEOUT_MS);
    try {
      const response = await fetch(url, {
        ...init,
        // A redirect could carry the check's token to another host, or downgrade https to http.
        redirect: 'error',
        signal: AbortSignal.any([timeout, this.cancel]),
      });
      // Read to the end, so that the connection is released; the text itself may echo the token.
      await response.arrayBuffer();
      if (!response.ok) {
        this.warn(signal, `the server answered ${response.status} ${response.statusText}`);
        return;
      }
      this.log.info({ ping: signal, ms: Date.now() - started }, 'ping sent: %s', signal);
    } catch (error) {
      this.warn(signal, timeout.aborted ? `no answer within ${PING_TIMEOUT_MS / 1000}s` : failure(error));
    }
  }

  private warn(signal: Signal, reason: string): void {
    this.log.warn(
      { ping: signal, error: reason },
      'cannot ping the monitor in notify.ping_url (%s): %s; the backup is not affected',
      signal,
      reason,
    );
  }
}

/** undici says only "fetch failed" and puts the reason (ECONNREFUSED 127.0.0.1:8000, a TLS error) in the cause. */
function failure(error: unknown): string {
  const cause = error instanceof Error && error.cause !== undefined ? `: ${errorMessage(error.cause)}` : '';
  return `${errorMessage(error)}${cause}`;
}

function shorten(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}
