// duplicity prints a "Backup Statistics" block on stdout after a backup; the bytes that went to the
// target are TotalDestinationSizeChange (same key in 0.8 and 3.x).

export function uploadedBytes(stdoutLines: readonly string[]): number | null {
  for (const line of stdoutLines) {
    const match = /^TotalDestinationSizeChange (-?\d+)/.exec(line);
    if (match) return Number(match[1]);
  }
  return null;
}
