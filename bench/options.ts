// What the benchmarks' command lines share: the usage message on a bad option, and the one check
// every count option needs.

/** Prints the problem and the usage line, and exits 2. */
export function exitWithUsage(usageLine: string, message: string): never {
  process.stderr.write(`${message}\n${usageLine}\n`);
  process.exit(2);
}

export function positiveInt(usageLine: string, text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    exitWithUsage(usageLine, `${what} must be a positive integer, got "${text}"`);
  return value;
}
