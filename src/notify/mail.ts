// Alert mails through nodemailer. A mail that cannot be sent is logged as an error and nothing
// else: an alert must never fail or delay a backup. The SMTP password is read from its file for
// each mail (so it can be rotated without a restart) and goes only into the SMTP session, and only
// once that session is encrypted (smtps, or STARTTLS required) unless notify.smtp_cleartext_login.
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';

export interface MailMessage {
  readonly subject: string;
  readonly text: string;
}

export interface Mailer {
  /** false when notify.email_to is empty. */
  readonly enabled: boolean;
  /** Resolves to whether the mail was handed to the SMTP server; never rejects. */
  send(message: MailMessage): Promise<boolean>;
}

// Short enough that a dead mail server cannot hold a stopping daemon past systemd's stop timeout.
const TIMEOUTS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 } as const;

export function createMailer(settings: Config['notify'], logger: Logger): Mailer {
  if (settings.email_to.length === 0) return { enabled: false, send: () => Promise.resolve(false) };
  const log = logger.child({ component: 'mail' });
  return {
    enabled: true,
    async send(message) {
      const { smtp_url: server } = settings;
      const plainLogin = server.user !== null && !server.secure;
      const requireTLS = plainLogin && !settings.smtp_cleartext_login;
      try {
        const auth = server.user === null ? undefined : { user: server.user, pass: await readPassword(settings) };
        if (plainLogin && !requireTLS) log.warn(CLEARTEXT_WARNING);
        // Loaded on the first mail only: nodemailer is a tenth of an idle daemon's memory.
        const { createTransport } = await import('nodemailer');
        const transport = createTransport({
          host: server.host,
          port: server.port,
          secure: server.secure,
          // Without it nodemailer logs in over plain SMTP when the server (or a man in the middle
          // stripping it) does not offer STARTTLS.
          requireTLS,
          auth,
          ...TIMEOUTS,
        });
        try {
          await transport.sendMail({
            from: settings.email_from.replaceAll('%H', hostname()),
            to: settings.email_to.join(', '),
            subject: message.subject,
            text: message.text,
          });
        } finally {
          transport.close();
        }
        log.info({ to: settings.email_to, subject: message.subject }, 'alert mail sent: %s', message.subject);
        return true;
      } catch (error) {
        const reason = requireTLS ? explainTlsFailure(error) : errorMessage(error);
        log.error(
          { to: settings.email_to, subject: message.subject, error: reason },
          'cannot send the alert mail "%s" through %s:%d: %s',
          message.subject,
          server.host,
          server.port,
          reason,
        );
        return false;
      }
    },
  };
}

export const CLEARTEXT_WARNING =
  'notify.smtp_cleartext_login = true: the SMTP password is sent unencrypted when the server offers no STARTTLS';

/** nodemailer only says "Error upgrading connection with STARTTLS"; the operator needs to know why it was tried. */
function explainTlsFailure(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code !== 'ETLS') return errorMessage(error);
  return `TLS is required to log in, and it could not be set up (${errorMessage(error)}): use smtps://, enable STARTTLS on the server, or set notify.smtp_cleartext_login = true for a relay on a trusted network`;
}

async function readPassword(settings: Config['notify']): Promise<string> {
  const file = settings.smtp_password_file;
  if (file === '') {
    throw new Error(
      `notify.smtp_url names the user ${settings.smtp_url.user ?? ''} but notify.smtp_password_file is empty`,
    );
  }
  const [info, text] = await Promise.all([stat(file), readFile(file, 'utf8')]);
  if ((info.mode & 0o007) !== 0) {
    throw new Error(`${file} (notify.smtp_password_file) is readable by others: chmod o-rwx it`);
  }
  return text.split(/\r?\n/)[0] ?? '';
}
