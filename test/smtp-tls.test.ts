// The SMTP password only crosses the wire encrypted: with a login in notify.smtp_url the daemon
// requires STARTTLS (verified against a CA it trusts through NODE_EXTRA_CA_CERTS) and sends no
// AUTH without it; notify.smtp_cleartext_login = true is the explicit, warned way out. Real
// daemon, real MariaDB, sshd target and SMTP servers (plain and STARTTLS) on loopback; the alert
// comes from a run that fails because the MySQL server it is pointed at is down.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { type AgentHost, MYSQL_DATABASE, MYSQL_PASSWORD, type LogLine, makeAgentHost } from './harness/agent.js';
import {
  type DaemonFiles,
  killLeftoverDaemons,
  notifyVia,
  prepareDaemonFiles,
  slotIn,
  startDaemon,
  writeDaemonConfig,
} from './harness/daemon.js';
import { type MariaDb, seedDatabase, startMariaDb } from './harness/mariadb.js';
import { freePort } from './harness/ports.js';
import { type AuthAttempt, type ReceivedMail, type SmtpSink, startSmtpSink } from './harness/smtp.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';
import { type TestCa, makeTestCa } from './harness/tls-ca.js';

let mariadb: MariaDb;
let target: SshTarget;
let ca: TestCa;
let plain: SmtpSink;
let starttls: SmtpSink;
let host: AgentHost;
let files: DaemonFiles;
let downCnf: string;

before(async () => {
  ca = await makeTestCa();
  [mariadb, target, plain, starttls] = await Promise.all([
    startMariaDb(),
    startSshTarget(),
    startSmtpSink(),
    startSmtpSink({ tls: ca }),
  ]);
  await seedDatabase(mariadb, MYSQL_DATABASE, 50);
  host = await makeAgentHost({ mariadb, target });
  // Both sinks take the same login; the file holds its password.
  files = await prepareDaemonFiles(host, plain);
  assert.equal(starttls.password, plain.password);
  downCnf = join(host.dir, 'etc', 'down.cnf');
  await mariadb.writeMyCnf(downCnf, {
    user: 'bk',
    password: MYSQL_PASSWORD,
    host: '127.0.0.1',
    port: await freePort(),
  });
});

afterEach(async () => {
  await killLeftoverDaemons();
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), plain?.stop(), starttls?.stop(), host?.remove()]);
  await ca?.remove();
});

interface MailAttempt {
  /** The daemon's log line about the alert mail: sent, or why not. */
  readonly outcome: LogLine;
  readonly logs: readonly LogLine[];
  readonly output: string;
  readonly mails: readonly ReceivedMail[];
  readonly auths: readonly AuthAttempt[];
}

/** One scheduled run that fails (MySQL down), so the daemon mails the failure through `sink`. */
async function alertThrough(
  sink: SmtpSink,
  notify: Record<string, string>,
  env: Record<string, string> = {},
): Promise<MailAttempt> {
  // A fresh state file: the failure is new, so it is mailed.
  await rm(files.stateFile, { force: true });
  await writeDaemonConfig(host, files, {
    agent: { schedule: slotIn(10).cron, catch_up: 'false', deadline: '' },
    mysql: { defaults_file: downCnf },
    notify,
  });
  const [mailsBefore, authsBefore] = [sink.mails.length, sink.auths.length];
  const daemon = startDaemon(host, env);
  const outcome = await daemon.waitForLog('the alert mail', (line) =>
    /^(alert mail sent|cannot send the alert mail)/.test(line.msg),
  );
  daemon.signal('SIGTERM');
  assert.equal((await daemon.exited).exitCode, 0, daemon.output());
  return {
    outcome,
    logs: daemon.logs,
    output: daemon.output(),
    mails: sink.mails.slice(mailsBefore),
    auths: sink.auths.slice(authsBefore),
  };
}

test('a login to a server without STARTTLS is refused before AUTH: no mail, and the error says TLS is required', async () => {
  const attempt = await alertThrough(plain, notifyVia(plain, files));
  assert.equal(attempt.outcome.level, 50, attempt.output);
  assert.match(
    attempt.outcome.msg,
    /^cannot send the alert mail ".*FAILED.*" through 127\.0\.0\.1:\d+: TLS is required/,
  );
  assert.match(attempt.outcome.msg, /notify\.smtp_cleartext_login = true/);
  assert.deepEqual(attempt.auths, [], 'the server never saw the password');
  assert.deepEqual(attempt.mails, []);
  assert.ok(!attempt.output.includes(plain.password));
});

test('STARTTLS with a certificate the agent does not trust: no login, no mail', async () => {
  const attempt = await alertThrough(starttls, notifyVia(starttls, files));
  assert.equal(attempt.outcome.level, 50, attempt.output);
  assert.match(attempt.outcome.msg, /through 127\.0\.0\.1:\d+: unable to verify the first certificate$/);
  assert.deepEqual(attempt.auths, []);
  assert.deepEqual(attempt.mails, []);
});

test('a login over STARTTLS with a trusted certificate delivers the mail', async () => {
  const attempt = await alertThrough(starttls, notifyVia(starttls, files), { NODE_EXTRA_CA_CERTS: ca.caFile });
  assert.match(attempt.outcome.msg, /^alert mail sent: .*mysql backup FAILED/, attempt.output);
  assert.deepEqual(attempt.auths, [{ user: starttls.user, secure: true, accepted: true }]);
  assert.equal(attempt.mails.length, 1);
  assert.equal(attempt.mails[0]?.secure, true);
  assert.equal(attempt.mails[0]?.user, starttls.user);
  assert.ok(!attempt.logs.some((line) => line.level >= 40 && /smtp_cleartext_login/.test(line.msg)));
});

test('smtp_cleartext_login = true logs in without TLS, warns on the mail, and check warns but passes', async () => {
  const notify = { ...notifyVia(plain, files), smtp_cleartext_login: 'true' };
  const attempt = await alertThrough(plain, notify);
  assert.match(attempt.outcome.msg, /^alert mail sent: /, attempt.output);
  assert.deepEqual(attempt.auths, [{ user: plain.user, secure: false, accepted: true }]);
  assert.equal(attempt.mails.length, 1);
  const warnings = attempt.logs.filter(
    (line) =>
      line.level === 40 && /^notify\.smtp_cleartext_login = true: the SMTP password is sent unencrypted/.test(line.msg),
  );
  assert.equal(warnings.length, 1, attempt.output);

  // The same file with a working MySQL: every other item passes, the mail item is a warning.
  await writeDaemonConfig(host, files, { notify });
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.match(
    check.stdout,
    /^\[warn\] mail: notify\.smtp_cleartext_login = true: the SMTP password is sent unencrypted/m,
  );
  assert.match(check.stdout, /^check passed/m);
});
