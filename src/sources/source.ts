// The contract every data source fulfils. A source writes its dump into an empty directory it is
// given and throws when the dump is not complete; staging, manifest and upload are not its business.
import type { SourceKind } from '../domain.js';
import type { CommandRunner, Deadline } from '../system/run-command.js';

export type Argv = readonly [string, ...string[]];

/** A command line as --dry-run shows it, with where its stdout would go. */
export interface PlannedCommand {
  readonly argv: Argv;
  readonly stdoutTo?: string;
}

export interface DataSource {
  readonly kind: SourceKind;
  readonly databases: readonly string[];
  /** Fast checks before anything is written: option file permissions, server reachable. */
  preflight(runner: CommandRunner): Promise<void>;
  /** For `check`: proves the server answers and the grant suffices, without writing a dump. Returns what it proved. */
  verifyAccess(runner: CommandRunner, scratch: string): Promise<string>;
  /** The command lines a dump into `dir` will run, for --dry-run. */
  dumpCommands(dir: string): PlannedCommand[];
  /**
   * Dumps every database into `dir` (empty, private); throws BackupFailedError naming the cause.
   * `deadline` bounds the dump of each database.
   */
  dump(runner: CommandRunner, dir: string, deadline: Deadline): Promise<void>;
  /** Versions of the tools involved, recorded in the manifest. */
  toolVersions(runner: CommandRunner): Promise<Record<string, string>>;
}
