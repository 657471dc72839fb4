// A restore that fails half-way must say what state the database is in now: untouched, partly
// imported, or dropped with its previous state in the safety copy.
import { AgentError, BackupFailedError, errorMessage } from '../errors.js';

/** Runs `work`; a failure carries the sentence saying what state the host is in now. */
export async function inState<T>(state: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AgentError && !(error instanceof BackupFailedError)) throw error;
    const hint = error instanceof BackupFailedError && error.hint !== undefined ? ` (${error.hint})` : '';
    throw new BackupFailedError(`${errorMessage(error)}${hint}`, `state now: ${state}`, { cause: error });
  }
}
