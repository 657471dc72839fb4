// A restore's import can take an hour: on a terminal, root sees how far the client has read its
// input, taken from the kernel's position of the child's stdin (the agent never reads the dump).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes } from '../report/format.js';

export interface ImportProgress {
  /** The runner's onStart: starts following the child's stdin. */
  readonly onStart: (pid: number) => void;
  /** Ends the progress line. */
  stop(): void;
}

/** Progress of importing `size` bytes into `database`, on stderr every second; nothing when `show` is false. */
export function importProgress(database: string, size: number, show: boolean): ImportProgress {
  let timer: NodeJS.Timeout | undefined;
  return {
    onStart: (pid) => {
      if (!show) return;
      timer = setInterval(() => {
        void readPosition(pid).then((position) => {
          if (position !== undefined)
            process.stderr.write(
              `\r  importing ${database}: ${formatBytes(position)} of ${formatBytes(size)} (${Math.floor((100 * position) / Math.max(size, 1))}%)   `,
            );
        });
      }, 1000);
    },
    stop: () => {
      if (timer === undefined) return;
      clearInterval(timer);
      process.stderr.write('\n');
    },
  };
}

async function readPosition(pid: number): Promise<number | undefined> {
  try {
    const info = await readFile(join('/proc', String(pid), 'fdinfo', '0'), 'utf8');
    const match = /^pos:\s+(\d+)/m.exec(info);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
