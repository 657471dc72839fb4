// Atomic replacement of a source's staging directory. The new dump is built in .<source>.new and
// swapped in only after it was checked, so a crash, kill -9 or full disk mid-dump leaves the last
// good dump where it was. Between the two renames of commit() a crash leaves only .<source>.old,
// which recover() puts back. The staging filesystem is often the live database's own, so a dump
// also keeps agent.staging_reserve free there: a full disk must not reach the database.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceKind } from '../domain.js';
import { BackupFailedError } from '../errors.js';
import { formatBytes } from '../report/format.js';
import { syncDirectory } from '../system/atomic-write.js';
import { type SpaceReserve, describeReserve, headroom, readRoom, watchRoom } from '../system/free-space.js';
import { readManifest, totalSize } from './manifest.js';

export class StagingArea {
  readonly current: string;
  /** Where the next dump is written, and checked, before commit() swaps it in. */
  readonly next: string;
  private readonly previous: string;

  constructor(
    private readonly root: string,
    private readonly source: SourceKind,
  ) {
    this.current = join(root, source);
    this.next = join(root, `.${source}.new`);
    this.previous = join(root, `.${source}.old`);
  }

  /** A fresh, empty, private directory for the next dump. */
  async prepare(): Promise<string> {
    await this.recover();
    await rm(this.next, { recursive: true, force: true });
    await mkdir(this.next, { recursive: true, mode: 0o700 });
    return this.next;
  }

  async commit(): Promise<void> {
    const hadCurrent = await exists(this.current);
    if (hadCurrent) await rename(this.current, this.previous);
    await rename(this.next, this.current);
    await syncDirectory(this.root);
    if (hadCurrent) await rm(this.previous, { recursive: true, force: true });
  }

  /**
   * Runs `dump` unless the last dump's size (the new one is written beside it until commit) would
   * take the filesystem below `reserve`. The estimate can be wrong and a first dump has none, so
   * `dump` gets a signal that stops it, with the reason, once free space falls below the reserve.
   */
  async withinReserve(reserve: SpaceReserve, dump: (stop: AbortSignal) => Promise<void>): Promise<void> {
    // A staged dump whose manifest cannot be read (an older agent's) gives no estimate; the watch
    // still holds the reserve, and the new dump replaces it.
    const estimate = await this.size().catch(() => 0);
    const room = await readRoom(this.root);
    if (headroom(room, estimate, reserve) < 0) {
      const needed = estimate > 0 ? `, about ${formatBytes(estimate)} needed (the size of the last dump)` : '';
      throw new BackupFailedError(
        `not enough room for the ${this.source} dump in ${this.root}: ${formatBytes(room.free)} free${needed}, ` +
          `and ${describeReserve(reserve, room.total)} must stay free (agent.staging_reserve); ` +
          'nothing was dumped and the last dump is kept',
        ROOM_HINT,
      );
    }
    const watch = watchRoom(
      this.root,
      reserve,
      (low) =>
        new BackupFailedError(
          `stopped the ${this.source} dump: free space in ${this.root} fell to ${formatBytes(low.free)}, ` +
            `below the ${describeReserve(reserve, low.total)} that must stay free (agent.staging_reserve); ` +
            'the partial dump is removed and the last dump kept',
          ROOM_HINT,
        ),
    );
    try {
      await dump(watch.signal);
      // Space can run out after the last reading: the dump took the reserve all the same.
      await watch.finish();
    } finally {
      watch.stop();
    }
  }

  async discard(): Promise<void> {
    await rm(this.next, { recursive: true, force: true });
  }

  /** Bytes of the staged dump by its manifest; 0 when there is none yet. */
  async size(): Promise<number> {
    if (!(await this.hasDump())) return 0;
    return totalSize((await readManifest(this.current)).files);
  }

  async hasDump(): Promise<boolean> {
    await this.recover();
    return exists(this.current);
  }

  private async recover(): Promise<void> {
    if (!(await exists(this.current)) && (await exists(this.previous))) {
      await rename(this.previous, this.current);
    }
    await rm(this.previous, { recursive: true, force: true });
  }
}

const ROOM_HINT =
  'free space on that filesystem, move agent.staging_dir to a filesystem with more room, or lower agent.staging_reserve';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
