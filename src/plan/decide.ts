// The full-or-incremental decision, pure: the target's chain status and the clock in, a kind and
// the sentence explaining it out. Tested in memory; logged on every run; printed by --dry-run.
import type { Weekday } from '../config/values.js';
import type { BackupKind, ChainStatus, HealNotice, KindDecision } from '../domain.js';
import { newestFull } from '../duplicity/collection-status.js';

/** The weekday of the weekly full: agent.full_day, or the one full_day = auto chose for this host. */
export interface HostFullDay {
  readonly day: Weekday;
  readonly auto: boolean;
}

export interface KindInput {
  readonly status: ChainStatus;
  readonly now: Date;
  readonly fullDay: HostFullDay;
  readonly timezone: string;
  readonly maxFullAgeMs: number;
  /** --full or --incremental from the command line. */
  readonly requested?: BackupKind | undefined;
  /** Why the newest chain cannot be extended (chain-health.ts): a full is taken to heal it. */
  readonly unextendable?: HealNotice | undefined;
}

export function decideKind(input: KindInput): KindDecision {
  const full = newestFull(input.status);
  if (full === undefined) {
    return {
      kind: 'full',
      reason:
        input.requested === 'incremental'
          ? '--incremental was asked for, but the target has no backup chain: a full backup comes first'
          : 'the target has no backup chain yet: the first backup is always full',
    };
  }
  if (input.requested === 'full') return { kind: 'full', reason: '--full was asked for' };
  const heal = input.unextendable;
  if (heal !== undefined) {
    const asked = input.requested === 'incremental' ? '--incremental was asked for, but ' : '';
    return { kind: 'full', reason: `${asked}${heal.reason}`, heal };
  }
  if (input.requested !== undefined) return { kind: input.requested, reason: `--${input.requested} was asked for` };
  const ageMs = input.now.getTime() - full.getTime();
  if (ageMs > input.maxFullAgeMs) {
    return {
      kind: 'full',
      reason: `the newest full backup (${full.toISOString()}) is ${days(ageMs)} old, more than max_full_age (${days(input.maxFullAgeMs)})`,
    };
  }
  const fullDay = fullDayText(input.fullDay);
  if (weekday(input.now, input.timezone) === input.fullDay.day)
    return { kind: 'full', reason: `today is full_day (${fullDay})` };
  return {
    kind: 'incremental',
    reason: `the newest full backup is from ${full.toISOString()} (${days(ageMs)} old) and today is not full_day (${fullDay})`,
  };
}

/** "sun", or "auto: wed" when the host's identity chose the day. */
function fullDayText(fullDay: HostFullDay): string {
  return fullDay.auto ? `auto: ${fullDay.day}` : fullDay.day;
}

export function weekday(date: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short' }).format(date).toLowerCase();
}

function days(ms: number): string {
  const hours = ms / 3_600_000;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
}

/** What retention has to do after a successful full, decided from the chain status read before it. */
export interface RetentionPlan {
  /** remove-all-but-n-full: with the new full there are more chains than keep_full. */
  readonly removeOldChains: boolean;
  /** cleanup: old chains were removed, or the target held orphaned or incomplete sets. */
  readonly cleanup: boolean;
  readonly reason: string;
}

/**
 * Each of the two calls lists the whole target over ssh; on a target with fewer chains than
 * keep_full and nothing left over they change nothing, and skipping them is most of what a full
 * run costs over the plain workflow.
 */
export function planRetention(before: ChainStatus, keepFull: number): RetentionPlan {
  const chains = before.chains.length + 1;
  const leftovers = before.orphanedSets + before.incompleteSets;
  const removeOldChains = chains > keepFull;
  const counted = `${chains} chain${chains === 1 ? '' : 's'} on the target with this full, keep_full = ${keepFull}`;
  const removal = removeOldChains ? `removing the oldest ${chains - keepFull}` : 'nothing to remove';
  const extra =
    leftovers > 0 ? `; ${leftovers} orphaned or incomplete set${leftovers === 1 ? '' : 's'} to clean up` : '';
  return { removeOldChains, cleanup: removeOldChains || leftovers > 0, reason: `${counted}: ${removal}${extra}` };
}

export interface FullVerification {
  readonly verified: boolean;
  readonly reason: string;
}

/**
 * duplicity's exit code 0 after a full does not prove the set is whole on the target (a volume can
 * vanish or never land). Older chains are only removed when the target's own listing, read after
 * the upload, shows this run's full: newest, with volumes, signatures matched, and no new
 * incomplete set. Otherwise a broken full could push the last good chain out of keep_full.
 */
export function verifyNewFull(before: ChainStatus, after: ChainStatus, uploadStarted: Date): FullVerification {
  // duplicity names a set after its start, in whole seconds.
  const notBefore = Math.floor(uploadStarted.getTime() / 1000) * 1000;
  const newest = after.chains
    .flatMap((chain) => chain.sets.filter((set) => set.kind === 'full').map((full) => ({ chain, full })))
    .sort((a, b) => b.full.time.getTime() - a.full.time.getTime())[0];
  const skipped = (time: string, why: string): FullVerification => ({
    verified: false,
    reason: `retention skipped: the new full of ${time} is not complete on the target: ${why}`,
  });
  const started = new Date(notBefore).toISOString();
  if (newest === undefined) return skipped(started, 'the target lists no full backup at all');
  const time = newest.full.time.toISOString();
  if (newest.full.time.getTime() < notBefore) {
    // duplicity lists no set for a full without a manifest, nor for one whose volumes are all gone.
    return skipped(
      started,
      `the target lists it with no manifest or no volumes; its newest listed full is from ${time}`,
    );
  }
  if (!newest.chain.complete) return skipped(time, 'its chain has no matching signatures');
  if (newest.full.volumes === 0) return skipped(time, 'the target lists none of its volumes');
  const appeared = after.incompleteSets - before.incompleteSets;
  if (appeared > 0) {
    return skipped(time, `${appeared} incomplete backup set${appeared === 1 ? '' : 's'} appeared during this run`);
  }
  const volumes = `${newest.full.volumes} volume${newest.full.volumes === 1 ? '' : 's'}`;
  return { verified: true, reason: `the new full of ${time} is complete on the target (${volumes})` };
}
