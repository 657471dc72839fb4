// What a running backup is doing right now, for STATUS= ("running mysql dump, influxdb full
// upload (3m10s)"). The pipeline does not report progress; every step is a child process started
// through the CommandRunner, so a runner that notes each command while it runs is enough.
import { basename } from 'node:path';
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

  override async run(spec: CommandSpec): Promise<CommandResult> {
    const done = this.activity.step(describeCommand(spec.argv));
    try {
      return await super.run(spec);
    } finally {
      done();
    }
  }
}

const DUPLICITY_STEPS: Readonly<Record<string, string>> = {
  full: 'full upload',
  incremental: 'incremental upload',
  'collection-status': 'chain check',
  'remove-all-but-n-full': 'retention',
  cleanup: 'cleanup',
};

/** The step a command line stands for, in the operator's words. */
export function describeCommand(argv: readonly string[]): string {
  const program = basename(argv[0] ?? '');
  if (program === 'mariadb-dump' || program === 'mysqldump') return 'mysql dump';
  if (program === 'influxd') return 'influxdb dump';
  if (program === 'duplicity') {
    const name = argv[argv.indexOf('--name') + 1];
    const operation = argv[1] ?? '';
    const step = DUPLICITY_STEPS[operation] ?? operation;
    return argv.includes('--name') && name !== undefined ? `${name} ${step}` : `duplicity ${step}`;
  }
  return program;
}
