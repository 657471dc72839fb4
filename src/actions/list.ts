// The restore points on the target: duplicity's chain status, with sizes from the file listing.
import type { BackupSet, SourceKind } from '../domain.js';
import { allSets } from '../duplicity/collection-status.js';
import { chainStatusFromListing } from '../duplicity/listing-chains.js';
import type { RemoteFile } from '../remote/remote.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { type AgentContext, duplicitySettings } from '../context/context.js';
import { listTarget } from './run-plan.js';

export interface RestorePoint extends BackupSet {
  readonly bytes: number;
}

export interface SourceListing {
  readonly source: SourceKind;
  readonly url: string;
  readonly points: readonly RestorePoint[];
}

export async function listRestorePoints(context: AgentContext, source: SourceKind): Promise<SourceListing> {
  // One rsync listing gives the chain and the sizes, and takes no lock of duplicity's: list answers
  // while the daemon's run holds the cache (listing-chains.test.ts keeps it equal to collection-status).
  const { files } = await listTarget(context, source);
  const sizes = sizeBySetTime(files);
  return {
    source,
    url: formatRsyncUrl(duplicitySettings(context, source).url),
    points: allSets(chainStatusFromListing(files)).map((set) => ({
      ...set,
      bytes: sizes.get(duplicityTimestamp(set.time)) ?? 0,
    })),
  };
}

/** Sums volumes, manifest and signatures per backup set, keyed by the set's (end) time. */
export function sizeBySetTime(files: readonly RemoteFile[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const file of files) {
    const match =
      /^duplicity-(?:full|full-signatures)\.(\d{8}T\d{6}Z)\.|^duplicity-(?:inc|new-signatures)\.\d{8}T\d{6}Z\.to\.(\d{8}T\d{6}Z)\./.exec(
        file.name,
      );
    const time = match?.[1] ?? match?.[2];
    if (time !== undefined) sizes.set(time, (sizes.get(time) ?? 0) + file.size);
  }
  return sizes;
}

function duplicityTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}
