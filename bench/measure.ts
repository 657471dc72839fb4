// Peak RSS of one process (and, separately, of its descendants) by polling /proc, bytes added to a
// target directory, the machine's load, medians and units.
//
// Why polling VmHWM and not /usr/bin/time -f %M: GNU time reports the ru_maxrss that wait4() returns
// for its child, and on Linux that value also covers the child's own waited-for children (it is the
// max over the subtree): `/usr/bin/time -f %M node -e "spawnSync(python allocating 300 MB)"` prints
// ~320 MB although node itself stays near 40 MB. The agent's children (duplicity, mariadb-dump) would
// hide the agent's own figure. VmHWM in /proc/<pid>/status is the kernel's high-water mark of that
// one process, so the last value read before it exits is its peak (up to POLL_MS before the exit).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';

const POLL_MS = 20;
/** Walking the process tree costs more than reading one status file, and children live longer. */
const TREE_EVERY = 5;

export interface RssPeaks {
  /** VmHWM of the sampled process, KiB; 0 if it could never be read. */
  readonly selfKiB: number;
  /** Highest VmHWM seen per descendant command name (comm), KiB. */
  readonly descendantsKiB: Readonly<Record<string, number>>;
  /**
   * Peak of the sum of VmRSS over the process and all its descendants at one sample (every
   * TREE_EVERY polls): the memory the whole tree held at once. Shared pages count once per process.
   */
  readonly treeKiB: number;
}

async function vmHwmKiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const found: number[] = [];
  for (const tid of tasks) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const word of text.split(/\s+/)) if (word !== '') found.push(Number(word));
  }
  return found;
}

export async function descendantsOf(pid: number): Promise<number[]> {
  const direct = await childrenOf(pid);
  const nested = await Promise.all(direct.map(descendantsOf));
  return [...direct, ...nested.flat()];
}

async function vmRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
}

/** Polls until `stop()`; call stop once the process has exited. */
export function sampleRss(pid: number): { stop(): Promise<RssPeaks> } {
  let selfKiB = 0;
  let treeKiB = 0;
  const descendants: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    for (let tick = 0; running; tick++) {
      selfKiB = Math.max(selfKiB, (await vmHwmKiB(pid)) ?? 0);
      if (tick % TREE_EVERY === 0) {
        // Read each time: a process started through setpriv bears setpriv's name until it execs.
        const own = await comm(pid);
        const tree = await descendantsOf(pid);
        let sum = await vmRssKiB(pid);
        for (const child of tree) sum += await vmRssKiB(child);
        treeKiB = Math.max(treeKiB, sum);
        for (const child of tree) {
          const [name, hwm] = [await comm(child), await vmHwmKiB(child)];
          // A child caught between fork and exec still bears its parent's name and counts its pages.
          if (name === '' || name === own || hwm === undefined) continue;
          descendants[name] = Math.max(descendants[name] ?? 0, hwm);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { selfKiB, descendantsKiB: descendants, treeKiB };
    },
  };
}

/** Every regular file under `dir` (recursively) with its size, keyed by its path relative to `dir`. */
export async function listTree(dir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  const walk = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    for (const entry of entries) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) files.set(relative(dir, child), (await stat(child)).size);
    }
  };
  await walk(dir);
  return files;
}

/** Bytes of the files present in `after` that were not in `before` (duplicity never rewrites a file). */
export function addedBytes(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const [name, size] of after) {
    if (before.has(name)) continue;
    bytes += size;
    files++;
  }
  return { bytes, files };
}

/** The three load averages, as the kernel prints them. */
export async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The value below which `share` of the sorted values lie (nearest rank). */
export function percentile(values: readonly number[], share: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(share * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export const MiB = 1024 * 1024;

export function mib(bytes: number, digits = 1): string {
  return `${(bytes / MiB).toFixed(digits)} MiB`;
}

export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The first line a tool prints (stdout or stderr: `ssh -V` uses stderr), for a benchmark's header. */
export async function firstLine(file: string, args: readonly string[]): Promise<string> {
  const result = await execa(file, args, { reject: false, stdin: 'ignore', all: true });
  return result.all.trim().split('\n')[0] ?? `${file}: ?`;
}
