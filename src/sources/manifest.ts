// MANIFEST.json travels with each dump to the target, so a restore can prove it got every byte.
// On the way back it is input: whoever can write to the target, or the backup user who holds the
// passphrase, can forge one, so it is parsed against a strict schema before any name in it is used.
import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { z } from 'zod';
import type { ManifestFile, SourceKind } from '../domain.js';
import { errorMessage } from '../errors.js';
import { writeFileAtomic } from '../system/atomic-write.js';
import { openRegularFile } from '../system/root-fs.js';

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
    files.push({ name: relative(dir, path), ...(await hashFile(await open(path, 'r'), true)) });
  }
  const manifest: Manifest = { format: 1, host: hostname(), ...fields, files };
  await writeFileAtomic(join(dir, CHECKSUMS_NAME), files.map((file) => `${file.sha256}  ${file.name}\n`).join(''));
  await writeFileAtomic(join(dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The names the configuration accepts for a database (config/values.ts nameList), never an option. */
const DATABASE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}$/;
/** A relative path of plain names: no '..', no absolute path, no leading '-' in any part. */
const FILE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9._$-]*(\/[A-Za-z0-9_$][A-Za-z0-9._$-]*)*$/;

const manifestSchema = z.object({
  format: z.literal(1),
  // Compared with the source being restored; never used as a name on its own.
  source: z.string().regex(/^[a-z][a-z0-9]{0,31}$/),
  host: z.string().max(255),
  databases: z.array(z.string().regex(DATABASE_NAME, 'not a plain database name')),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  tools: z.record(z.string(), z.string()),
  files: z.array(
    z.object({
      name: z.string().regex(FILE_NAME, 'not a plain relative file name').max(4096),
      size: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
});

/** Reads and checks MANIFEST.json; a file that does not fit the schema is refused, naming the field. */
export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_NAME);
  const handle = await openRegularFile(path);
  let text: string;
  try {
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'does not fit the manifest format'}`);
  }
  return parsed.data;
}

/**
 * The databases of a manifest, each checked against the configured ones: a name in a downloaded
 * set is used in SQL and paths only when the operator configured it.
 */
export function configuredDatabases(manifest: Manifest, configured: readonly string[]): string[] {
  const unknown = manifest.databases.filter((database) => !configured.includes(database));
  if (unknown.length > 0) {
    throw new Error(
      `MANIFEST.json names database(s) ${unknown.map((name) => JSON.stringify(name)).join(', ')} that are not configured (${configured.join(', ')})`,
    );
  }
  return [...manifest.databases];
}

/** Every mismatch between the files in `dir` and its manifest; empty when all match. */
export async function verifyManifest(dir: string, manifest: Manifest): Promise<string[]> {
  const problems: string[] = [];
  for (const file of manifest.files) {
    const path = join(dir, file.name);
    try {
      const actual = await hashFile(await openRegularFile(path), false);
      if (actual.size !== file.size) problems.push(`${file.name}: size ${actual.size}, manifest says ${file.size}`);
      else if (actual.sha256 !== file.sha256) problems.push(`${file.name}: sha256 differs from the manifest`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(`${file.name}: ${code === 'ENOENT' ? 'missing' : errorMessage(error)}`);
    }
  }
  return problems;
}

/**
 * One buffer for the whole file: hashing a 10 GB dump allocates nothing per chunk for the GC to
 * chase. `sync`: a dump about to be uploaded must be on disk before its manifest says so. The
 * dump program has exited, so every byte is written: the flush to disk runs while the file is
 * read back from the page cache instead of after it (0.3 s of a 500 MiB dump's hand-over).
 */
async function hashFile(handle: FileHandle, sync: boolean): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const synced = sync ? handle.datasync() : Promise.resolve();
  try {
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    await synced;
    return { size, sha256: hash.digest('hex') };
  } finally {
    // Never closed under a running datasync; its failure is the caller's error above.
    await synced.catch(() => undefined);
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
