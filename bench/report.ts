// Turns the measured rounds into the printed tables. Figures only: nothing here passes or fails.
import type { DatasetShape } from './dataset.js';
import { median, mib, percentile, secs } from './measure.js';
import type { AgentCommand, AgentResult, Kind, PlainResult } from './workflows.js';

export interface Measured<T> {
  readonly result: T;
  /** Bytes of the files this backup added on its target. */
  readonly stored: number;
  readonly storedFiles: number;
  /** 1-minute load average when this run started: the machine is shared. */
  readonly load: string;
  /** The live-database probe's latencies (ms) of the queries sent while this run ran. */
  readonly probeMs: readonly number[];
}

export interface RoundResult {
  readonly round: number;
  readonly kind: Kind;
  readonly order: 'plain first' | 'agent first';
  readonly plain: Measured<PlainResult>;
  readonly agent: Measured<AgentResult>;
  /** The probe's latencies (ms) in the quiet window just before this pair of runs. */
  readonly idleProbeMs: readonly number[];
  /** Two sources: each source's part of the plain workflow, which ran them one after the other. */
  readonly plainBySource?: Readonly<Record<string, PlainResult>>;
}

export interface SizeResult {
  /** `single` (MariaDB only) or `two` (MariaDB and PostgreSQL, half the size each). */
  readonly scenario: string;
  /** The sources backed up, in the order the plain workflow runs them. */
  readonly sources: readonly string[];
  /** e.g. "loopback" or "100 Mbit/s, 20 ms". */
  readonly link: string;
  /** "gpg" (symmetric, the default) or "none". */
  readonly encryption: string;
  readonly shape: DatasetShape;
  readonly generateMs: number;
  /** Bytes of the plain full dump (of every source): the size the shape was aiming at. */
  readonly dumpBytes: number;
  readonly rounds: readonly RoundResult[];
}

const KINDS: readonly Kind[] = ['full', 'incremental'];

export function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function ofKind(size: SizeResult, kind: Kind): RoundResult[] {
  return size.rounds.filter((round) => round.kind === kind);
}

function peakMiB(rounds: readonly RoundResult[]): number {
  return Math.max(...rounds.map((round) => round.agent.result.rss.selfKiB)) / 1024;
}

function treePeakMiB(rounds: readonly RoundResult[], side: 'plain' | 'agent'): number {
  return (
    Math.max(
      ...rounds.map((round) =>
        side === 'agent'
          ? round.agent.result.rss.treeKiB
          : Math.max(round.plain.result.dumpRss.treeKiB, round.plain.result.duplicityRss.treeKiB),
      ),
    ) / 1024
  );
}

function ratioText(value: number): string {
  return value.toFixed(2);
}

/** The headline: medians per link, size and kind, the ratios agent ÷ plain, bytes and memory. */
export function formatSummary(sizes: readonly SizeResult[]): string {
  const rows: string[][] = [
    [
      'sources',
      'encryption',
      'link',
      'dump',
      'backup',
      'plain wall',
      'agent wall',
      'agent/plain',
      '(per round)',
      'plain stored',
      'agent stored',
      'stored a/p',
      'agent RSS',
      'agent tree',
      'plain tree',
    ],
  ];
  for (const size of sizes) {
    for (const kind of KINDS) {
      const rounds = ofKind(size, kind);
      const plain = median(rounds.map((r) => r.plain.result.wallMs));
      const agent = median(rounds.map((r) => r.agent.result.wallMs));
      const ratios = rounds.map((r) => r.agent.result.wallMs / r.plain.result.wallMs);
      const [plainStored, agentStored] = [
        median(rounds.map((r) => r.plain.stored)),
        median(rounds.map((r) => r.agent.stored)),
      ];
      rows.push([
        size.sources.join('+'),
        size.encryption,
        size.link,
        mib(size.dumpBytes, 0),
        kind,
        secs(plain),
        secs(agent),
        ratioText(agent / plain),
        `${ratioText(Math.min(...ratios))} .. ${ratioText(Math.max(...ratios))}`,
        mib(plainStored, 2),
        mib(agentStored, 2),
        (agentStored / plainStored).toFixed(3),
        `${peakMiB(rounds).toFixed(1)} MiB`,
        `${treePeakMiB(rounds, 'agent').toFixed(1)} MiB`,
        `${treePeakMiB(rounds, 'plain').toFixed(1)} MiB`,
      ]);
    }
  }
  const lines = [table(rows, new Set([5, 6, 7, 9, 10, 11, 12, 13, 14]))];
  lines.push(
    'agent/plain: ratio of the medians; (per round): the ratio of each interleaved pair. stored: bytes the backup',
    'added on its target. agent RSS: VmHWM of the agent node process (max over rounds); agent tree: peak of the',
    'summed VmRSS of node and all its children at one sample (100 ms); plain tree: the same for mysqldump and',
    'for duplicity with its children (the larger; they run one after the other). mysql+postgresql: the two-source',
    'host, half the size in each; plain dumps and uploads one source after the other, the agent runs them side by side.',
  );
  // Per scenario: the two-source host's dumps are another size than the single host's at the same --sizes.
  const scenarios = new Set(sizes.map((size) => size.scenario));
  const oneSizeEach = [...scenarios].every(
    (scenario) =>
      new Set(sizes.filter((size) => size.scenario === scenario).map((size) => size.shape.sizeMiB)).size < 2,
  );
  if (oneSizeEach) {
    lines.push('(one size only: give two sizes, e.g. --sizes 50,500, to see whether the peak grows with the dump)');
  }
  return lines.join('\n');
}

function latencyPair(values: readonly number[]): string {
  if (values.length === 0) return '-';
  return `${percentile(values, 0.5).toFixed(1)} / ${percentile(values, 0.99).toFixed(1)}`;
}

/** The live-database probe: p50 / p99 latency idle, while plain ran and while the agent ran. */
export function formatProbe(sizes: readonly SizeResult[], ratePerSecond: number): string {
  const rows: string[][] = [
    [
      'sources',
      'encryption',
      'link',
      'dump',
      'backup',
      'idle p50/p99',
      'plain p50/p99',
      'agent p50/p99',
      'agent p99 / plain p99',
      'agent p99 / idle p99',
      'queries idle/plain/agent',
    ],
  ];
  for (const size of sizes) {
    for (const kind of KINDS) {
      const rounds = ofKind(size, kind);
      const idle = rounds.flatMap((r) => r.idleProbeMs);
      const plain = rounds.flatMap((r) => r.plain.probeMs);
      const agent = rounds.flatMap((r) => r.agent.probeMs);
      rows.push([
        size.sources.join('+'),
        size.encryption,
        size.link,
        mib(size.dumpBytes, 0),
        kind,
        latencyPair(idle),
        latencyPair(plain),
        latencyPair(agent),
        (percentile(agent, 0.99) / percentile(plain, 0.99)).toFixed(2),
        (percentile(agent, 0.99) / percentile(idle, 0.99)).toFixed(2),
        `${idle.length}/${plain.length}/${agent.length}`,
      ]);
    }
  }
  return [
    `live-database probe (ms; alternating primary-key reads and single-row updates on probe.accounts, one`,
    `connection, at most ${ratePerSecond}/s; pooled over the rounds):`,
    table(rows, new Set([5, 6, 7, 8, 9, 10])),
  ].join('\n');
}

/** The dumps proper: not the access checks, whose labels say so. */
const DUMP_LABELS: ReadonlySet<string> = new Set(['mariadb-dump', 'pg_dump', 'pg_dumpall']);
const UPLOAD_LABELS: ReadonlySet<string> = new Set(['duplicity full', 'duplicity incremental']);

function dumpsOf(result: AgentResult, source?: string): AgentCommand[] {
  return result.commands.filter((c) => DUMP_LABELS.has(c.label) && (source === undefined || c.source === source));
}

function uploadsOf(result: AgentResult, source?: string): AgentCommand[] {
  return result.commands.filter((c) => UPLOAD_LABELS.has(c.label) && (source === undefined || c.source === source));
}

/**
 * The agent's fixed cost per run (ms): spawn to the first dump's start, `source`'s last dump's end to
 * its duplicity's start (hash, fsync, checks, the archive's read-back, manifest, whatever of the chain
 * reading outlasts the dump, the listing), and the last duplicity's end to exit.
 */
export function fixedCost(
  result: AgentResult,
  source = 'mysql',
): {
  beforeDumpMs: number;
  dumpToUploadMs: number;
  afterUploadMs: number;
} {
  const firstDumpStart = Math.min(...dumpsOf(result).map((c) => c.endMs - c.durationMs));
  const dump = dumpsOf(result, source).at(-1);
  const upload = uploadsOf(result, source).at(-1);
  const lastUploadEnd = Math.max(...uploadsOf(result).map((c) => c.endMs));
  return {
    beforeDumpMs: Number.isFinite(firstDumpStart) ? firstDumpStart : Number.NaN,
    dumpToUploadMs:
      dump === undefined || upload === undefined ? Number.NaN : upload.endMs - upload.durationMs - dump.endMs,
    afterUploadMs: Number.isFinite(lastUploadEnd) ? result.wallMs - lastUploadEnd : Number.NaN,
  };
}

/** A source's part of an agent run: its summary's duration, its dumps and its duplicity backup (ms). */
function agentPart(result: AgentResult, source: string): { runMs: number; dumpMs: number; uploadMs: number } {
  const total = (commands: readonly AgentCommand[]) => commands.reduce((sum, c) => sum + c.durationMs, 0);
  const runMs = result.summaries[source]?.['durationMs'];
  return {
    runMs: typeof runMs === 'number' ? runMs : Number.NaN,
    dumpMs: total(dumpsOf(result, source)),
    uploadMs: total(uploadsOf(result, source)),
  };
}

/** The two-source host: each source's time on each side, the plain sum and the agent's side-by-side wall. */
export function formatPerSource(sizes: readonly SizeResult[]): string {
  const several = sizes.filter((size) => size.sources.length > 1);
  if (several.length === 0) return '';
  const sources = [...new Set(several.flatMap((size) => size.sources))];
  const rows: string[][] = [
    [
      'encryption',
      'link',
      'dump',
      'backup',
      ...sources.map((source) => `plain ${source}`),
      'plain total',
      ...sources.map((source) => `agent ${source}`),
      'agent wall',
      'agent/plain',
    ],
  ];
  for (const size of several) {
    for (const kind of KINDS) {
      const rounds = ofKind(size, kind);
      const plain = median(rounds.map((r) => r.plain.result.wallMs));
      const agent = median(rounds.map((r) => r.agent.result.wallMs));
      rows.push([
        size.encryption,
        size.link,
        mib(size.dumpBytes, 0),
        kind,
        ...sources.map((source) => secs(median(rounds.map((r) => r.plainBySource?.[source]?.wallMs ?? Number.NaN)))),
        secs(plain),
        ...sources.map((source) => secs(median(rounds.map((r) => agentPart(r.agent.result, source).runMs)))),
        secs(agent),
        ratioText(agent / plain),
      ]);
    }
  }
  return [
    'two sources (MariaDB + PostgreSQL, half the size each; medians): plain runs them one after the other as a cron',
    "script would, the agent side by side in one run. agent <source>: that source's duration in the agent's summary.",
    table(rows, new Set(rows[0]?.map((_, i) => i).filter((i) => i > 3))),
  ].join('\n');
}

function commandTotals(result: AgentResult): Map<string, number> {
  const totals = new Map<string, number>();
  for (const command of result.commands) {
    totals.set(command.label, (totals.get(command.label) ?? 0) + command.durationMs);
  }
  return totals;
}

/** Every round of one size, where the time goes, and the memory of the processes around the agent. */
export function formatSize(size: SizeResult): string {
  const { shape } = size;
  const lines = [
    `== ${size.sources.join(' + ')}, encryption ${size.encryption}, link ${size.link}, ${shape.sizeMiB} MiB asked${size.sources.length > 1 ? ' per source' : ''}: ` +
      `full dump ${mib(size.dumpBytes)}; documents ${shape.documents.toLocaleString('en')} rows, events ${shape.events.toLocaleString('en')} rows` +
      `${size.sources.length > 1 ? ' in each' : ''}; generated in ${secs(size.generateMs)} ==`,
  ];

  const perRound: string[][] = [
    [
      'round',
      'backup',
      'order',
      'plain wall',
      'agent wall',
      'agent/plain',
      'plain stored',
      'agent stored',
      'agent RSS',
      'load (plain/agent)',
    ],
  ];
  for (const r of size.rounds) {
    perRound.push([
      String(r.round),
      r.kind,
      r.order,
      secs(r.plain.result.wallMs),
      secs(r.agent.result.wallMs),
      (r.agent.result.wallMs / r.plain.result.wallMs).toFixed(3),
      `${mib(r.plain.stored, 2)} (${r.plain.storedFiles} files)`,
      `${mib(r.agent.stored, 2)} (${r.agent.storedFiles} files)`,
      `${(r.agent.result.rss.selfKiB / 1024).toFixed(1)} MiB`,
      `${r.plain.load} / ${r.agent.load}`,
    ]);
  }
  lines.push(table(perRound, new Set([3, 4, 5, 6, 7, 8])));

  lines.push('', 'where the time goes (medians over rounds, seconds; agent steps as its own log reports them):');
  const breakdown: string[][] = [['', ...KINDS]];
  const cell = (kind: Kind, pick: (r: RoundResult) => number): string =>
    (median(ofKind(size, kind).map(pick)) / 1000).toFixed(2);
  const several = size.sources.length > 1;
  if (several) {
    for (const source of size.sources) {
      const part = (r: RoundResult): PlainResult | undefined => r.plainBySource?.[source];
      breakdown.push([
        `plain ${source}: dump > file`,
        ...KINDS.map((k) => cell(k, (r) => part(r)?.dumpMs ?? Number.NaN)),
      ]);
      breakdown.push([
        `plain ${source}: duplicity`,
        ...KINDS.map((k) => cell(k, (r) => part(r)?.duplicityMs ?? Number.NaN)),
      ]);
    }
    breakdown.push(['plain: total (one after the other)', ...KINDS.map((k) => cell(k, (r) => r.plain.result.wallMs))]);
  } else {
    breakdown.push(['plain: mysqldump > file', ...KINDS.map((k) => cell(k, (r) => r.plain.result.dumpMs))]);
    breakdown.push(['plain: duplicity', ...KINDS.map((k) => cell(k, (r) => r.plain.result.duplicityMs))]);
    breakdown.push(['plain: total', ...KINDS.map((k) => cell(k, (r) => r.plain.result.wallMs))]);
  }
  breakdown.push([
    'agent: spawn -> first log line',
    ...KINDS.map((k) => cell(k, (r) => r.agent.result.firstLogMs ?? Number.NaN)),
  ]);
  const labels: string[] = [];
  for (const r of size.rounds)
    for (const c of r.agent.result.commands) if (!labels.includes(c.label)) labels.push(c.label);
  for (const label of labels) {
    breakdown.push([
      `agent: ${label}`,
      ...KINDS.map((k) => cell(k, (r) => commandTotals(r.agent.result).get(label) ?? 0)),
    ]);
  }
  breakdown.push([
    'agent: wall - sum of commands (< 0: they overlapped)',
    ...KINDS.map((k) =>
      cell(k, (r) => r.agent.result.wallMs - [...commandTotals(r.agent.result).values()].reduce((a, b) => a + b, 0)),
    ),
  ]);
  if (several) {
    for (const source of size.sources) {
      const part = (r: RoundResult) => agentPart(r.agent.result, source);
      breakdown.push([`agent ${source}: its run (summary)`, ...KINDS.map((k) => cell(k, (r) => part(r).runMs))]);
      breakdown.push([`agent ${source}: dump`, ...KINDS.map((k) => cell(k, (r) => part(r).dumpMs))]);
      breakdown.push([`agent ${source}: duplicity`, ...KINDS.map((k) => cell(k, (r) => part(r).uploadMs))]);
    }
  }
  breakdown.push([
    `agent: total${several ? ' (sources side by side)' : ''}`,
    ...KINDS.map((k) => cell(k, (r) => r.agent.result.wallMs)),
  ]);
  breakdown.push([
    `agent fixed cost: spawn -> ${several ? 'the first dump' : 'mariadb-dump'} starts`,
    ...KINDS.map((k) => cell(k, (r) => fixedCost(r.agent.result).beforeDumpMs)),
  ]);
  for (const source of size.sources) {
    breakdown.push([
      several
        ? `agent fixed cost: ${source} dump ends -> its duplicity starts`
        : 'agent fixed cost: mariadb-dump ends -> duplicity starts',
      ...KINDS.map((k) => cell(k, (r) => fixedCost(r.agent.result, source).dumpToUploadMs)),
    ]);
  }
  breakdown.push([
    `agent fixed cost: ${several ? 'the last ' : ''}duplicity backup ends -> exit`,
    ...KINDS.map((k) => cell(k, (r) => fixedCost(r.agent.result).afterUploadMs)),
  ]);
  lines.push(table(breakdown, new Set([1, 2])));

  const peaks = (self: (r: RoundResult) => number, children: (r: RoundResult) => Readonly<Record<string, number>>) => {
    const merged: Record<string, number> = {};
    let top = 0;
    for (const r of size.rounds) {
      top = Math.max(top, self(r));
      for (const [name, kib] of Object.entries(children(r))) merged[name] = Math.max(merged[name] ?? 0, kib);
    }
    const parts = Object.entries(merged)
      .sort((a, b) => b[1] - a[1])
      .map(([name, kib]) => `${name} ${(kib / 1024).toFixed(0)}`);
    return `${(top / 1024).toFixed(1)} MiB${parts.length > 0 ? `; its children: ${parts.join(', ')} MiB` : ''}`;
  };
  lines.push(
    '',
    'peak RSS (VmHWM, max over rounds):',
    `  agent node process: ${peaks(
      (r) => r.agent.result.rss.selfKiB,
      (r) => r.agent.result.rss.descendantsKiB,
    )}`,
    `  plain duplicity:    ${peaks(
      (r) => r.plain.result.duplicityRss.selfKiB,
      (r) => r.plain.result.duplicityRss.descendantsKiB,
    )}`,
    `  plain ${several ? 'dumps (larger):' : 'mysqldump:   '} ${(Math.max(...size.rounds.map((r) => r.plain.result.dumpRss.selfKiB)) / 1024).toFixed(1)} MiB`,
    `  whole tree (summed VmRSS at one sample): agent ${(Math.max(...size.rounds.map((r) => r.agent.result.rss.treeKiB)) / 1024).toFixed(1)} MiB, ` +
      `plain duplicity ${(Math.max(...size.rounds.map((r) => r.plain.result.duplicityRss.treeKiB)) / 1024).toFixed(1)} MiB`,
  );
  return lines.join('\n');
}

/** `--name value` / `--name=value` pairs of a command line; positionals (source, URL) are left out. */
function optionsOf(argv: readonly string[], positionals: number): Map<string, string> {
  const options = new Map<string, string>();
  const words = argv.slice(0, argv.length - positionals);
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    if (!word.startsWith('-')) continue;
    const equals = word.indexOf('=');
    if (equals > 0) options.set(word.slice(0, equals), word.slice(equals + 1));
    else if (words[i + 1] !== undefined && !(words[i + 1] ?? '').startsWith('-')) options.set(word, words[++i] ?? '');
    else options.set(word, '');
  }
  return options;
}

/** How two command lines differ, option by option; ssh options compared one by one. */
export function formatOptionDiff(
  what: string,
  plain: readonly string[],
  agent: readonly string[],
  positionals: number,
): string {
  const [p, a] = [optionsOf(plain, positionals), optionsOf(agent, positionals)];
  const show = (name: string, value: string): string => (value === '' ? name : `${name} ${value}`);
  const lines = [`${what}:`];
  const same = [...p].filter(([name, value]) => a.get(name) === value).map(([name, value]) => show(name, value));
  lines.push(`  same on both:      ${same.join(' ') || '-'}`);
  const onlyAgent = [...a].filter(([name]) => !p.has(name)).map(([name, value]) => show(name, value));
  lines.push(`  only the agent:    ${onlyAgent.join(' ') || '-'}`);
  const onlyPlain = [...p].filter(([name]) => !a.has(name)).map(([name, value]) => show(name, value));
  lines.push(`  only plain:        ${onlyPlain.join(' ') || '-'}`);
  for (const [name, value] of p) {
    const other = a.get(name);
    if (other === undefined || other === value) continue;
    if (name === '--ssh-options') {
      const plainSsh = new Set(value.split(' '));
      const extra = other.split(' ').filter((option) => !plainSsh.has(option));
      lines.push(`  ${name}: the agent adds ${extra.join(' ')}`);
    } else {
      lines.push(`  ${name}: plain ${value}, agent ${other}`);
    }
  }
  return lines.join('\n');
}
