// Runs duplicity operations and turns their failures into operator-facing errors. Command lines
// come from command.ts; this file only adds the environment and the reading of results.
import type { BackupKind, ChainStatus, PlannedStep } from '../domain.js';
import { CommandFailedError, type CommandRunner, type Deadline } from '../system/run-command.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';
import { parseCollectionStatus } from './collection-status.js';
import {
  type DuplicitySettings,
  backupCommand,
  cleanupCommand,
  collectionStatusCommand,
  removeAllButNFullCommand,
  restoreCommand,
} from './command.js';
import { PERMANENT_REFUSAL } from '../remote/failures.js';
import { explainDuplicityFailure } from './failures.js';
import { uploadedBytes } from './statistics.js';

/** Which retention calls a full makes (plan/decide.ts planRetention decides). */
export interface RetentionSteps {
  readonly removeOldChains: boolean;
  readonly cleanup: boolean;
}

export class Duplicity {
  constructor(
    private readonly runner: CommandRunner,
    private readonly settings: DuplicitySettings,
    private readonly env: Readonly<Record<string, string>>,
    /** deadlines.target and deadlines.restore, in ms; an upload's deadline depends on its size and is passed in. */
    private readonly deadlines: { readonly target: number; readonly restore: number },
    /** Root restores run duplicity as the backup user: it owns the cache, the ssh key and known_hosts. */
    private readonly runAs?: { readonly uid: number; readonly gid: number; readonly home: string },
  ) {}

  get url(): string {
    return formatRsyncUrl(this.settings.url);
  }

  async chainStatus(): Promise<ChainStatus> {
    const result = await this.run(
      `reading the backup chain at ${this.url}`,
      { label: `${this.settings.name} chain check`, argv: collectionStatusCommand(this.settings) },
      this.targetDeadline('reading the chain'),
      true,
    );
    return parseCollectionStatus(result.fd3);
  }

  /** The upload of `sourceDir`, as the run's plan holds it. */
  uploadStep(kind: BackupKind, sourceDir: string): PlannedStep {
    return { label: `${this.settings.name} ${kind} upload`, argv: backupCommand(this.settings, kind, sourceDir) };
  }

  /** What a full's retention runs: old chains removed, then duplicity's own leftovers. */
  retentionSteps(retention: RetentionSteps, keepFull: number): PlannedStep[] {
    return [
      ...(retention.removeOldChains
        ? [
            {
              label: `${this.settings.name} retention (chains beyond the newest ${keepFull})`,
              argv: removeAllButNFullCommand(this.settings, keepFull),
            },
          ]
        : []),
      ...(retention.cleanup ? [this.cleanupStep()] : []),
    ];
  }

  cleanupStep(): PlannedStep {
    return { label: `${this.settings.name} cleanup`, argv: cleanupCommand(this.settings) };
  }

  /** Runs an upload step; returns the bytes that reached the target, when duplicity reports them. */
  async upload(step: PlannedStep, deadline: Deadline): Promise<number | null> {
    const result = await this.run(`${step.label} to ${this.url}`, step, deadline, false);
    return uploadedBytes(result.stdoutTail);
  }

  /** Runs a retention or cleanup step under deadlines.target. */
  async execute(step: PlannedStep): Promise<void> {
    await this.run(`${step.label} at ${this.url}`, step, this.targetDeadline(step.label), false);
  }

  /** Restores the backup set of `time` into `destination`, which must not exist yet. */
  async restore(time: Date, destination: string): Promise<void> {
    await this.run(
      `download of the backup of ${time.toISOString()} from ${this.url}`,
      {
        label: `${this.settings.name} download`,
        argv: restoreCommand(this.settings, duplicityTime(time), destination),
      },
      { ms: this.deadlines.restore, step: `the ${this.settings.name} download`, key: 'deadlines.restore' },
      false,
    );
  }

  private targetDeadline(what: string): Deadline {
    return { ms: this.deadlines.target, step: `${what} of ${this.settings.name}`, key: 'deadlines.target' };
  }

  private async run(what: string, step: PlannedStep, deadline: Deadline, captureFd3: boolean) {
    try {
      const runAs = this.runAs === undefined ? {} : { runAs: this.runAs };
      return await this.runner.run({
        argv: step.argv,
        label: step.label,
        env: this.env,
        captureFd3,
        stdout: 'tail',
        deadline,
        stopOn: PERMANENT_REFUSAL,
        ...runAs,
      });
    } catch (error) {
      if (error instanceof CommandFailedError && error.signal === undefined) throw explainDuplicityFailure(what, error);
      throw error;
    }
  }
}

/** duplicity reads a W3C date-time; whole seconds in UTC name one backup set exactly. */
export function duplicityTime(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
