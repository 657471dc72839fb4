// pg_restore --list output as PostgreSQL 15.18 printed it for a database dumped with --create.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseToc } from './archive.js';
import { scramVerifier } from './session-role.js';

const LISTING = `;
; Archive created at 2026-12-01 05:11:09 UTC
;     dbname: shop
;     TOC Entries: 11
;     Compression: 0
;
; Selected TOC Entries:
;
3350; 1262 16384 DATABASE - shop app
214; 1259 16388 TABLE public customers app
215; 1259 16395 TABLE public order lines app
3344; 0 16388 TABLE DATA public customers app
3345; 0 16395 TABLE DATA public order lines app
3346; 0 16396 TABLE DATA sales 2026 postgres
3201; 2606 16394 CONSTRAINT public customers customers_pkey app
`;

test('the table of contents names the database, its owner and every table with data, sorted', () => {
  assert.deepEqual(parseToc(LISTING), {
    database: 'shop',
    owner: 'app',
    tables: ['public.customers', 'public.order lines', 'sales.2026'],
  });
});

test('an archive without --create has no owner, one without tables none', () => {
  assert.deepEqual(parseToc(';     dbname: empty\n'), { database: 'empty', owner: null, tables: [] });
});

test('the SCRAM verifier has the form PostgreSQL stores and never contains the password', () => {
  const verifier = scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
  assert.match(verifier, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  assert.ok(!verifier.includes('pencil'));
  assert.equal(verifier, scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64')));
});
