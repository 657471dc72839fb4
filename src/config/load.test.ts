import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigError } from '../errors.js';
import { renderConfigTable, renderExampleConfig } from './example.js';
import { parseConfig } from './load.js';

const FILE = '/etc/backup-agent.ini';
const MINIMAL = `[target]
url = rsync://backup@backup.example.org/backups
[mysql]
databases = agama
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.file, FILE);
    return error.problems;
  }
  assert.fail('the configuration was accepted');
}

test('a minimal file gets every default, and a missing [influxdb] section disables it', () => {
  const config = parseConfig(MINIMAL, FILE);
  assert.equal(config.agent.schedule, '15 23 * * *');
  assert.equal(config.agent.full_day, 'sun');
  assert.equal(config.agent.max_full_age, 8 * 86_400_000);
  assert.equal(config.agent.keep_full, 4);
  assert.equal(config.target.encryption, 'symmetric');
  assert.deepEqual(config.mysql.databases, ['agama']);
  assert.equal(config.mysql.enabled, true);
  assert.equal(config.influxdb.enabled, false);
  assert.equal(config.file, FILE);
});

test('the shipped example file is itself a valid configuration', () => {
  const config = parseConfig(renderExampleConfig(), FILE);
  assert.deepEqual(config.mysql.databases, ['agama']);
  assert.deepEqual(config.influxdb.databases, ['telegraf']);
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
    ['agent.keep_full = "0"', 'from 1 to 1000'],
    ['agent.timezone = "Mars/Olympus"', 'IANA time zone'],
    ['agent.schedule = "every night"', 'cron expression'],
    ['target.url = "sftp://host/backups"', 'rsync://user@host'],
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

test('the README documents every key exactly as the key table says', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  assert.ok(
    readme.includes(renderConfigTable()),
    'README.md is out of date: paste the output of renderConfigTable() into its configuration section',
  );
});
