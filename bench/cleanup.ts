// What a benchmark started must go on every way out: the normal end, a failure, SIGINT and SIGTERM.
// Steps run once, the last registered first: what was started last usually lives inside what was
// started before it (daemons in their hosts' dirs, servers in the temp root).

const steps: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;

export function onCleanup(step: () => Promise<unknown>): void {
  // After a signal the benchmark goes on until its next await: it must not start what nobody would stop.
  if (cleaning !== undefined) throw new Error('interrupted: cleaning up, not starting anything new');
  steps.push(step);
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of steps.reverse()) {
      await step().catch((error: unknown) => process.stderr.write(`cleanup step failed: ${String(error)}\n`));
    }
  })();
  return cleaning;
}

/** Without this, Ctrl-C would end node at once and leave the servers and their temp dirs behind. */
export function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping and cleaning up\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** Progress on stderr, so that stdout holds only the tables. */
export function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
