import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigError } from '../errors.js';
import { renderConfigTable, renderExampleConfig } from './example.js';
import { parseConfig } from './load.js';
import { ENGINES } from '../sources/registry.js';

const FILE = '/etc/backup-agent.ini';
const MINIMAL = `[target]
url = rsync://backup@backup.example.org/backups
[mysql]
databases = agama
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text, FILE, ENGINES);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.file, FILE);
    return error.problems;
  }
  assert.fail('the configuration was accepted');
}

test('a minimal file gets every default, and a missing [influxdb] section disables it', () => {
  const config = parseConfig(MINIMAL, FILE, ENGINES);
  assert.equal(config.agent.schedule, '15 23 * * *');
  assert.equal(config.agent.full_day, 'sun');
  assert.equal(config.agent.max_full_age, 8 * 86_400_000);
  assert.equal(config.agent.keep_full, 4);
  assert.equal(config.target.encryption, 'symmetric');
  assert.deepEqual(config.sources['mysql']?.databases, ['agama']);
  assert.equal(config.sources['mysql']?.enabled, true);
  assert.equal(config.sources['influxdb']?.enabled, false);
  assert.equal(config.file, FILE);
});

test('the shipped example file is itself a valid configuration', () => {
  const config = parseConfig(renderExampleConfig(ENGINES), FILE, ENGINES);
  assert.deepEqual(config.sources['mysql']?.databases, ['agama']);
  assert.deepEqual(config.sources['influxdb']?.databases, ['telegraf']);
});

test('unknown sections and keys are errors with a did-you-mean', () => {
  const problems = problemsOf(`${MINIMAL}[agnet]\nschedule = 1 2 * * *\n[mysql]\ndatabase = x\n`);
  assert.ok(
    problems.some((p) => p.includes('unknown section [agnet]') && p.includes('[agent]')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.includes('unknown key mysql.database') && p.includes('mysql.databases')),
    problems.join('\n'),
  );
});

test('every bad value is reported at once, naming section.key, the value and what is allowed', () => {
  const problems = problemsOf(`[agent]
full_day = sunday
max_full_age = 8 days
keep_full = 0
timezone = Mars/Olympus
schedule = every night
[target]
url = sftp://host/backups
encryption = rot13
[mysql]
databases = agama
`);
  const expectations: [string, string][] = [
    ['agent.full_day = "sunday"', 'mon, tue'],
    ['agent.max_full_age = "8 days"', 'e.g. 8d'],
    ['agent.keep_full = "0"', 'from 2 to 1000'],
    ['agent.timezone = "Mars/Olympus"', 'IANA time zone'],
    ['agent.schedule = "every night"', 'cron expression'],
    ['target.url (value not shown: it can hold a password)', 'rsync://user@host'],
    ['target.encryption = "rot13"', 'symmetric, pubkey, none'],
  ];
  for (const [named, allowed] of expectations) {
    assert.ok(
      problems.some((p) => p.includes(named) && p.includes(allowed)),
      `no problem names ${named} with "${allowed}":\n${problems.join('\n')}`,
    );
  }
  assert.equal(problems.length, expectations.length);
});

test('a required key, an empty database list and pubkey without a key are explained', () => {
  assert.ok(problemsOf('[mysql]\ndatabases = agama\n').some((p) => p.startsWith('target.url is required')));
  assert.ok(
    problemsOf(MINIMAL.replace('databases = agama', 'databases =')).some((p) =>
      p.includes('mysql.databases is empty but mysql.enabled = true'),
    ),
  );
  assert.ok(
    problemsOf(MINIMAL.replace('[mysql]', 'encryption = pubkey\n[mysql]')).some((p) =>
      p.includes('target.encrypt_key is empty'),
    ),
  );
});

test('a key given twice as a list is refused instead of silently picking one', () => {
  const problems = problemsOf(MINIMAL.replace('databases = agama', 'databases[] = a\ndatabases[] = b'));
  assert.ok(
    problems.some((p) => p.includes('mysql.databases is given more than once')),
    problems.join('\n'),
  );
});

test('values that would become command-line options are refused, naming the key and the rule', () => {
  const problems = problemsOf(`[target]
url = rsync://-oProxyCommand@backup.example.org/backups
[mysql]
databases = agama, --all-databases
[influxdb]
databases = telegraf
host = -oops:8088
http_url = http://-oops:8086
stop_services = telegraf -f
`);
  const expectations: [string, string][] = [
    ['target.url', 'the user must not start with "-"'],
    ['mysql.databases = "agama, --all-databases"', 'database name --all-databases must not start with "-"'],
    ['influxdb.host = "-oops:8088"', 'the host must not start with "-"'],
    ['influxdb.http_url', 'the host must not start with "-"'],
    ['influxdb.stop_services = "telegraf -f"', 'systemd service name -f must not start with "-"'],
  ];
  for (const [named, rule] of expectations) {
    assert.ok(
      problems.some((p) => p.startsWith(named) && p.includes(rule) && p.includes('would read it as an option')),
      `no problem names ${named} with "${rule}":\n${problems.join('\n')}`,
    );
  }
  assert.equal(problems.length, expectations.length, problems.join('\n'));
  assert.ok(
    problemsOf(MINIMAL.replace('backup@backup.example.org', 'backup@-oProxyCommand')).some((p) =>
      p.includes('the host must not start with "-"'),
    ),
  );
});

test('a password in a URL is refused without ever being shown', () => {
  const secret = 'Sup3r-s3cret';
  const problems = problemsOf(`${MINIMAL}[notify]\nsmtp_url = smtp://alerts:${secret}@mail.example.org:587\n`);
  assert.deepEqual(problems, [
    'notify.smtp_url (value not shown: it can hold a password): a password in the URL is not allowed: put the password in notify.smtp_password_file',
  ]);
  // Keys whose value can hold user:password@ never echo it, whatever else is wrong with it.
  for (const extra of [
    `[notify]\nsmtp_url = smtp:/alerts:${secret}@mail.example.org\n`,
    `[influxdb]\ndatabases = telegraf\nhttp_url = http://admin:${secret}@127.0.0.1:8086\n`,
  ]) {
    const shown = problemsOf(`${MINIMAL}${extra}`);
    assert.ok(shown.length === 1 && !shown[0]?.includes(secret), shown.join('\n'));
  }
  const url = problemsOf(MINIMAL.replace('backup@', `backup:${secret}@`));
  assert.ok(url.length === 1 && url[0]?.startsWith('target.url (value not shown') && !url[0].includes(secret), url[0]);
});

test('keep_full = 1 is refused, and the error says why', () => {
  const problems = problemsOf(MINIMAL.replace('[mysql]', '[agent]\nkeep_full = 1\n[mysql]'));
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(
    problems[0] ?? '',
    /^agent\.keep_full = "1": expected a whole number from 2 to 1000: with 1, each full deletes the previous chain/,
  );
  assert.equal(
    parseConfig(MINIMAL.replace('[mysql]', '[agent]\nkeep_full = 2\n[mysql]'), FILE, ENGINES).agent.keep_full,
    2,
  );
});

test('smtp_cleartext_login is off unless set', () => {
  assert.equal(parseConfig(MINIMAL, FILE, ENGINES).notify.smtp_cleartext_login, false);
  const config = parseConfig(
    `${MINIMAL}[notify]\nsmtp_url = smtp://alerts@relay\nsmtp_cleartext_login = true\n`,
    FILE,
    ENGINES,
  );
  assert.equal(config.notify.smtp_cleartext_login, true);
  assert.equal(config.notify.smtp_url.user, 'alerts');
});

test('the README documents every key exactly as the key table says', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  assert.ok(
    readme.includes(renderConfigTable(ENGINES)),
    'README.md is out of date: paste the output of renderConfigTable(ENGINES) into its configuration section',
  );
});

test('sign_key: only the key id lengths duplicity takes, and never with encryption = none', () => {
  const withKey = (key: string, encryption = 'symmetric') =>
    MINIMAL.replace('[mysql]', `encryption = ${encryption}\nsign_key = ${key}\n[mysql]`);
  const fingerprint = '0123456789ABCDEF0123456789ABCDEF01234567';
  assert.equal(parseConfig(MINIMAL, FILE, ENGINES).target.sign_key, '');
  assert.equal(parseConfig(withKey(fingerprint), FILE, ENGINES).target.sign_key, fingerprint);
  assert.match(problemsOf(withKey('0123456789AB')).join('\n'), /target\.sign_key = "0123456789AB": .*8 or 16 hex/);
  assert.match(
    problemsOf(withKey(fingerprint, 'none')).join('\n'),
    /target\.sign_key is set but target\.encryption = none: duplicity signs only encrypted volumes/,
  );
});
