// A real SMTP server (the smtp-server package) on loopback that requires a login, so a test proves
// the agent authenticates with the password from its file, and keeps every message it accepts and
// every login attempt it sees. With `tls` it offers STARTTLS and refuses a login before it; without,
// it is a plain relay that takes a login in cleartext.
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import { freePort } from './ports.js';
import type { TestCa } from './tls-ca.js';

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly body: string;
  /** The login the client used. */
  readonly user: string;
  /** Whether the session was encrypted (STARTTLS) when the mail was sent. */
  readonly secure: boolean;
}

export interface AuthAttempt {
  readonly user: string;
  /** Whether the password arrived over an encrypted session. */
  readonly secure: boolean;
  readonly accepted: boolean;
}

export interface SmtpSink {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly mails: readonly ReceivedMail[];
  /** Every AUTH the server received, in order. */
  readonly auths: readonly AuthAttempt[];
  /** The first mail (in arrival order, from `since` on) whose subject matches. */
  waitFor(subject: RegExp, since?: number, timeoutMs?: number): Promise<ReceivedMail>;
  stop(): Promise<void>;
}

/** `tls`: offer STARTTLS with the CA's server certificate; otherwise plain SMTP only. */
export async function startSmtpSink(options: { tls?: TestCa } = {}): Promise<SmtpSink> {
  const port = await freePort();
  const user = 'alerts';
  const password = `smtp-Secr3t-${process.pid}`;
  const mails: ReceivedMail[] = [];
  const auths: AuthAttempt[] = [];
  const { tls } = options;
  const server = new SMTPServer({
    ...(tls === undefined
      ? { disabledCommands: ['STARTTLS'], allowInsecureAuth: true }
      : { key: tls.key, cert: tls.cert, allowInsecureAuth: false }),
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, session, callback) {
      const accepted = auth.username === user && auth.password === password;
      auths.push({ user: auth.username ?? '', secure: session.secure, accepted });
      if (accepted) callback(null, { user });
      else callback(new Error('invalid login'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        mails.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((address) => address.address),
          user: typeof session.user === 'string' ? session.user : '',
          secure: session.secure,
          ...parseMessage(raw),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  const waitFor = async (subject: RegExp, since = 0, timeoutMs = 180_000): Promise<ReceivedMail> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = mails.slice(since).find((mail) => subject.test(mail.subject));
      if (found !== undefined) return found;
      if (Date.now() > until) {
        throw new Error(
          `no mail with a subject matching ${subject}; received: ${mails.map((m) => m.subject).join(' | ')}`,
        );
      }
      await sleep(100);
    }
  };

  return {
    port,
    user,
    password,
    mails,
    auths,
    waitFor,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Enough MIME for the agent's plain-text mails: unfolded headers, 7bit or quoted-printable body. */
function parseMessage(raw: string): { subject: string; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers.get('content-transfer-encoding') ?? '')) {
    body = Buffer.from(
      body
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      'latin1',
    ).toString('utf8');
  }
  return { subject: decodeWords(headers.get('subject') ?? ''), body: body.replace(/\r\n/g, '\n') };
}

/** RFC 2047 encoded words (=?UTF-8?Q?…?= / =?UTF-8?B?…?=), which nodemailer uses for non-ASCII subjects. */
function decodeWords(text: string): string {
  return text
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_match, encoding: string, data: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(
            data
              .replace(/_/g, ' ')
              .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
            'latin1',
          ).toString('utf8'),
    );
}
