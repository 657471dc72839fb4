// MANIFEST.json travels with each dump to the target, so a restore can prove it got every byte.
import { createHash } from 'node:crypto';
import { open, readFile, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import type { ManifestFile, SourceKind } from '../domain.js';
import { writeFileAtomic } from '../system/atomic-write.js';

export const MANIFEST_NAME = 'MANIFEST.json';
/** The same hashes in `sha256sum --check` format, for the manual restore without the agent. */
export const CHECKSUMS_NAME = 'SHA256SUMS';

export interface Manifest {
  readonly format: 1;
  readonly source: SourceKind;
  readonly host: string;
  readonly databases: readonly string[];
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly tools: Record<string, string>;
  readonly files: readonly ManifestFile[];
}

/** Hashes every file under `dir` (streamed, synced to disk) and writes the manifest beside them. */
export async function writeManifest(
  dir: string,
  fields: Omit<Manifest, 'format' | 'host' | 'files'>,
): Promise<Manifest> {
  const files: ManifestFile[] = [];
  for (const path of await listFiles(dir)) {
    files.push({ name: relative(dir, path), ...(await hashFile(path)) });
  }
  const manifest: Manifest = { format: 1, host: hostname(), ...fields, files };
  await writeFileAtomic(join(dir, CHECKSUMS_NAME), files.map((file) => `${file.sha256}  ${file.name}\n`).join(''));
  await writeFileAtomic(join(dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8')) as Manifest;
}

/** Every mismatch between the files in `dir` and its manifest; empty when all match. */
export async function verifyManifest(dir: string, manifest: Manifest): Promise<string[]> {
  const problems: string[] = [];
  for (const file of manifest.files) {
    const path = join(dir, file.name);
    try {
      const actual = await hashFile(path);
      if (actual.size !== file.size) problems.push(`${file.name}: size ${actual.size}, manifest says ${file.size}`);
      else if (actual.sha256 !== file.sha256) problems.push(`${file.name}: sha256 differs from the manifest`);
    } catch {
      problems.push(`${file.name}: missing`);
    }
  }
  return problems;
}

/** One buffer for the whole file: hashing a 10 GB dump allocates nothing per chunk for the GC to chase. */
async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const handle = await open(path, 'r');
  try {
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    await handle.datasync();
    return { size, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listFiles(path)));
    else if (entry.isFile() && entry.name !== MANIFEST_NAME && entry.name !== CHECKSUMS_NAME) found.push(path);
  }
  return found.sort();
}

export function totalSize(files: readonly ManifestFile[]): number {
  return files.reduce((sum, file) => sum + file.size, 0);
}
