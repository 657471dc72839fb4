// Views, triggers, procedures, functions and events against a real MariaDB: with the grant README
// documents they are in the backup and come back with `restore mysql` (in place and --into) and
// work; with a smaller grant `check` names what the backup would lose and every run says so.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { type AgentHost, type AgentResult, MYSQL_DATABASE, MYSQL_PASSWORD, makeAgentHost } from './harness/agent.js';
import { type BackupGrant, type MariaDb, REDUCED_GRANT, startMariaDb } from './harness/mariadb.js';
import { type SshTarget, startSshTarget } from './harness/ssh-target.js';

let mariadb: MariaDb;
let target: SshTarget;
let host: AgentHost;
/** The definitions as root read them right after they were created. */
let original = '';

const OBJECTS = [
  'CREATE TABLE t1 (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB',
  'CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, t1_id INT NOT NULL) ENGINE=InnoDB',
  'INSERT INTO t1 VALUES (1, 10), (2, 20)',
  'CREATE VIEW big_ones AS SELECT id, n FROM t1 WHERE n > 15',
  'CREATE TRIGGER t1_audit AFTER INSERT ON t1 FOR EACH ROW INSERT INTO audit (t1_id) VALUES (NEW.id)',
  'CREATE PROCEDURE add_one(IN new_id INT) INSERT INTO t1 VALUES (new_id, new_id * 10)',
  'CREATE FUNCTION doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2',
  'CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE id < 0',
];

/** As root: every view, trigger, routine and event with what defines it, one line each. */
function definitions(database: string): Promise<string> {
  const schema = `'${database}'`;
  return mariadb.sql(
    [
      `SELECT 'view', TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${schema}`,
      `SELECT 'trigger', TRIGGER_NAME, CONCAT_WS(' ', ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_STATEMENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${schema}`,
      `SELECT ROUTINE_TYPE, ROUTINE_NAME, CONCAT_WS(' ', DTD_IDENTIFIER, ROUTINE_DEFINITION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${schema}`,
      `SELECT 'event', EVENT_NAME, CONCAT_WS(' ', INTERVAL_VALUE, INTERVAL_FIELD, STATUS, EVENT_DEFINITION) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${schema}`,
    ].join(' UNION ALL ') + ' ORDER BY 1, 2',
  );
}

/** The procedure inserts, the trigger records it, the view and the function read it. */
async function assertObjectsWork(database: string): Promise<void> {
  await mariadb.sql('CALL add_one(5)', database);
  assert.equal(await mariadb.sql('SELECT doubled(n) FROM big_ones WHERE id = 5', database), '100');
  assert.equal(await mariadb.sql('SELECT t1_id FROM audit ORDER BY id DESC LIMIT 1', database), '5');
}

async function grant(privileges: BackupGrant): Promise<void> {
  await mariadb.createBackupUser('bk', MYSQL_PASSWORD, [MYSQL_DATABASE], privileges);
}

function warnings(result: AgentResult): string[] {
  return result.logs.filter((log) => log.level === 40 && log['kind'] !== undefined).map((log) => log.msg);
}

function dumpArgv(result: AgentResult): string {
  const line = result.logs.find((log) => Array.isArray(log['argv']) && log['argv'][0] === 'mariadb-dump');
  assert.ok(line, result.stdout);
  return (line['argv'] as string[]).join(' ');
}

before(async () => {
  [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
  await mariadb.sql(`CREATE DATABASE ${MYSQL_DATABASE}`);
  await mariadb.sql(OBJECTS.join(';\n'), MYSQL_DATABASE);
  original = await definitions(MYSQL_DATABASE);
  for (const name of ['big_ones', 't1_audit', 'add_one', 'doubled', 'purge_audit'])
    assert.match(original, new RegExp(`\\t${name}\\t`));
  host = await makeAgentHost({ mariadb, target });
});

after(async () => {
  await Promise.allSettled([mariadb?.stop(), target?.stop(), host?.remove()]);
});

test('with the documented grant all five come back after DROP DATABASE and restore, in place and --into, and work', async () => {
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^\[ ok \] mysql objects: the grant covers views, triggers, routines and events/m);

  const run = await host.run(['run']);
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.match(dumpArgv(run), / --routines --events agama$/);
  assert.deepEqual(warnings(run), []);

  // In place over the live database: its safety dump holds the routines and the event too.
  const over = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(over.exitCode, 0, over.stdout + over.stderr);
  const safety = /previous state saved in (\S+\.sql)/.exec(over.stdout)?.[1];
  assert.ok(safety, over.stdout);
  const saved = await readFile(safety, 'utf8');
  // Triggers keep the text they were created with, so their name may be unquoted.
  for (const object of [/PROCEDURE `add_one`/, /FUNCTION `doubled`/, /EVENT `purge_audit`/, /TRIGGER `?t1_audit`? /])
    assert.match(saved, object);

  await mariadb.sql(`DROP DATABASE ${MYSQL_DATABASE}`);
  assert.equal(await definitions(MYSQL_DATABASE), '');
  const restored = await host.run(['restore', 'mysql', '--yes']);
  assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
  assert.equal(await definitions(MYSQL_DATABASE), original);
  await assertObjectsWork(MYSQL_DATABASE);

  const copy = `${MYSQL_DATABASE}_copy`;
  const into = await host.run(['restore', 'mysql', '--yes', '--database', MYSQL_DATABASE, '--into', copy]);
  assert.equal(into.exitCode, 0, into.stdout + into.stderr);
  // The view's definition names its database; everything else is the same text.
  assert.equal(await definitions(copy), original.replaceAll(`\`${MYSQL_DATABASE}\``, `\`${copy}\``));
  await assertObjectsWork(copy);
  await mariadb.sql(`DROP DATABASE ${copy}`);
});

test('with SELECT, LOCK TABLES only, check names every object the backup would lose and the run refuses', async () => {
  await grant(REDUCED_GRANT);
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 1, check.stdout + check.stderr);
  const item = /^\[FAIL\] mysql objects: (.*)\n\s+fix: (.*)$/m.exec(check.stdout);
  assert.ok(item, check.stdout);
  const [, detail = '', fix = ''] = item;
  assert.match(detail, /1 view \(big_ones\) need SHOW VIEW/);
  assert.match(detail, /1 trigger \(t1_audit\) need TRIGGER/);
  assert.match(detail, /2 routines \(function doubled, procedure add_one\) need SELECT ON mysql\.proc/);
  assert.match(detail, /1 event \(purge_audit\) need EVENT/);
  assert.match(fix, /GRANT SHOW VIEW, TRIGGER, EVENT ON `agama`\.\* TO 'bk'@'localhost'; GRANT SELECT ON mysql\.proc/);

  // The view is visible to the backup user, so the run knows the dump would lose it.
  const run = await host.run(['run']);
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(run.stdout, /would not hold every object: 1 view \(big_ones\) need SHOW VIEW/);
  assert.equal(warnings(run).length, 4, run.stdout);
});

test('with SHOW VIEW but not the rest, the run backs up and warns on every privilege, check names the hidden objects', async () => {
  await grant({ privileges: 'SELECT, LOCK TABLES, SHOW VIEW', routines: false });
  const run = await host.run(['run']);
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.doesNotMatch(dumpArgv(run), /--routines|--events/);
  const warned = warnings(run).join('\n');
  assert.match(warned, /lacks TRIGGER for agama: triggers are left out/);
  assert.match(warned, /lacks SELECT ON mysql\.proc for agama: procedures and functions are left out/);
  assert.match(warned, /lacks EVENT for agama: events are left out/);

  const check = await host.run(['check']);
  assert.equal(check.exitCode, 1, check.stdout + check.stderr);
  assert.match(
    check.stdout,
    /^\[FAIL\] mysql objects: not in the backup: agama: 1 trigger \(t1_audit\) need TRIGGER; 2 routines .*; 1 event \(purge_audit\) need EVENT$/m,
  );
});

test('without such objects a smaller grant warns but neither check nor the run fails', async () => {
  await mariadb.sql(
    'DROP VIEW big_ones; DROP TRIGGER t1_audit; DROP PROCEDURE add_one; DROP FUNCTION doubled; DROP EVENT purge_audit',
    MYSQL_DATABASE,
  );
  await grant(REDUCED_GRANT);
  const check = await host.run(['check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.match(
    check.stdout,
    /^\[warn\] mysql objects: the grant does not cover agama: views, triggers, routines, events \(there are none now/m,
  );
  const run = await host.run(['run']);
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.equal(warnings(run).length, 4, run.stdout);
});
