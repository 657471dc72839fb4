// systemd's notify protocol for Type=notify units: READY=1, STATUS=, WATCHDOG=1, STOPPING=1.
// Node cannot send to a unix datagram socket by itself, so this goes through the native sd-notify
// addon (libsystemd's sd_notify). The addon is loaded only when systemd asked for messages
// (NOTIFY_SOCKET is set); without it — the CLI, a shell, a host without libsystemd — every call
// is a no-op, so nothing else in the agent needs to know whether systemd is listening.
import { createRequire } from 'node:module';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';

/** What the agent uses of the binding. Its published typings declare sendState wrongly, so they are not used. */
interface SdNotifyBinding {
  ready(): void;
  sendStatus(text: string): void;
  stopping(pid: number): void;
  watchdog(): void;
  /** Milliseconds; 0 when the unit has no WatchdogSec= (or WATCHDOG_PID names another process). */
  watchdogInterval(): number;
}

export interface ServiceNotifier {
  /** false when the messages go nowhere. */
  readonly active: boolean;
  ready(): void;
  /** One line for `systemctl status`; newlines would end the STATUS= assignment early. */
  status(text: string): void;
  watchdog(): void;
  stopping(): void;
  /** systemd's watchdog timeout in ms; 0 when the unit has none. */
  watchdogTimeoutMs(): number;
}

const SILENT: ServiceNotifier = {
  active: false,
  ready: () => undefined,
  status: () => undefined,
  watchdog: () => undefined,
  stopping: () => undefined,
  watchdogTimeoutMs: () => 0,
};

export function connectToSystemd(logger: Logger, env: NodeJS.ProcessEnv = process.env): ServiceNotifier {
  if (env['NOTIFY_SOCKET'] === undefined || env['NOTIFY_SOCKET'] === '') {
    logger.debug('NOTIFY_SOCKET is not set (not started by systemd as Type=notify): no sd_notify messages');
    return SILENT;
  }
  let binding: SdNotifyBinding;
  try {
    binding = createRequire(import.meta.url)('sd-notify') as SdNotifyBinding;
  } catch (error) {
    // Logged above debug on purpose: systemd is waiting for READY=1 and will stop the unit after
    // TimeoutStartSec=, and this line is the only clue to why.
    logger.warn(
      { error: errorMessage(error) },
      'NOTIFY_SOCKET is set but the sd-notify addon cannot be loaded: systemd will not hear READY=1 (rebuild it with npm rebuild sd-notify; it needs libsystemd)',
    );
    return SILENT;
  }
  return {
    active: true,
    ready: () => binding.ready(),
    status: (text) => binding.sendStatus(text.replace(/\s*[\r\n]+\s*/g, ' ')),
    watchdog: () => binding.watchdog(),
    stopping: () => binding.stopping(process.pid),
    watchdogTimeoutMs: () => binding.watchdogInterval(),
  };
}
