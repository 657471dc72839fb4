// The benchmark database `agama`, generated inside MariaDB from its SEQUENCE engine (seq_A_to_B):
// every value is a pure function of the row id, so the same size always gives the same data, the
// generation is a handful of INSERT ... SELECT statements, and the 1 % change of a round can be
// undone exactly (the changed rows are recomputed from their id, the added rows deleted).
//
//   documents (wide, ~85 % of the dump): id, author_id, title, body TEXT (fixed 1700 chars: hex
//             digests mixed with a few recurring phrases, so it compresses about like real text)
//   events    (narrow, ~15 %): id, document_id, kind, amount, created
import type { MariaDb } from '../test/harness/mariadb.js';

export const DATABASE = 'agama';

/** Characters in every documents.body. */
const BODY_CHARS = 1700;
/** Bytes one row adds to an extended-insert dump, measured on the generated data. */
const DOC_ROW_BYTES = 1_761;
const EVENT_ROW_BYTES = 56;
const WIDE_SHARE = 0.85;

const INSERT_CHUNK_DOCS = 40_000;
const INSERT_CHUNK_EVENTS = 400_000;

/** Rows whose id % 100 equals this are the ones a round updates (1 %, spread over the key range). */
const CHANGED_REMAINDER = 42;

export interface DatasetShape {
  readonly sizeMiB: number;
  readonly documents: number;
  readonly events: number;
}

export function shapeFor(sizeMiB: number): DatasetShape {
  const bytes = sizeMiB * 1024 * 1024;
  return {
    sizeMiB,
    documents: Math.round((bytes * WIDE_SHARE) / DOC_ROW_BYTES),
    events: Math.round((bytes * (1 - WIDE_SHARE)) / EVENT_ROW_BYTES),
  };
}

/** Recurring phrases in the generated text, so that it compresses like real documents do. */
export const PHRASES = [
  'the quarterly report was filed with the regional office and approved without further comment',
  'customer requested a callback regarding the delivery schedule of the outstanding items',
  'invoice corrected after review: the discount had been applied twice to the same order line',
  'meeting notes: agreed to postpone the migration until the new storage array is in place',
  'the sensor on the third floor reported values outside the expected range during the night',
  'contract renewed for another year with the same terms and an updated contact person',
  'support ticket closed: the user confirmed that the password reset link works again',
  'warehouse inventory counted twice; the difference is explained by the late returns',
  'draft sent to legal for review, comments expected before the end of next week',
  'the shipment left the depot on time but was delayed at the border for inspection',
  'monthly statistics attached; traffic grew slightly, error rates stayed flat',
  'onboarding checklist completed, accounts created, hardware handed over on monday',
] as const;

function sqlString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const PHRASE_LIST = PHRASES.map(sqlString).join(', ');

function phrase(idExpr: string, k: number): string {
  return `ELT(1 + (${idExpr} * ${k * 2 + 3} + ${k}) % ${PHRASES.length}, ${PHRASE_LIST})`;
}

function digest(idExpr: string, salt: string): string {
  return `SHA2(CONCAT('${salt}', ${idExpr}), 512)`;
}

/** SQL expression of documents.body for the row `idExpr`; fixed length. */
function bodyExpr(idExpr: string): string {
  const parts: string[] = [];
  for (const [k, salt] of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].entries())
    parts.push(phrase(idExpr, k), digest(idExpr, salt));
  return `RPAD(CONCAT_WS(' ', ${parts.join(', ')}), ${BODY_CHARS}, ' ...')`;
}

function documentSelect(idExpr: string, documents: number): string {
  return [
    idExpr,
    `1 + (${idExpr} * 7919) % ${Math.max(1, Math.floor(documents / 50))}`,
    `CONCAT('Document ', ${idExpr}, ': ', LEFT(${phrase(idExpr, 9)}, 40))`,
    bodyExpr(idExpr),
    `TIMESTAMP('2020-01-01 00:00:00') + INTERVAL ${idExpr} * 97 SECOND`,
  ].join(', ');
}

function amountExpr(idExpr: string): string {
  return `((${idExpr} * 7907) % 100000) / 100`;
}

function eventSelect(idExpr: string, documents: number): string {
  return [
    idExpr,
    `1 + (${idExpr} * 2654435761) % ${documents}`,
    `ELT(1 + ${idExpr} % 5, 'view', 'edit', 'share', 'comment', 'download')`,
    amountExpr(idExpr),
    `TIMESTAMP('2021-01-01 00:00:00') + INTERVAL ${idExpr} * 13 SECOND`,
  ].join(', ');
}

async function insertRange(
  db: MariaDb,
  table: 'documents' | 'events',
  from: number,
  to: number,
  chunk: number,
  documents: number,
): Promise<void> {
  for (let start = from; start <= to; start += chunk) {
    const end = Math.min(to, start + chunk - 1);
    const select = table === 'documents' ? documentSelect('seq', documents) : eventSelect('seq', documents);
    await db.sql(`INSERT INTO ${table} SELECT ${select} FROM seq_${start}_to_${end}`, DATABASE);
  }
}

/** Drops and regenerates `agama` for this shape. */
export async function generate(db: MariaDb, shape: DatasetShape): Promise<void> {
  await db.sql(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await db.sql(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
  await db.sql(
    [
      'CREATE TABLE documents (id INT UNSIGNED NOT NULL PRIMARY KEY, author_id INT UNSIGNED NOT NULL, title VARCHAR(120) NOT NULL, body TEXT NOT NULL, created DATETIME NOT NULL) ENGINE=InnoDB',
      'CREATE TABLE events (id INT UNSIGNED NOT NULL PRIMARY KEY, document_id INT UNSIGNED NOT NULL, kind VARCHAR(16) NOT NULL, amount DECIMAL(10,2) NOT NULL, created DATETIME NOT NULL) ENGINE=InnoDB',
    ].join(';\n'),
    DATABASE,
  );
  await insertRange(db, 'documents', 1, shape.documents, INSERT_CHUNK_DOCS, shape.documents);
  await insertRange(db, 'events', 1, shape.events, INSERT_CHUNK_EVENTS, shape.documents);
}

/** The change before each incremental: 1 % of the rows of both tables updated, 0.5 % appended. */
export async function applyChange(db: MariaDb, shape: DatasetShape): Promise<void> {
  await db.sql(
    [
      `UPDATE documents SET title = CONCAT(title, ' (rev)'), body = CONCAT(LEFT(body, 600), 'revised ', LPAD(id, 9, '0'), SUBSTRING(body, 618)) WHERE id % 100 = ${CHANGED_REMAINDER}`,
      `UPDATE events SET amount = amount + 1.25, kind = 'corrected' WHERE id % 100 = ${CHANGED_REMAINDER}`,
    ].join(';\n'),
    DATABASE,
  );
  await insertRange(
    db,
    'documents',
    shape.documents + 1,
    shape.documents + Math.ceil(shape.documents / 200),
    INSERT_CHUNK_DOCS,
    shape.documents,
  );
  await insertRange(
    db,
    'events',
    shape.events + 1,
    shape.events + Math.ceil(shape.events / 200),
    INSERT_CHUNK_EVENTS,
    shape.documents,
  );
}

/** Undoes applyChange exactly, so that every round backs up the same data. */
export async function revertChange(db: MariaDb, shape: DatasetShape): Promise<void> {
  await db.sql(
    [
      `DELETE FROM documents WHERE id > ${shape.documents}`,
      `DELETE FROM events WHERE id > ${shape.events}`,
      `UPDATE documents SET title = CONCAT('Document ', id, ': ', LEFT(${phrase('id', 9)}, 40)), body = ${bodyExpr('id')} WHERE id % 100 = ${CHANGED_REMAINDER}`,
      `UPDATE events SET amount = ${amountExpr('id')}, kind = ELT(1 + id % 5, 'view', 'edit', 'share', 'comment', 'download') WHERE id % 100 = ${CHANGED_REMAINDER}`,
    ].join(';\n'),
    DATABASE,
  );
}

/** CHECKSUM TABLE of both tables: proves the revert restored the generated data. */
export async function checksum(db: MariaDb): Promise<string> {
  return (await db.sql('CHECKSUM TABLE documents, events', DATABASE)).replace(/\s+/g, ' ');
}
