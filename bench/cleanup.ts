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

/**
 * A benchmark's whole life: `main`, then the cleanup on every way out (the end, a failure, SIGINT,
 * SIGTERM); a failure is printed with its stack and makes the exit code 1.
 */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  cleanUpOnSignals();
  try {
    await main();
  } catch (error) {
    process.stderr.write(
      `\nBENCHMARK FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  } finally {
    log('cleaning up');
    await cleanup();
  }
}

/** Starts two servers side by side; the one that started is stopped at cleanup even when the other failed. */
export async function startBoth<A extends Stoppable, B extends Stoppable>(
  first: Promise<A>,
  second: Promise<B>,
): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'fulfilled') onCleanup(() => a.value.stop());
  if (b.status === 'fulfilled') onCleanup(() => b.value.stop());
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

interface Stoppable {
  stop(): Promise<unknown>;
}
