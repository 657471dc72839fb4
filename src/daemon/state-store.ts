// Where the daemon keeps state.json: read once at start (a damaged file is moved aside, not
// trusted and not lost), written after every change. Writes are queued, because two overlapping
// atomic writes from one process would share one temporary file.
import { rename } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { type AgentState, StateFileError, readState, writeState } from './state.js';

export class StateStore {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    /** Read at each write: a SIGHUP may move agent.state_file. */
    private readonly file: () => string,
    private readonly log: Logger,
  ) {}

  /** The stored state; null when there is none, or when it was damaged and has been moved aside. */
  async load(): Promise<AgentState | null> {
    const file = this.file();
    try {
      return await readState(file);
    } catch (error) {
      if (!(error instanceof StateFileError)) throw error;
      const aside = `${file}.bad-${Date.now()}`;
      await rename(file, aside).catch(() => undefined);
      this.log.error(
        { movedTo: aside },
        '%s; starting with an empty state (the bad file is kept as %s)',
        error.message,
        aside,
      );
      return null;
    }
  }

  /** Never rejects: a full disk is logged, and the daemon goes on backing up. */
  save(state: AgentState): Promise<void> {
    const file = this.file();
    this.queue = this.queue
      .then(() => writeState(file, state))
      .catch((error: unknown) =>
        this.log.error({ file }, 'cannot write the state file %s: %s', file, errorMessage(error)),
      );
    return this.queue;
  }

  /** Resolves when every queued write has ended. */
  flushed(): Promise<void> {
    return this.queue;
  }
}
