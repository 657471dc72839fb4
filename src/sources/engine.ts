// The contract of a database engine. Everything that differs between MySQL/MariaDB, InfluxDB and
// PostgreSQL sits behind it, in sources/<engine>/: its ini section, its checks, its dump and the
// proof that the dump is complete, its restore (safety copy, --into, undo) and its scratch import.
// actions/ only lock, plan, download, confirm and report; sources/registry.ts lists the engines.
import type { EngineSection, SectionKeys } from '../config/schema.js';
import type { Logger } from '../report/logger.js';
import type { CommandRunner, Deadline } from '../system/run-command.js';
import type { DataSource } from './source.js';

export type { EngineSection, EngineValues, SectionKeys } from '../config/schema.js';

/** What an engine's restore and verify get from the run around them. */
export interface EngineTools {
  readonly runner: CommandRunner;
  /** Not cancelled by SIGTERM: drops of scratch databases and restarts of stopped services. */
  readonly cleanup: CommandRunner;
  readonly logger: Logger;
  /** The deadline of one restore step (deadlines.restore). */
  deadline(step: string): Deadline;
}

/** A program `check` requires, and the Debian package that brings it. */
export interface ProgramNeed {
  readonly program: string;
  readonly package: string;
}

/** One line of `check`'s report. */
export interface CheckFinding {
  readonly name: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  readonly hint?: string | undefined;
}

/** A table's rows or a measurement's points: what a restore and a scratch import count. */
export interface ObjectCount {
  readonly name: string;
  readonly count: number;
  readonly unit: string;
}

export interface RestoredDatabase {
  readonly database: string;
  readonly restoredAs: string;
  /** The database as it was before the restore (a file or directory); null when it did not exist. */
  readonly safetyCopy: string | null;
  /** The command line that puts the safety copy back. */
  readonly undo: string | null;
  readonly contents: readonly ObjectCount[];
}

export interface DatabaseRestore {
  readonly database: string;
  /** The downloaded backup set, already proven against its manifest. */
  readonly dir: string;
  /** Restore as this new database; the original is not touched. */
  readonly into?: string | undefined;
  /** Root's directory for safety copies; the engine names its copy with `stamp` in it. */
  readonly safetyDir: string;
  readonly stamp: string;
  /** Progress on stderr while importing (a terminal is attached). */
  readonly showProgress: boolean;
}

/** Root's side of an engine: replaces live databases and imports into scratch ones. */
export interface Restorer {
  /** Services stopped while this engine restores, and started again afterwards whatever happens. */
  readonly stopServices: readonly string[];
  /** The command lines `restore` runs for one database, for --dry-run. */
  plannedCommands(restore: DatabaseRestore): string[];
  /**
   * Safety copy of the current database, then replace (or create `into`), then prove the result.
   * A failure is a BackupFailedError whose hint says what state the database is in now.
   */
  restore(restore: DatabaseRestore): Promise<RestoredDatabase>;
  /** `verify --import`: loads `database` from `dir` as `scratch`, compares, always drops it; returns what it proved. */
  importScratch(database: string, dir: string, scratch: string): Promise<string>;
}

export interface Engine<S extends EngineSection = EngineSection> {
  /** The source's name: the ini section, the CLI argument, the target subdirectory. */
  readonly kind: string;
  /** For people: "MySQL/MariaDB". */
  readonly title: string;
  readonly keys: SectionKeys;
  /** Programs the backup needs, for `check`. */
  programs(section: S): Promise<ProgramNeed[]>;
  /** The backup side, run as the backup user. */
  source(section: S): Promise<DataSource>;
  /** More `check` lines after the access check (e.g. objects the grant hides from the dump). */
  checks?(section: S, source: DataSource, runner: CommandRunner): Promise<CheckFinding[]>;
  /** Root's part of `check`, before it runs again as the backup user. */
  prepareCheckAsRoot?(section: S, runner: CommandRunner): Promise<void>;
  /**
   * Proves the dumps of `databases` in a downloaded set complete (the trailer, the archive's own
   * table of contents) without a database server; returns what it proved. Used by restore and verify.
   */
  proveDumps(dir: string, databases: readonly string[], tools: EngineTools): Promise<string>;
  restorer(section: S, tools: EngineTools): Promise<Restorer>;
}
