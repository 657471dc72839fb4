// Prometheus metrics through node_exporter's textfile collector: after each run (the daemon's or a
// manual one) one .prom file is rewritten from the state. The file is replaced atomically because node_exporter
// reads it at any moment: written as a dot file (the collector reads only *.prom) in the same
// directory, then renamed, so the agent needs write access to that directory (the unit's
// ReadWritePaths= and the package's ACL entry on Debian's directory). It is made world-readable
// explicitly because node_exporter runs as its own user and the unit's UMask=0077 would hide it.
import type { Config } from '../config/schema.js';
import { enabledKinds } from '../history/next-run.js';
import type { AgentState } from '../history/state.js';
import type { SourceKind } from '../domain.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { writeFileAtomic } from '../system/atomic-write.js';

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly samples: readonly { readonly labels: Readonly<Record<string, string>>; readonly value: number }[];
}

/** Renders the text exposition format; sources that never ran have no samples rather than fake zeros. */
export function renderMetrics(state: AgentState, sources: readonly SourceKind[]): string {
  const entries = sources.flatMap((source) => {
    const entry = state.sources[source];
    return entry === undefined ? [] : [{ source, entry }];
  });
  const metrics: Metric[] = [
    {
      name: 'backup_agent_last_success_timestamp_seconds',
      help: 'Unix time the newest successful backup of the source started.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastSuccess === null ? [] : [{ labels: { source }, value: seconds(entry.lastSuccess.startedAt) }],
      ),
    },
    {
      name: 'backup_agent_last_run_duration_seconds',
      help: 'Duration of the last backup run of the source, successful or not.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastRun === null ? [] : [{ labels: { source }, value: entry.lastRun.durationMs / 1000 }],
      ),
    },
    {
      name: 'backup_agent_last_run_bytes',
      help: 'Bytes of the last backup run of the source: dumped, and uploaded to the target when known.',
      samples: entries.flatMap(({ source, entry }) => {
        const run = entry.lastRun;
        if (run === null) return [];
        const dumped = { labels: { source, phase: 'dump' }, value: run.bytesDumped };
        return run.bytesUploaded === null
          ? [dumped]
          : [dumped, { labels: { source, phase: 'upload' }, value: run.bytesUploaded }];
      }),
    },
    {
      name: 'backup_agent_last_run_success',
      help: '1 if the last backup run of the source succeeded, 0 if it failed.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastRun === null ? [] : [{ labels: { source }, value: entry.lastRun.result === 'ok' ? 1 : 0 }],
      ),
    },
    {
      name: 'backup_agent_last_full_timestamp_seconds',
      help: 'Unix time the newest successful full backup of the source started.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastFull === null ? [] : [{ labels: { source }, value: seconds(entry.lastFull) }],
      ),
    },
  ];
  return metrics.map(renderMetric).join('');
}

/** Rewrites metrics.textfile, when set. Never rejects: a metrics file must not fail a backup. */
export async function writeMetrics(config: Config, state: AgentState, log: Logger): Promise<void> {
  const file = config.metrics.textfile;
  if (file === '') return;
  await writeFileAtomic(file, renderMetrics(state, enabledKinds(config)), 0o644).catch((error: unknown) =>
    log.error(
      { file },
      'cannot write the metrics file %s: %s (backup-agent check names the cause and the fix)',
      file,
      errorMessage(error),
    ),
  );
}

function renderMetric(metric: Metric): string {
  const lines = [`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} gauge`];
  for (const sample of metric.samples) {
    const labels = Object.entries(sample.labels)
      .map(([name, value]) => `${name}="${value.replace(/[\\"\n]/g, (ch) => (ch === '\n' ? '\\n' : `\\${ch}`))}"`)
      .join(',');
    lines.push(`${metric.name}{${labels}} ${sample.value}`);
  }
  return `${lines.join('\n')}\n`;
}

function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
