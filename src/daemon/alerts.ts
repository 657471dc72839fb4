// Which mails a finished run or an SLA check sends: a failure mail for any failed source, a
// recovery mail for sources that work again, with notify.on = always a success mail, and one mail
// when an SLA breach opens and one when it closes. Mailer.send never throws, so neither does this.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Mailer } from '../notify/mail.js';
import {
  type RunReport,
  breachMail,
  breachOverMail,
  failureMail,
  recoveryMail,
  successMail,
} from '../notify/messages.js';
import type { Logger } from '../report/logger.js';
import type { AlertedBreach, Breach } from './sla.js';
import type { Transitions } from './state.js';

export async function alertAboutRun(
  mailer: Mailer,
  on: Config['notify']['on'],
  report: RunReport,
  transitions: Transitions,
): Promise<void> {
  if (!mailer.enabled) return;
  if (transitions.failed.length > 0) await mailer.send(failureMail(report));
  if (transitions.recovered.length > 0) await mailer.send(recoveryMail(report, transitions.recovered));
  if (on === 'always' && transitions.failed.length === 0 && transitions.recovered.length === 0) {
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
