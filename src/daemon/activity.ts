// What a running backup is doing right now, for STATUS= ("running mysql dump of agama, influxdb
// full upload (3m10s)"). Every step is a child process started through the CommandRunner with the
// label the run's plan gave it, so a runner that notes each label while it runs is enough.
import type { Logger } from '../report/logger.js';
import { type CommandResult, CommandRunner, type CommandSpec } from '../system/run-command.js';

export class Activity {
  private readonly running = new Map<number, string>();
  private nextId = 0;
  startedAt: Date | null = null;

  constructor(private readonly onChange: () => void) {}

  get busy(): boolean {
    return this.startedAt !== null;
  }

  /** What runs now, in start order; empty between steps. */
  get steps(): string[] {
    return [...new Set(this.running.values())];
  }

  begin(): void {
    this.startedAt = new Date();
    this.onChange();
  }

  end(): void {
    this.startedAt = null;
    this.running.clear();
    this.onChange();
  }

  /** Notes the step until the returned function is called. */
  step(label: string): () => void {
    const id = this.nextId++;
    this.running.set(id, label);
    this.onChange();
    return () => {
      this.running.delete(id);
      this.onChange();
    };
  }
}

/** A CommandRunner that records each command in `activity` while it runs. */
export class ActivityRunner extends CommandRunner {
  constructor(
    logger: Logger,
    cancel: AbortSignal,
    secrets: readonly string[],
    private readonly activity: Activity,
  ) {
    super(logger, cancel, secrets);
  }

  // A dump's runner stops at the staging reserve (stoppedBy); its steps must still show.
  protected override withCancel(cancel: AbortSignal, secrets: readonly string[]): CommandRunner {
    return new ActivityRunner(this.logger, cancel, secrets, this.activity);
  }

  override async run(spec: CommandSpec): Promise<CommandResult> {
    const done = this.activity.step(spec.label ?? spec.deadline.step);
    try {
      return await super.run(spec);
    } finally {
      done();
    }
  }
}
