// A manual `backup-agent run` goes into state.json like the daemon's runs: `status`, the daemon's
// STATUS= line and SLA watch, and catch-up after a restart then all know about it, the metrics file
// follows, and the chain length the state counts stays true. Of the mails it sends only the
// recovery and the self-healing notice: whoever runs a backup by hand sees its failure on the
// terminal, but the people who got the night's failure mail should hear that backups work again,
// and those who look after the target should hear that it lost or damaged a file.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { alertAboutRun } from '../notify/alerts.js';
import { hostCalendar, readHostIdentity } from '../history/spread.js';
import { StateStore } from '../history/state-store.js';
import { type RunWindow, emptyState, recordOutcomes, recordsOfRun } from '../history/state.js';
import { formatTime } from '../history/time-text.js';
import type { SourceOutcome } from '../domain.js';
import { writeMetrics } from '../metrics/textfile.js';
import { createMailer } from '../notify/mail.js';
import type { Logger } from '../report/logger.js';

export async function recordManualRun(
  config: Config,
  logger: Logger,
  window: RunWindow,
  outcomes: readonly SourceOutcome[],
): Promise<void> {
  const { agent } = config;
  const store = new StateStore(() => agent.state_file, logger, window.trigger);
  const { state, transitions } = await store.update(
    (stored) => recordOutcomes(stored, window, outcomes),
    emptyState(window.startedAt),
  );
  await writeMetrics(config, state, logger);
  if (transitions.recovered.length === 0 && transitions.healed.length === 0) return;
  const show = (date: Date): string => formatTime(date, agent.timezone);
  const report = {
    host: hostname(),
    trigger: window.trigger,
    results: recordsOfRun(state, window.startedAt),
    logLines: [],
    next: hostCalendar(config, readHostIdentity()).schedule.next(window.finishedAt),
    show,
  };
  await alertAboutRun(createMailer(config.notify, logger), config.notify.on, report, {
    failed: [],
    recovered: transitions.recovered,
    healed: transitions.healed,
  });
}
