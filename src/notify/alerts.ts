// Which mails a finished run or an SLA check sends: a failure mail for any failed source, a
// recovery mail for sources that work again, a notice for a run that healed a broken chain, a
// damaged cache or a moved staging directory (once, whatever notify.on says), with notify.on =
// always a success mail, and one mail when an SLA breach opens and one when it closes. Mailer.send never throws, so neither does this.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Mailer } from './mail.js';
import {
  type RunReport,
  breachMail,
  breachOverMail,
  failureMail,
  healMail,
  recoveryMail,
  successMail,
} from './messages.js';
import type { Logger } from '../report/logger.js';
import type { AlertedBreach, Breach } from '../history/sla.js';
import type { Transitions } from '../history/state.js';

export async function alertAboutRun(
  mailer: Mailer,
  on: Config['notify']['on'],
  report: RunReport,
  transitions: Transitions,
): Promise<void> {
  if (!mailer.enabled) return;
  if (transitions.failed.length > 0) await mailer.send(failureMail(report));
  if (transitions.recovered.length > 0) await mailer.send(recoveryMail(report, transitions.recovered));
  if (transitions.healed.length > 0) await mailer.send(healMail(report, transitions.healed));
  const quiet =
    transitions.failed.length === 0 && transitions.recovered.length === 0 && transitions.healed.length === 0;
  if (on === 'always' && quiet) {
    await mailer.send(successMail(report));
  }
}

export async function alertAboutBreaches(
  mailer: Mailer,
  log: Logger,
  change: { readonly opened: readonly Breach[]; readonly closed: readonly (AlertedBreach & { key: string })[] },
  show: (date: Date) => string,
): Promise<void> {
  for (const breach of change.opened) {
    log.error({ breach: breach.key }, 'SLA breach: %s', breach.detail);
    await mailer.send(breachMail(hostname(), breach));
  }
  for (const breach of change.closed) {
    log.info({ breach: breach.key }, 'SLA breach over: %s', breach.detail);
    await mailer.send(breachOverMail(hostname(), breach.key, breach, show));
  }
}
