// A backup shares the host with the database it dumps: the shop's queries come first. The unit
// sets Nice= and the I/O class for the daemon (its system-call filter forbids setpriority); a
// manual run lowers its own priority here, and every child it starts (the dump client, duplicity,
// gpg, ssh) inherits it. With no I/O class set, the kernel derives the I/O priority from it.
import { getPriority, setPriority } from 'node:os';

/** The unit's Nice=; src/system/priority.test.ts holds the two together. */
export const BACKUP_NICE = 10;

/** Lowers this process to BACKUP_NICE; one already nicer (started under `nice -n 15`) stays so. */
export function yieldToDatabases(): void {
  if (getPriority() < BACKUP_NICE) setPriority(BACKUP_NICE);
}
