// The daemon's last log lines, kept in memory for alert mails: whoever reads the mail at 3 a.m.
// sees what led to the failure without logging in. Receives the same JSON lines as journald.

const KEPT_LINES = 40;

interface LogRecord {
  readonly time?: string;
  readonly level?: number;
  readonly msg?: string;
  readonly source?: string;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** A pino destination (write(line)) that keeps the newest lines. */
export class LogTail {
  private readonly lines: string[] = [];

  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue;
      this.lines.push(line);
    }
    if (this.lines.length > KEPT_LINES * 2) this.lines.splice(0, this.lines.length - KEPT_LINES);
  }

  /** The newest `count` lines as "time LEVEL [source] message". */
  last(count: number): string[] {
    return this.lines.slice(-Math.min(count, KEPT_LINES)).map(readable);
  }
}

function readable(line: string): string {
  let record: LogRecord;
  try {
    record = JSON.parse(line) as LogRecord;
  } catch {
    return line;
  }
  const level = LEVEL_NAMES[record.level ?? 30] ?? String(record.level);
  const source = record.source === undefined ? '' : ` [${record.source}]`;
  return `${record.time ?? ''} ${level}${source} ${record.msg ?? ''}`;
}
