// The vocabulary every module shares. Leaf module: imports nothing from the project.

/** A data source by its engine's name ("mysql", "influxdb", …; sources/registry.ts lists them). */
export type SourceKind = string;

export type BackupKind = 'full' | 'incremental';

export type Argv = readonly [string, ...string[]];

/** One command of a run's plan: what `--dry-run` prints is what the run executes. */
export interface PlannedStep {
  /** In the operator's words ("mysql dump of agama"): STATUS= shows it while it runs. */
  readonly label: string;
  readonly argv: Argv;
  /** The file its stdout goes to. */
  readonly stdoutTo?: string;
}

/** One backup set on the target, as duplicity's collection status reports it. */
export interface BackupSet {
  readonly kind: BackupKind;
  readonly time: Date;
  readonly volumes: number;
  readonly encrypted: boolean;
}

/** A full backup and the incrementals that depend on it. */
export interface Chain {
  readonly sets: readonly BackupSet[];
  /** false for duplicity's `chain-no-sig` blocks: older chains whose signatures are gone. */
  readonly complete: boolean;
}

export interface ChainStatus {
  readonly chains: readonly Chain[];
  readonly orphanedSets: number;
  readonly incompleteSets: number;
}

/** Full or incremental, and the sentence that explains why; logged and shown by --dry-run. */
export interface KindDecision {
  readonly kind: BackupKind;
  readonly reason: string;
  /** Set when the agent took a full on its own to get past a fault (a broken chain, a moved staging_dir). */
  readonly heal?: HealNotice;
}

/** A fault the agent got past by itself: logged, kept in the state file, shown by status, mailed once. */
export interface HealNotice {
  readonly kind: 'broken-chain' | 'damaged-cache' | 'staging-moved';
  /** One sentence naming the cause and what was done about it. */
  readonly reason: string;
}

export interface ManifestFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** What a finished, checked dump left in its staging directory. */
export interface DumpResult {
  readonly source: SourceKind;
  readonly dir: string;
  readonly files: readonly ManifestFile[];
  readonly bytes: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

export type SourceOutcome =
  | {
      readonly source: SourceKind;
      readonly result: 'ok';
      readonly kind: BackupKind;
      readonly bytesDumped: number;
      readonly bytesUploaded: number | null;
      readonly durationMs: number;
      /** Faults this run healed; absent or empty: none. */
      readonly notices?: readonly HealNotice[];
    }
  | {
      readonly source: SourceKind;
      readonly result: 'failed';
      readonly stage: 'dump' | 'upload' | 'retention' | 'resume';
      readonly error: string;
      readonly bytesDumped: number;
      readonly durationMs: number;
    };
