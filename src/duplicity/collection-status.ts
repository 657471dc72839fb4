// Parses the machine-readable part of `duplicity collection-status --log-fd 3`. The format is the
// same in 0.8 and 3.x; human stdout differs between versions, so it is not used. A backup run reads
// the same status from the target's listing instead (listing-chains.ts); list, status, check and
// restore ask duplicity.
import type { BackupSet, ChainStatus } from '../domain.js';

const SET_LINE = /^ (full|inc) (\d{8}T\d{6}Z) (\d+) (enc|noenc)$/;

export function parseCollectionStatus(logFd: string): ChainStatus {
  const chains: { complete: boolean; sets: BackupSet[] }[] = [];
  let orphanedSets = 0;
  let incompleteSets = 0;
  for (const line of logFd.split('\n')) {
    if (line.startsWith('. ')) continue;
    if (line.startsWith('chain-')) {
      chains.push({ complete: line.startsWith('chain-complete'), sets: [] });
      continue;
    }
    const set = SET_LINE.exec(line);
    const current = chains.at(-1);
    if (set && current) {
      current.sets.push({
        kind: set[1] === 'full' ? 'full' : 'incremental',
        time: parseDuplicityTime(set[2] ?? ''),
        volumes: Number(set[3]),
        encrypted: set[4] === 'enc',
      });
      continue;
    }
    const counter = /^(orphaned|incomplete)-sets-num (\d+)$/.exec(line);
    if (counter?.[1] === 'orphaned') orphanedSets = Number(counter[2]);
    if (counter?.[1] === 'incomplete') incompleteSets = Number(counter[2]);
  }
  return { chains: chains.filter((chain) => chain.sets.length > 0), orphanedSets, incompleteSets };
}

/** duplicity's timestamps: 20261123T201408Z (UTC). */
export function parseDuplicityTime(text: string): Date {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) throw new Error(`not a duplicity timestamp: ${text}`);
  const [, year, month, day, hour, minute, second] = match.map(Number);
  return new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day ?? 1, hour ?? 0, minute ?? 0, second ?? 0));
}

/** The newest full backup on the target, across all chains. */
export function newestFull(status: ChainStatus): Date | undefined {
  const fulls = status.chains.flatMap((chain) =>
    chain.sets.filter((set) => set.kind === 'full').map((set) => set.time),
  );
  return fulls.sort((a, b) => b.getTime() - a.getTime())[0];
}

export function allSets(status: ChainStatus): BackupSet[] {
  return status.chains.flatMap((chain) => chain.sets);
}
