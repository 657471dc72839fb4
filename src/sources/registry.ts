// The engines this agent backs up, in the order runs, `status` and the example file show them.
// A new engine is one folder in sources/ and one line here.
import type { SourceKind } from '../domain.js';
import { UsageError } from '../errors.js';
import type { Engine } from './engine.js';
import { influxdbEngine } from './influxdb/engine.js';
import { mysqlEngine } from './mysql/engine.js';
import { postgresqlEngine } from './postgresql/engine.js';

export const ENGINES: readonly Engine[] = [mysqlEngine, influxdbEngine, postgresqlEngine];

export const SOURCE_KINDS: readonly SourceKind[] = ENGINES.map((engine) => engine.kind);

export function engineOf(kind: SourceKind): Engine {
  const engine = ENGINES.find((candidate) => candidate.kind === kind);
  if (engine === undefined)
    throw new UsageError(`unknown source "${kind}": expected one of ${SOURCE_KINDS.join(', ')}`);
  return engine;
}
