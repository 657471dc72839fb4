// Can the next incremental extend the newest chain on the target? duplicity does not check: with a
// volume deleted or cut short it stacks another incremental on a chain that no longer restores, and
// exits 0. With another source directory or host in the newest manifest it refuses every
// incremental ("source mismatch"). Either way only a new full helps, so the decision takes one.
// The evidence: one listing of the target, the plaintext manifests in the cache (which volumes each
// set has) and the ledger of what this agent uploaded (their sizes).
import { readFile, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { HealNotice } from '../domain.js';
import type { RemoteFile } from '../remote/remote.js';
import {
  type Manifest,
  type StoredSet,
  describeSet,
  groupSets,
  parseBackupFileName,
  parseManifest,
  setId,
} from './backup-files.js';
import type { DuplicitySettings } from './command.js';
import { type SetSource, type UploadLedger, ledgerPath, readLedger } from './upload-ledger.js';

export interface ChainEvidence {
  readonly listing: readonly RemoteFile[];
  /** The cache's manifests, by setId. */
  readonly manifests: ReadonlyMap<string, Manifest>;
  readonly ledger: UploadLedger;
}

export type ChainVerdict =
  | { readonly state: 'none' }
  | { readonly state: 'whole'; readonly sets: readonly StoredSet[] }
  | { readonly state: 'broken'; readonly problem: string };

/**
 * The chain duplicity would extend: the newest full and the incrementals after it, each starting
 * where the previous one ended. A set counts once its manifest is known (on the target, in the
 * cache or in the ledger); one nobody ever saw a manifest of is what an interrupted upload leaves,
 * which the next run resumes and cleanup removes, so it is skipped here.
 */
export function judgeNewestChain(evidence: ChainEvidence): ChainVerdict {
  const recorded = recordedBySet(evidence.ledger);
  const known = (set: StoredSet): boolean =>
    set.manifest !== undefined ||
    evidence.manifests.has(setId(set)) ||
    (recorded.get(setId(set)) ?? []).some((name) => parseBackupFileName(name)?.role === 'manifest');
  const sets = groupSets(evidence.listing).filter(known);
  const full = sets.filter((set) => set.kind === 'full').at(-1);
  if (full === undefined) return { state: 'none' };
  const chain: StoredSet[] = [full];
  for (const set of sets) {
    if (set.kind !== 'incremental' || set.start < full.start) continue;
    const previous = chain.at(-1) ?? full;
    if (set.start !== previous.end) {
      return {
        state: 'broken',
        problem: `${describeSet(set)} builds on a set ending ${set.start}, which is not on the target (the chain after ${describeSet(previous)} has a gap)`,
      };
    }
    chain.push(set);
  }
  for (const set of chain) {
    const problem = setProblem(set, evidence.manifests.get(setId(set)), recorded.get(setId(set)) ?? [], evidence);
    if (problem !== undefined) return { state: 'broken', problem };
  }
  return { state: 'whole', sets: chain };
}

function setProblem(
  set: StoredSet,
  manifest: Manifest | undefined,
  recordedNames: readonly string[],
  evidence: ChainEvidence,
): string | undefined {
  const onTarget = new Map(evidence.listing.map((file) => [file.name, file.size]));
  for (const name of recordedNames) {
    const size = onTarget.get(name);
    const uploaded = evidence.ledger.files[name] ?? 0;
    if (size === undefined) return `${name} is missing on the target`;
    if (size !== uploaded) return `${name} is ${size} bytes on the target, but was ${uploaded} bytes when uploaded`;
  }
  if (set.manifest === undefined) return `the manifest of ${describeSet(set)} is missing on the target`;
  if (set.signatures === undefined) return `the signatures of ${describeSet(set)} are missing on the target`;
  // Without a cached manifest (cache lost) the volumes must at least be numbered without a gap.
  const present = [...set.volumes.keys()];
  const expected = manifest?.volumes ?? range(Math.max(0, ...present));
  const missing = expected.find((volume) => !set.volumes.has(volume));
  if (expected.length === 0) return `${describeSet(set)} has no volume on the target`;
  if (missing !== undefined) {
    const of = manifest === undefined ? '' : ` (its manifest lists ${expected.length})`;
    return `volume ${missing} of ${describeSet(set)} is missing on the target${of}`;
  }
  return undefined;
}

function recordedBySet(ledger: UploadLedger): Map<string, string[]> {
  const bySet = new Map<string, string[]>();
  for (const name of Object.keys(ledger.files)) {
    const parsed = parseBackupFileName(name);
    if (parsed === undefined) continue;
    const id = setId(parsed.set);
    bySet.set(id, [...(bySet.get(id) ?? []), name]);
  }
  return bySet;
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1);
}

/**
 * Why duplicity would refuse to extend the chain from `current`: the last set's cached manifest
 * (what duplicity compares), else the ledger's record, names another directory or host.
 */
export function sourceChange(
  last: Manifest | undefined,
  recorded: SetSource | null,
  current: SetSource,
): string | undefined {
  const previous = {
    localdir: last?.localdir ?? recorded?.localdir ?? null,
    hostname: last?.hostname ?? recorded?.hostname ?? null,
  };
  if (previous.localdir !== null && previous.localdir !== current.localdir) {
    return `the last backup was made from ${previous.localdir}, this one is made from ${current.localdir} (agent.staging_dir changed)`;
  }
  if (previous.hostname !== null && previous.hostname !== current.hostname) {
    return `the last backup was made on host ${previous.hostname}, this host is ${current.hostname}`;
  }
  return undefined;
}

/**
 * The full-or-incremental input from the run's one listing of the target (the listing the chain
 * status is read from too) and the cache; undefined: the chain can be extended.
 */
export async function chainHeal(
  listing: readonly RemoteFile[],
  cache: Pick<DuplicitySettings, 'archiveDir' | 'name'>,
  stagedDir: string,
): Promise<{ readonly heal: HealNotice | undefined; readonly ledgerProblem: string | null }> {
  const [manifests, { ledger, problem }] = await Promise.all([
    readCachedManifests(join(cache.archiveDir, cache.name)),
    readLedger(ledgerPath(cache.archiveDir, cache.name)),
  ]);
  const verdict = judgeNewestChain({ listing, manifests, ledger });
  if (verdict.state === 'broken') {
    return {
      heal: {
        kind: 'broken-chain',
        reason: `the backup chain on the target is broken: ${verdict.problem}; a new full chain starts now and the broken one stays until retention removes it`,
      },
      ledgerProblem: problem,
    };
  }
  const last = verdict.state === 'whole' ? verdict.sets.at(-1) : undefined;
  const change =
    last === undefined
      ? undefined
      : sourceChange(manifests.get(setId(last)), ledger.source, { localdir: stagedDir, hostname: hostname() });
  return {
    heal:
      change === undefined
        ? undefined
        : {
            kind: 'staging-moved',
            reason: `${change}; duplicity refuses an incremental from another source, so a new full chain starts now`,
          },
    ledgerProblem: problem,
  };
}

/** The finished manifests in duplicity's cache of one source, by setId; none when there is no cache. */
export async function readCachedManifests(dir: string): Promise<Map<string, Manifest>> {
  const manifests = new Map<string, Manifest>();
  const names = await readdir(dir).catch(() => []);
  for (const name of names) {
    const parsed = parseBackupFileName(name);
    if (parsed?.role !== 'manifest' || parsed.partial) continue;
    manifests.set(setId(parsed.set), parseManifest(await readFile(join(dir, name), 'utf8')));
  }
  return manifests;
}
