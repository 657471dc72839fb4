// A benchmark database generated inside PostgreSQL with generate_series, in the shape of
// bench/dataset.ts (MariaDB): `documents`, a wide table whose 1,700-character body mixes the same
// recurring phrases with sha512 digests (~85 % of the dump), and `events`, a narrow one. Every value
// is a function of the row id, so the same size always gives the same data, and the change of a round
// (1 % of the rows updated, spread over the key range, 0.5 % appended) can be undone exactly.
import type { Postgres } from '../test/harness/postgres.js';
import { type DatasetShape, PHRASES } from './dataset.js';

/** Rows whose id % 100 equals this are the 1 % the change updates, as in dataset.ts. */
const CHANGED_REMAINDER = 42;
const PHRASE_ARRAY = `ARRAY[${PHRASES.map((phrase) => `'${phrase}'`).join(', ')}]`;
const KINDS = "(ARRAY['view', 'edit', 'share', 'comment', 'download'])";

/** A 1,700-character body: recurring phrases and sha512 digests, a function of the id only. */
function bodyExpr(id: string): string {
  const parts = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(
    (salt, k) =>
      `(${PHRASE_ARRAY})[1 + (${id} * ${k * 2 + 3} + ${k}) % ${PHRASES.length}] || ' ' || encode(sha512(('${salt}' || ${id})::bytea), 'hex')`,
  );
  return `rpad(${parts.join(" || ' ' || ")}, 1700, ' ...')`;
}

function amountExpr(id: string): string {
  return `((${id}::bigint * 7907) % 100000) / 100.0`;
}

async function insertDocuments(pg: Postgres, database: string, from: number, to: number, documents: number) {
  await pg.sql(
    `INSERT INTO documents SELECT g, 1 + (g * 7919) % ${Math.max(1, Math.floor(documents / 50))}, 'Document ' || g, ${bodyExpr('g')}, timestamp '2020-01-01' + g * interval '97 seconds' FROM generate_series(${from}, ${to}) g`,
    database,
  );
}

async function insertEvents(pg: Postgres, database: string, from: number, to: number, documents: number) {
  await pg.sql(
    `INSERT INTO events SELECT g, 1 + (g::bigint * 2654435761) % ${documents}, ${KINDS}[1 + g % 5], ${amountExpr('g')}, timestamp '2021-01-01' + g * interval '13 seconds' FROM generate_series(${from}, ${to}) g`,
    database,
  );
}

/** Drops and generates `database`: documents (wide, ~85 % of the dump) and events (narrow). */
export async function generatePg(pg: Postgres, database: string, shape: DatasetShape): Promise<void> {
  await pg.sql(`DROP DATABASE IF EXISTS ${database}`);
  await pg.sql(`CREATE DATABASE ${database}`);
  await pg.sql(
    [
      'CREATE TABLE documents (id int PRIMARY KEY, author_id int NOT NULL, title text NOT NULL, body text NOT NULL, created timestamp NOT NULL);',
      'CREATE TABLE events (id int PRIMARY KEY, document_id int NOT NULL, kind text NOT NULL, amount numeric(10,2) NOT NULL, created timestamp NOT NULL);',
    ].join('\n'),
    database,
  );
  await insertDocuments(pg, database, 1, shape.documents, shape.documents);
  await insertEvents(pg, database, 1, shape.events, shape.documents);
  await pg.sql('VACUUM ANALYZE', database);
}

/** Before the incremental: 1 % of the rows of both tables updated, 0.5 % appended (as dataset.ts does for MariaDB). */
export async function applyPgChange(pg: Postgres, database: string, shape: DatasetShape): Promise<void> {
  await pg.sql(
    [
      `UPDATE documents SET title = title || ' (rev)', body = left(body, 600) || 'revised ' || lpad(id::text, 9, '0') || substr(body, 618) WHERE id % 100 = ${CHANGED_REMAINDER};`,
      `UPDATE events SET amount = amount + 1.25, kind = 'corrected' WHERE id % 100 = ${CHANGED_REMAINDER};`,
    ].join('\n'),
    database,
  );
  const { documents, events } = shape;
  await insertDocuments(pg, database, documents + 1, documents + Math.ceil(documents / 200), documents);
  await insertEvents(pg, database, events + 1, events + Math.ceil(events / 200), documents);
}

/**
 * Undoes applyPgChange: the added rows deleted, the changed ones recomputed from their id. PostgreSQL
 * wrote the updated rows elsewhere in the heap, and pg_dump's COPY reads the heap in its physical order,
 * so CLUSTER puts every row back where the generation (ids in ascending order) put it: each round's full
 * dumps the same rows in the same order, as InnoDB's clustered index does on the MariaDB side.
 */
export async function revertPgChange(pg: Postgres, database: string, shape: DatasetShape): Promise<void> {
  await pg.sql(
    [
      `DELETE FROM documents WHERE id > ${shape.documents};`,
      `DELETE FROM events WHERE id > ${shape.events};`,
      `UPDATE documents SET title = 'Document ' || id, body = ${bodyExpr('id')} WHERE id % 100 = ${CHANGED_REMAINDER};`,
      `UPDATE events SET amount = ${amountExpr('id')}, kind = ${KINDS}[1 + id % 5] WHERE id % 100 = ${CHANGED_REMAINDER};`,
      'CLUSTER documents USING documents_pkey;',
      'CLUSTER events USING events_pkey;',
      'ANALYZE;',
    ].join('\n'),
    database,
  );
}
