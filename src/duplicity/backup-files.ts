// duplicity's own files, read without duplicity: the names of what it stores on the target and in
// its cache, grouped into backup sets, and the plaintext manifests of the cache. Pure, so a listing
// of the target (one rsync --list-only) can say what collection-status says, and more: which
// volumes a set should have and which it has.
import type { BackupKind } from '../domain.js';
import type { RemoteFile } from '../remote/remote.js';
import { parseDuplicityTime } from './collection-status.js';

/** One backup set: a full (start = end) or an incremental from `start` to `end`, in duplicity's time text. */
export interface SetKey {
  readonly kind: BackupKind;
  readonly start: string;
  readonly end: string;
}

export type FileRole = 'volume' | 'manifest' | 'signatures';

export interface BackupFileName {
  readonly set: SetKey;
  readonly role: FileRole;
  /** Volume number, for volumes. */
  readonly volume: number | null;
  /** A cache file duplicity is still writing (an upload in progress or killed). */
  readonly partial: boolean;
}

const TIME = '(\\d{8}T\\d{6}Z)';
// On the target .gpg (encrypted) or .gz/.difftar (--no-encryption); in the cache .sigtar.gz and a
// bare .manifest; .part while duplicity writes them.
const NAME = new RegExp(
  `^duplicity-(full|inc|full-signatures|new-signatures)\\.${TIME}(?:\\.to\\.${TIME})?\\.(?:vol(\\d+)\\.difftar|(manifest)|(sigtar))(?:\\.(?:gpg|gz|z))?(\\.part)?$`,
);

export function parseBackupFileName(name: string): BackupFileName | undefined {
  const match = NAME.exec(name);
  if (match === null) return undefined;
  const [, prefix, first, second, volume, manifest, sigtar, part] = match;
  if (first === undefined) return undefined;
  const full = prefix === 'full' || prefix === 'full-signatures';
  const signatures = prefix === 'full-signatures' || prefix === 'new-signatures';
  // A full names one time, an incremental two; signatures are .sigtar and nothing else is.
  if (full !== (second === undefined) || signatures !== (sigtar !== undefined)) return undefined;
  return {
    set: { kind: full ? 'full' : 'incremental', start: first, end: second ?? first },
    role: volume !== undefined ? 'volume' : manifest !== undefined ? 'manifest' : 'signatures',
    volume: volume === undefined ? null : Number(volume),
    partial: part !== undefined,
  };
}

export function setId(set: SetKey): string {
  return set.kind === 'full' ? `full ${set.end}` : `incremental ${set.start} to ${set.end}`;
}

/** "the full backup of 2026-12-01T02:14:05Z", for messages. */
export function describeSet(set: SetKey): string {
  return `the ${set.kind === 'full' ? 'full' : 'incremental'} backup of ${parseDuplicityTime(set.end).toISOString()}`;
}

/** A set as the target holds it: whichever of its files are there. */
export interface StoredSet extends SetKey {
  readonly manifest: RemoteFile | undefined;
  readonly signatures: RemoteFile | undefined;
  readonly volumes: ReadonlyMap<number, RemoteFile>;
}

/** The target's files grouped by set, oldest first; names that are not duplicity's are ignored. */
export function groupSets(files: readonly RemoteFile[]): StoredSet[] {
  const sets = new Map<
    string,
    SetKey & { manifest?: RemoteFile; signatures?: RemoteFile; volumes: Map<number, RemoteFile> }
  >();
  for (const file of files) {
    const parsed = parseBackupFileName(file.name);
    if (parsed === undefined || parsed.partial) continue;
    const id = setId(parsed.set);
    const set = sets.get(id) ?? { ...parsed.set, volumes: new Map<number, RemoteFile>() };
    sets.set(id, set);
    if (parsed.role === 'manifest') set.manifest = file;
    else if (parsed.role === 'signatures') set.signatures = file;
    else if (parsed.volume !== null) set.volumes.set(parsed.volume, file);
  }
  return [...sets.values()]
    .map((set) => ({ ...set, manifest: set.manifest, signatures: set.signatures }))
    .sort((a, b) => a.end.localeCompare(b.end) || kindOrder(a) - kindOrder(b) || a.start.localeCompare(b.start));
}

/** At the same end time a full comes first, as its name does in the target's listing. */
function kindOrder(set: SetKey): number {
  return set.kind === 'full' ? 0 : 1;
}

/** What a cached manifest says about its set. */
export interface Manifest {
  readonly hostname: string | null;
  /** The source directory the set was made from, as duplicity was given it. */
  readonly localdir: string | null;
  /** Volume numbers, ascending. */
  readonly volumes: readonly number[];
  /** Why the text is not a manifest duplicity finished writing; null when it is whole. */
  readonly damage: string | null;
}

/**
 * duplicity writes Hostname and Localdir, then a block per volume (StartingPath, EndingPath, Hash),
 * then "Filelist N" and N lines (0.8 and 3.x alike). A file cut short misses its tail.
 */
export function parseManifest(text: string): Manifest {
  const lines = text.split('\n');
  const field = (name: string): string | null => {
    const line = lines.find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? null : unquote(line.slice(name.length + 1));
  };
  const volumes: number[] = [];
  let hashes = 0;
  let filelist: { declared: number; at: number } | null = null;
  lines.forEach((line, index) => {
    const volume = /^Volume (\d+):$/.exec(line);
    if (volume) volumes.push(Number(volume[1]));
    if (/^\s+Hash \S+ [0-9a-f]+$/.test(line)) hashes++;
    const list = /^Filelist (\d+)$/.exec(line);
    if (list) filelist = { declared: Number(list[1]), at: index };
  });
  const damage = manifestDamage(text, lines, volumes, hashes, filelist);
  return { hostname: field('Hostname'), localdir: field('Localdir'), volumes, damage };
}

function manifestDamage(
  text: string,
  lines: readonly string[],
  volumes: readonly number[],
  hashes: number,
  filelist: { declared: number; at: number } | null,
): string | null {
  if (!text.endsWith('\n')) return 'it does not end with a newline (cut short)';
  if (volumes.length === 0) return 'it lists no volume';
  if (volumes.some((volume, index) => volume !== index + 1)) return 'its volumes are not numbered 1 to N';
  if (hashes !== volumes.length) return `it has ${hashes} volume hashes for ${volumes.length} volumes`;
  if (filelist === null) return 'it has no Filelist line';
  const entries = lines.slice(filelist.at + 1).filter((line) => /^\s+\S/.test(line)).length;
  if (entries !== filelist.declared) return `its Filelist declares ${filelist.declared} entries, ${entries} follow`;
  return null;
}

/** duplicity's Quote(): a value with unusual bytes is put in double quotes with \xNN escapes. */
function unquote(value: string): string {
  if (!(value.length >= 2 && value.startsWith('"') && value.endsWith('"'))) return value;
  const bytes: number[] = [];
  const body = Buffer.from(value.slice(1, -1), 'utf8');
  for (let index = 0; index < body.length; index++) {
    if (body[index] === 0x5c && body[index + 1] === 0x78) {
      bytes.push(parseInt(body.subarray(index + 2, index + 4).toString('latin1'), 16));
      index += 3;
    } else {
      bytes.push(body[index] ?? 0);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
