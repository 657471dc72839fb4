// Free space on the filesystem of a directory, as an unprivileged writer sees it. The staging
// directory often shares its filesystem with the live database (/var/lib on a default Debian host):
// a dump that fills it gives MariaDB a full disk, so a dump keeps a reserve free, checked before
// it starts and watched while it runs.
import { statfs } from 'node:fs/promises';
import { formatBytes } from '../report/format.js';

/** Free space to keep: an absolute size or a share of the filesystem (agent.staging_reserve). */
export type SpaceReserve = { readonly bytes: number } | { readonly percent: number };

export interface Room {
  /** Bytes the agent user may still write: root's reserved blocks are not among them. */
  readonly free: number;
  /** The size of the filesystem, of which a reserve in percent is taken. */
  readonly total: number;
}

export async function readRoom(path: string): Promise<Room> {
  const stats = await statfs(path);
  return { free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize };
}

export function reserveBytes(reserve: SpaceReserve, total: number): number {
  return 'bytes' in reserve ? reserve.bytes : Math.ceil((total * reserve.percent) / 100);
}

/** What is left above the reserve once `more` bytes are written; negative when they do not fit. */
export function headroom(room: Room, more: number, reserve: SpaceReserve): number {
  return room.free - more - reserveBytes(reserve, room.total);
}

/** "1.0 GiB (10% of 10.0 GiB)", or "20.0 GiB" for a reserve given as a size. */
export function describeReserve(reserve: SpaceReserve, total: number): string {
  const bytes = formatBytes(reserveBytes(reserve, total));
  return 'bytes' in reserve ? bytes : `${bytes} (${reserve.percent}% of ${formatBytes(total)})`;
}

const FASTEST_READING_MS = 20;
const SLOWEST_READING_MS = 1_000;
/** Bytes per ms a writer is assumed to manage at least: a dump can start at full speed at any moment. */
const ASSUMED_RATE = (256 * 1024 * 1024) / 1000;

/**
 * The wait before the next reading: at the rate seen since the last one (or the assumed one, if
 * higher), at most half of the headroom may go meanwhile, so that the writer is caught before it
 * reaches the end of the reserve. statfs is cheap; the bounds keep a roomy filesystem at one
 * reading a second.
 */
export function nextReadingMs(headroomBytes: number, bytesPerMs: number): number {
  const ms = Math.max(0, headroomBytes) / 2 / Math.max(bytesPerMs, ASSUMED_RATE);
  return Math.min(SLOWEST_READING_MS, Math.max(FASTEST_READING_MS, Math.floor(ms)));
}

export interface RoomWatch {
  /** Aborted, with the error from `whenLow`, once free space is below the reserve. */
  readonly signal: AbortSignal;
  /** Stops the watch after one more reading, and throws its error if the reserve was reached by then. */
  finish(): Promise<void>;
  stop(): void;
}

/** Reads the free space of `path` until stopped, the first time at once. */
export function watchRoom(path: string, reserve: SpaceReserve, whenLow: (room: Room) => Error): RoomWatch {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let last: { readonly headroom: number; readonly at: number } | undefined;
  const stop = (): void => {
    stopped = true;
    clearTimeout(timer);
  };
  /** The headroom, or undefined once the signal is aborted. */
  const check = async (): Promise<number | undefined> => {
    let room: Room;
    try {
      room = await readRoom(path);
    } catch (error) {
      controller.abort(error);
      return undefined;
    }
    const left = headroom(room, 0, reserve);
    if (left >= 0) return left;
    controller.abort(whenLow(room));
    return undefined;
  };
  const read = async (): Promise<void> => {
    const left = await check();
    if (stopped || left === undefined) return;
    const now = Date.now();
    const rate = last === undefined ? 0 : (last.headroom - left) / Math.max(1, now - last.at);
    last = { headroom: left, at: now };
    timer = setTimeout(() => void read(), nextReadingMs(left, rate));
  };
  void read();
  return {
    signal: controller.signal,
    finish: async () => {
      stop();
      if (!controller.signal.aborted) await check();
      controller.signal.throwIfAborted();
    },
    stop,
  };
}
