// Typed errors. Only main.ts turns them into exit codes; everything else throws and adds a hint.

export abstract class AgentError extends Error {
  abstract readonly exitCode: number;
  constructor(
    message: string,
    /** What the operator should do about it; printed after the message. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends AgentError {
  readonly exitCode = 2;
}

/** The configuration file is missing, unreadable or invalid (EX_CONFIG). */
export class ConfigError extends AgentError {
  readonly exitCode = 78;
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
    hint?: string,
  ) {
    super(
      problems.length === 1
        ? `${file}: ${problems[0] ?? ''}`
        : `${file}: ${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      hint,
    );
  }
}

/** Another run holds the lock (EX_TEMPFAIL): try again later. */
export class LockHeldError extends AgentError {
  readonly exitCode = 75;
}

export class NotRootError extends AgentError {
  readonly exitCode = 77;
}

/** A backup step failed; other sources may have succeeded. */
export class BackupFailedError extends AgentError {
  readonly exitCode = 1;
}

/** The run was stopped by SIGINT/SIGTERM; exit code follows the shell convention 128 + signal. */
export class InterruptedError extends AgentError {
  readonly exitCode: number;
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
