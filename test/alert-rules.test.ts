// The Prometheus rules the package ships (prometheus/backup-agent.rules.yml), run by Debian's
// promtool: the file loads, its own rule tests pass (one per alert: fires, stays silent, resolves),
// those tests catch a rule that loses the never-succeeded case, and the rules fire on the metrics
// file the agent really writes (rendered by src/metrics/textfile.ts from recorded runs), so a
// renamed metric cannot silence an alert unnoticed. promtool comes with the `prometheus` package
// (scripts/install-deps.sh); without it these tests fail, they do not skip.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import type { SourceOutcome } from '../src/domain.js';
import { emptyState, recordOutcomes } from '../src/history/state.js';
import { renderMetrics } from '../src/metrics/textfile.js';

const RULES_DIR = new URL('../prometheus/', import.meta.url).pathname;
const RULES = join(RULES_DIR, 'backup-agent.rules.yml');
const RULE_TESTS = join(RULES_DIR, 'backup-agent.rules.test.yml');
const TIMEOUT = { timeout: 60_000 };

let dir: string;

before(async () => {
  const found = await execa('promtool', ['--version'], { reject: false });
  assert.equal(found.exitCode, 0, `promtool is missing: scripts/install-deps.sh installs it (Debian's prometheus)`);
  dir = await mkdtemp(join(tmpdir(), 'alert-rules-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function promtool(args: readonly string[], input?: string) {
  return execa('promtool', args, { reject: false, all: true, ...(input === undefined ? {} : { input }) });
}

test('promtool check rules accepts the shipped rule file', TIMEOUT, async () => {
  const checked = await promtool(['check', 'rules', RULES]);
  assert.equal(checked.exitCode, 0, checked.all);
  assert.match(checked.all, /SUCCESS: 7 rules found/);
});

test('the rule tests pass: each alert fires for the broken host and source only, and resolves', TIMEOUT, async () => {
  const tested = await promtool(['test', 'rules', RULE_TESTS]);
  assert.equal(tested.exitCode, 0, tested.all);
  assert.match(tested.all, /SUCCESS/);
});

test('the rule tests fail for a stale alert that forgets hosts that never succeeded', TIMEOUT, async () => {
  const rules = await readFile(RULES, 'utf8');
  const forgetful = rules.replace(
    '(backup_agent_last_success_timestamp_seconds or backup_agent_watched_since_timestamp_seconds)',
    'backup_agent_last_success_timestamp_seconds',
  );
  assert.notEqual(forgetful, rules, 'the stale alert has the never-succeeded fallback to remove');
  await writeFile(join(dir, 'backup-agent.rules.yml'), forgetful);
  await copyFile(RULE_TESTS, join(dir, 'backup-agent.rules.test.yml'));
  const tested = await promtool(['test', 'rules', join(dir, 'backup-agent.rules.test.yml')]);
  assert.notEqual(tested.exitCode, 0, tested.all);
  assert.match(tested.all, /alertname: BackupAgentSourceStale, time: 40m/);
  assert.match(tested.all, /instance="host-c:9100"/, 'the host that never succeeded is the one missed');
});

const MINUTE = 60_000;
const at = (minutes: number) => new Date(minutes * MINUTE);
const watch = { sources: ['mysql', 'influxdb'] as const, rpoMs: 30 * MINUTE, maxFullAgeMs: 8 * 24 * 60 * MINUTE };

function runAt(minutes: number) {
  return { startedAt: at(minutes), finishedAt: at(minutes + 1), trigger: 'daemon', slot: null };
}

function ok(source: SourceOutcome['source'], bytesDumped: number): SourceOutcome {
  return { source, result: 'ok', kind: 'full', bytesDumped, bytesUploaded: bytesDumped, durationMs: MINUTE };
}

/** The metrics file as input series of one host, unchanged for an hour (promtool's clock starts at 0). */
function asSeries(file: string, instance: string): string[] {
  return file
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const sample = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
      assert.ok(sample !== null, `unexpected line in the metrics file: ${line}`);
      const [, name, labels, value] = sample;
      const series = `${name}{${labels},instance="${instance}",job="node"}`;
      return `      - series: '${series}'\n        values: '${value}x60'`;
    });
}

test('the rules fire on the metrics file the agent writes, for the right host and source only', TIMEOUT, async () => {
  // host-a keeps state from 0; at 20m its influxdb backup succeeds and its mysql backup fails: it
  // never had a mysql success. host-b's mysql dump shrinks from 1000 to 600 bytes.
  const hostA = recordOutcomes(emptyState(at(0)), runAt(20), [
    ok('influxdb', 500),
    { source: 'mysql', result: 'failed', stage: 'dump', error: 'Access denied', bytesDumped: 0, durationMs: MINUTE },
  ]).state;
  let hostB = recordOutcomes(emptyState(at(0)), runAt(10), [ok('mysql', 1000), ok('influxdb', 500)]).state;
  hostB = recordOutcomes(hostB, runAt(20), [ok('mysql', 600), ok('influxdb', 510)]).state;
  const files = { 'host-a:9100': renderMetrics(hostA, watch), 'host-b:9100': renderMetrics(hostB, watch) };
  for (const file of Object.values(files)) {
    const lint = await promtool(['check', 'metrics'], file);
    assert.equal(lint.exitCode, 0, `promtool check metrics:\n${lint.all}\n${file}`);
  }

  const firing = (alert: string, severity: string, instance: string, source: string) =>
    `          - labels: 'ALERTS{alertname="${alert}",alertstate="firing",instance="${instance}",job="node",severity="${severity}",source="${source}"}'\n            value: 1`;
  const tests = [
    'rule_files:',
    `  - ${RULES}`,
    'evaluation_interval: 1m',
    'tests:',
    '  - interval: 1m',
    '    input_series:',
    ...Object.entries(files).flatMap(([instance, file]) => asSeries(file, instance)),
    '    promql_expr_test:',
    // 25m: host-a's mysql has been watched for less than its rpo of 30 minutes.
    '      - expr: ALERTS{alertstate="firing"}',
    '        eval_time: 25m',
    '        exp_samples:',
    firing('BackupAgentSourceFailing', 'warning', 'host-a:9100', 'mysql'),
    firing('BackupAgentBackupShrank', 'warning', 'host-b:9100', 'mysql'),
    '      - expr: ALERTS{alertstate="firing"}',
    '        eval_time: 35m',
    '        exp_samples:',
    firing('BackupAgentSourceFailing', 'warning', 'host-a:9100', 'mysql'),
    firing('BackupAgentSourceStale', 'critical', 'host-a:9100', 'mysql'),
    firing('BackupAgentBackupShrank', 'warning', 'host-b:9100', 'mysql'),
    '',
  ].join('\n');
  const testFile = join(dir, 'agent-metrics.test.yml');
  await writeFile(testFile, tests);
  const tested = await promtool(['test', 'rules', testFile]);
  assert.equal(tested.exitCode, 0, `${tested.all}\n${tests}`);
});
