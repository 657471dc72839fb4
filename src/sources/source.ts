// The contract every data source fulfils on the backup side. A source says which commands dump
// its databases into an empty directory and proves the result complete; running them, staging,
// manifest and upload are not its business (sources/dump.ts runs the steps).
import type { PlannedStep, SourceKind } from '../domain.js';
import type { CommandFailedError, CommandRunner, Deadline } from '../system/run-command.js';

export type { Argv, PlannedStep } from '../domain.js';

export interface DumpStep extends PlannedStep {
  /** The sentence and hint for the operator when the program fails. */
  explain?(error: CommandFailedError): Error;
}

export interface DataSource {
  readonly kind: SourceKind;
  readonly databases: readonly string[];
  /** Fast checks before anything is written: option file permissions, server reachable. */
  preflight(runner: CommandRunner): Promise<void>;
  /** For `check`: proves the server answers and the grant suffices, without writing a dump. Returns what it proved. */
  verifyAccess(runner: CommandRunner, scratch: string): Promise<string>;
  /**
   * The commands that dump every database into `dir`. May ask the server, read-only, what the
   * grant allows; throws BackupFailedError when a dump could not hold every object.
   */
  dumpSteps(runner: CommandRunner, dir: string): Promise<DumpStep[]>;
  /**
   * After the steps ran: throws BackupFailedError unless the dump in `dir` is complete. Reading a
   * dump back may take as long as writing it: `deadline` is the dump's.
   */
  proveDump(runner: CommandRunner, dir: string, deadline: Deadline): Promise<void>;
  /** Versions of the tools involved, recorded in the manifest. */
  toolVersions(runner: CommandRunner): Promise<Record<string, string>>;
}
