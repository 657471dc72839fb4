// The yes/no question before a restore overwrites a database. Without a terminal nobody can answer,
// so the restore refuses instead of guessing; --yes is the answer given in advance.
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../errors.js';

export function confirmer(yes: boolean): (question: string) => Promise<boolean> {
  return async (question) => {
    if (yes) return true;
    if (!process.stdin.isTTY) {
      throw new UsageError(
        'refusing to restore without confirmation: there is no terminal to ask on',
        'run it in a terminal, or pass --yes (after --dry-run shows what it will do)',
      );
    }
    const reader = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await reader.question(question)).trim());
    } finally {
      reader.close();
    }
  };
}
