// Prometheus metrics through node_exporter's textfile collector: after each run (the daemon's or a
// manual one) one .prom file is rewritten from the state. The file is replaced atomically because node_exporter
// reads it at any moment: written as a dot file (the collector reads only *.prom) in the same
// directory, then renamed, so the agent needs write access to that directory (the unit's
// ReadWritePaths= and the package's ACL entry on Debian's directory). It is made world-readable
// explicitly because node_exporter runs as its own user and the unit's UMask=0077 would hide it.
import { type Config, enabledSourceKinds } from '../config/schema.js';
import { type AgentState, emptySourceState } from '../history/state.js';
import type { SourceKind } from '../domain.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { writeFileAtomic } from '../system/atomic-write.js';

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly samples: readonly { readonly labels: Readonly<Record<string, string>>; readonly value: number }[];
}

/** What the shipped alert rules compare each source against, from the configuration. */
export interface Watch {
  readonly sources: readonly SourceKind[];
  readonly rpoMs: number;
  readonly maxFullAgeMs: number;
}

/**
 * Renders the text exposition format. A source that never ran gets no fake zeros (a zero last
 * success would read as 56 years stale on a host installed an hour ago); it gets the time this host
 * started keeping state and its limits instead, so `time() - (last success or watched since) > rpo`
 * alerts on a host that never succeeded, at the same moment as the agent's own RPO mail.
 */
export function renderMetrics(state: AgentState, watch: Watch): string {
  const entries = watch.sources.map((source) => ({ source, entry: state.sources[source] ?? emptySourceState() }));
  const perSource = (value: number) => entries.map(({ source }) => ({ labels: { source }, value }));
  const metrics: Metric[] = [
    {
      name: 'backup_agent_last_success_timestamp_seconds',
      help: 'Unix time the newest successful backup of the source started.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastSuccess === null ? [] : [{ labels: { source }, value: seconds(entry.lastSuccess.startedAt) }],
      ),
    },
    {
      name: 'backup_agent_watched_since_timestamp_seconds',
      help: 'Unix time this host started keeping backup state (its state file was made): the age a source that never succeeded is judged by.',
      samples: perSource(seconds(state.createdAt)),
    },
    {
      name: 'backup_agent_rpo_seconds',
      help: 'agent.rpo: the newest successful backup of the source must be younger than this.',
      samples: perSource(watch.rpoMs / 1000),
    },
    {
      name: 'backup_agent_max_full_age_seconds',
      help: 'agent.max_full_age: a full backup is forced when the newest full is older than this.',
      samples: perSource(watch.maxFullAgeMs / 1000),
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
    {
      name: 'backup_agent_last_success_dump_bytes',
      help: 'Bytes dumped by the newest successful backup of the source.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.lastSuccess === null ? [] : [{ labels: { source }, value: entry.lastSuccess.bytesDumped }],
      ),
    },
    {
      name: 'backup_agent_previous_success_dump_bytes',
      help: 'Bytes dumped by the successful backup of the source before the newest one.',
      samples: entries.flatMap(({ source, entry }) =>
        entry.previousSuccessBytesDumped === null
          ? []
          : [{ labels: { source }, value: entry.previousSuccessBytesDumped }],
      ),
    },
  ];
  return metrics.map(renderMetric).join('');
}

/** Rewrites metrics.textfile, when set. Never rejects: a metrics file must not fail a backup. */
export async function writeMetrics(config: Config, state: AgentState, log: Logger): Promise<void> {
  const file = config.metrics.textfile;
  if (file === '') return;
  const watch = {
    sources: enabledSourceKinds(config),
    rpoMs: config.agent.rpo,
    maxFullAgeMs: config.agent.max_full_age,
  };
  await writeFileAtomic(file, renderMetrics(state, watch), 0o644).catch((error: unknown) =>
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
