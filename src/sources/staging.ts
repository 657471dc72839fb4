// Atomic replacement of a source's staging directory. The new dump is built in .<source>.new and
// swapped in only after it was checked, so a crash, kill -9 or full disk mid-dump leaves the last
// good dump where it was. Between the two renames of commit() a crash leaves only .<source>.old,
// which recover() puts back.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceKind } from '../domain.js';
import { syncDirectory } from '../system/atomic-write.js';
import { readManifest, totalSize } from './manifest.js';

export class StagingArea {
  readonly current: string;
  private readonly next: string;
  private readonly previous: string;

  constructor(
    private readonly root: string,
    source: SourceKind,
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
