// pino: readable lines on a terminal and in the journal, JSON lines anywhere else (files, pipes, tests).
import { type DestinationStream, pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Commands whose stdout is their output (list, check) log to stderr instead. */
  readonly toStderr?: boolean;
  /** Also receives every JSON line (the daemon keeps the last ones for its alert mails). */
  readonly copyTo?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.toStderr ? 2 : 1;
  const level = options.level ?? process.env['BACKUP_AGENT_LOG_LEVEL'] ?? 'info';
  const base = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  const isTerminal = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  // Synchronous on purpose: no worker thread, and nothing is lost when the process exits.
  // systemd sets JOURNAL_STREAM when stdout goes to the journal, which stamps time, pid and host itself.
  const toJournal = process.env['JOURNAL_STREAM'] !== undefined && !isTerminal;
  const output: DestinationStream = isTerminal
    ? pretty({ destination: fd, sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' })
    : toJournal
      ? pretty({ destination: fd, sync: true, colorize: false, singleLine: true, ignore: 'pid,hostname,time' })
      : pino.destination({ fd, sync: true });
  if (options.copyTo === undefined) return pino(base, output);
  // Both streams take every level: the logger's own level already decides what is written.
  return pino(
    base,
    pino.multistream([
      { stream: output, level: 'trace' },
      { stream: options.copyTo, level: 'trace' },
    ]),
  );
}
