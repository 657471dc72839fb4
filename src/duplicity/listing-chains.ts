// What `duplicity collection-status` reports about a target, computed from the target's file names
// alone (one rsync --list-only), so that a run decides full or incremental without starting
// duplicity. Follows duplicity 0.8.22's dup_collections.py (CollectionsStatus.set_values) step by
// step, quirks included; what it cannot see is duplicity's cache: collection-status also counts
// the cache's signatures and partial manifests, the listing counts only what the target holds.
import type { BackupSet, ChainStatus } from '../domain.js';
import type { RemoteFile } from '../remote/remote.js';
import { type StoredSet, groupSets } from './backup-files.js';
import { parseDuplicityTime } from './collection-status.js';

/** duplicity's BackupChain while it is built: a full, the incrementals that joined it, its end time. */
interface ChainInProgress {
  readonly full: StoredSet;
  readonly incrementals: StoredSet[];
  end: string;
}

export function chainStatusFromListing(files: readonly RemoteFile[]): ChainStatus {
  const stored = groupSets(files);
  // Signature files alone make no backup set; a set is complete once its manifest is there.
  const sets = stored.filter((set) => set.manifest !== undefined || set.volumes.size > 0);
  const complete = sets.filter((set) => set.manifest !== undefined);
  let incompleteSets = sets.length - complete.length;
  let orphanedSets = 0;
  const chains: ChainInProgress[] = [];
  for (const set of complete) {
    if (set.kind === 'full') chains.push({ full: set, incrementals: [], end: set.end });
    else if (!joinFirstChain(chains, set)) orphanedSets++;
  }
  chains.sort((a, b) => a.end.localeCompare(b.end));
  const latest = chains.at(-1);
  let signed = false;
  if (latest !== undefined) {
    const ends = signatureChainEnds(stored);
    const previous = listedSets(latest).at(-2);
    if (ends.has(latest.end)) signed = true;
    // duplicity drops the last incremental when only its signatures are missing. A full has no
    // end_time in duplicity's BackupSet, so this applies only when an incremental comes before it.
    else if (previous?.kind === 'incremental' && ends.has(previous.end)) {
      latest.incrementals.pop();
      incompleteSets++;
      signed = true;
    }
  }
  return {
    chains: chains
      .map((chain) => ({ sets: listedSets(chain).map(backupSet), complete: signed && chain === latest }))
      .filter((chain) => chain.sets.length > 0),
    orphanedSets,
    incompleteSets,
  };
}

/**
 * BackupChain.add_inc, tried on each chain in the order the fulls came: an incremental joins the
 * chain that ends where it starts, or replaces that chain's last incremental when both start at
 * the same time and it ends later (duplicity "prefers" it; the replaced one is counted nowhere).
 */
function joinFirstChain(chains: readonly ChainInProgress[], set: StoredSet): boolean {
  for (const chain of chains) {
    const last = chain.incrementals.at(-1);
    if (chain.end === set.start) chain.incrementals.push(set);
    else if (last !== undefined && last.start === set.start && set.end > last.end)
      chain.incrementals[chain.incrementals.length - 1] = set;
    else continue;
    chain.end = set.end;
    return true;
  }
  return false;
}

/**
 * BackupChain.get_all_sets, which collection-status prints: a full with no volume on the target
 * is false in Python (its len() is 0), so it is left out and its incrementals stand alone.
 */
function listedSets(chain: ChainInProgress): StoredSet[] {
  return chain.full.volumes.size > 0 ? [chain.full, ...chain.incrementals] : [...chain.incrementals];
}

/**
 * The end times of the target's signature chains: each full-signatures file starts one, and each
 * new-signatures file, taken by start time, extends the first chain that ends where it starts.
 */
function signatureChainEnds(stored: readonly StoredSet[]): Set<string> {
  const signed = stored.filter((set) => set.signatures !== undefined);
  const chains = signed.filter((set) => set.kind === 'full').map((set) => ({ end: set.end }));
  const increments = signed
    .filter((set) => set.kind === 'incremental')
    .sort((a, b) => a.start.localeCompare(b.start) || a.end.localeCompare(b.end));
  for (const set of increments) {
    const chain = chains.find((candidate) => candidate.end === set.start);
    if (chain !== undefined) chain.end = set.end;
  }
  return new Set(chains.map((chain) => chain.end));
}

/** One line of collection-status: a full at its time, an incremental at its end; volumes as listed. */
function backupSet(set: StoredSet): BackupSet {
  return {
    kind: set.kind,
    time: parseDuplicityTime(set.end),
    volumes: set.volumes.size,
    // duplicity takes it from the set's first file in the listing, its manifest (".manifest.gpg"
    // sorts before ".vol1.difftar.gpg"), and every set listed here has one.
    encrypted: set.manifest?.name.endsWith('.gpg') === true,
  };
}
