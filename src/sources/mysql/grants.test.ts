// SHOW GRANTS lines as MariaDB 10.11 printed them for the accounts of the probe (see the comments).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dumpableKinds, parseGrants } from './grants.js';

const USAGE =
  "GRANT USAGE ON *.* TO `bk`@`localhost` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'";

function kinds(lines: string[], database = 'agama'): string[] {
  return [...dumpableKinds(parseGrants(lines), database)].sort();
}

test('SELECT, LOCK TABLES alone dumps tables only', () => {
  assert.deepEqual(kinds([USAGE, 'GRANT SELECT, LOCK TABLES ON `agama`.* TO `bk`@`localhost`']), []);
});

test('the documented grant covers every kind', () => {
  const lines = [
    USAGE,
    'GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON `agama`.* TO `bk`@`localhost`',
    'GRANT SELECT ON `mysql`.`proc` TO `bk`@`localhost`',
  ];
  assert.deepEqual(kinds(lines), ['event', 'routine', 'trigger', 'view']);
  assert.deepEqual(kinds(lines, 'other'), ['routine'], 'mysql.proc is server-wide, the rest is per database');
});

test('an active role, a global grant and ALL PRIVILEGES count', () => {
  const role = [
    'GRANT `dumper` TO `ro`@`localhost`',
    USAGE,
    'GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON `agama`.* TO `dumper`',
    'GRANT SELECT ON `mysql`.`proc` TO `dumper`',
    'SET DEFAULT ROLE `dumper` FOR `ro`@`localhost`',
  ];
  assert.deepEqual(kinds(role), ['event', 'routine', 'trigger', 'view']);
  assert.deepEqual(kinds(["GRANT SELECT, SHOW VIEW, TRIGGER ON *.* TO `g`@`localhost` IDENTIFIED BY PASSWORD 'x'"]), [
    'routine',
    'trigger',
    'view',
  ]);
  assert.deepEqual(kinds(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION']), [
    'event',
    'routine',
    'trigger',
    'view',
  ]);
  assert.deepEqual(kinds(['GRANT SELECT ON `mysql`.* TO `m`@`localhost`']), ['routine']);
});

test('database patterns match like the server does, escaped wildcards literally', () => {
  assert.deepEqual(kinds(['GRANT SELECT, TRIGGER ON `ag%`.* TO `w`@`localhost`']), ['trigger']);
  assert.deepEqual(kinds(['GRANT TRIGGER ON `ag_ma`.* TO `w`@`localhost`']), ['trigger']);
  assert.deepEqual(kinds(['GRANT TRIGGER ON `ag\\_ma`.* TO `w`@`localhost`']), []);
  assert.deepEqual(kinds(['GRANT TRIGGER ON `ag\\_ma`.* TO `w`@`localhost`'], 'ag_ma'), ['trigger']);
  assert.deepEqual(kinds(['GRANT TRIGGER ON `other`.* TO `w`@`localhost`']), []);
});

test('table and column grants are not grants on the database', () => {
  assert.deepEqual(kinds(['GRANT TRIGGER ON `agama`.`t1` TO `t`@`localhost`']), []);
  assert.deepEqual(kinds(['GRANT SELECT (`name`), SHOW VIEW ON `agama`.* TO `c`@`localhost`']), ['view']);
  assert.deepEqual(kinds(['GRANT SELECT (`db`, `name`) ON `mysql`.`proc` TO `c`@`localhost`']), []);
  assert.deepEqual(
    kinds(["GRANT PROXY ON ''@'%' TO `p`@`localhost`", 'GRANT EXECUTE ON PROCEDURE `agama`.`p` TO `p`@`localhost`']),
    [],
  );
});

test('MariaDB 11.8: SHOW CREATE ROUTINE on the database is enough for routines', () => {
  assert.deepEqual(kinds(['GRANT SELECT, SHOW CREATE ROUTINE ON `agama`.* TO `bk`@`localhost`']), ['routine']);
});
