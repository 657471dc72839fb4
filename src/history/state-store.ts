// Where state.json lives and how it changes. The daemon and a manual `backup-agent run` both
// record their runs in it, so every change is a read-modify-write of the file as it is now, never a
// write-back of a copy read earlier (that would erase the other's record), under a short lock
// file that serialises the two processes. A damaged file is moved aside, not trusted and not lost.
import { rename } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import type { Logger } from '../report/logger.js';
import { acquireLockWaiting } from '../system/lock.js';
import { type AgentState, StateFileError, readState, writeState } from './state.js';

/** A change is a few milliseconds of work; a holder that keeps the lock longer has a problem. */
const LOCK_WAIT_MS = 10_000;

export class StateStore {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** Read at each change: a SIGHUP may move agent.state_file. */
    private readonly file: () => string,
    private readonly log: Logger,
    /** Names this process in the lock file. */
    private readonly holder: string,
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
      this.log.error({ movedTo: aside }, '%s; a new one is written (the bad file is kept as %s)', error.message, aside);
      return null;
    }
  }

  /**
   * Applies `change` to the stored state and writes the state it returns when that differs (or
   * there was no file); `base` stands in when there is no usable file. Never rejects: a full disk
   * or a stuck lock is logged and the change is applied to `base`, so that a daemon goes on
   * backing up.
   */
  update<T extends { readonly state: AgentState }>(change: (state: AgentState) => T, base: AgentState): Promise<T> {
    const file = this.file();
    const updated = this.queue.then(async () => {
      const lock = await acquireLockWaiting(`${file}.lock`, this.holder, LOCK_WAIT_MS);
      try {
        const stored = await this.load();
        const current = stored ?? base;
        const changed = change(current);
        if (changed.state !== current || stored === null) await writeState(file, changed.state);
        return changed;
      } finally {
        await lock.release();
      }
    });
    const settled = updated.catch((error: unknown) => {
      this.log.error({ file }, 'cannot update the state file %s: %s', file, errorMessage(error));
      return change(base);
    });
    this.queue = settled.catch(() => undefined);
    return settled;
  }

  /** Resolves when every queued change has ended. */
  async flushed(): Promise<void> {
    await this.queue;
  }
}
