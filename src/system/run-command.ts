// The one place that starts programs. Argument arrays only (never a shell), secrets only through
// the environment or files, every command logged with its duration and exit code, and the tail of
// stderr kept for the error message. Children get a parent-death signal so that a kill -9 of the
// agent does not leave a duplicity or a dump running on its own, and an environment built here,
// not the caller's: root's HOME or a PATH from root's shell must not reach a child run as backup.
// Every command has a deadline: a dump stuck on a lock or an rsync on a dead link ends, with its
// whole process group, and the error names the step.
import { type ReadStream, type WriteStream, createReadStream, createWriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import { formatDuration } from '../report/format.js';
import { CHILD_PATH } from './child-path.js';
import { createNewFile, openRegularFile } from './root-fs.js';

/** How long a command may run, and what the error calls it when it runs longer. */
export interface Deadline {
  readonly ms: number;
  /** The step, naming the source: "mysql dump", "influxdb upload". */
  readonly step: string;
  /** The config key that sets it, for the hint; absent for the fixed deadline of a quick command. */
  readonly key?: string;
}

/** Version probes, key checks, stopping a gpg-agent: seconds normally, and never worth more. */
export function quickDeadline(step: string): Deadline {
  return { ms: 120_000, step };
}

export interface CommandSpec {
  readonly argv: readonly [string, ...string[]];
  readonly deadline: Deadline;
  /** The step in the operator's words, for STATUS= while it runs; default: the deadline's step. */
  readonly label?: string;
  /**
   * Output lines that mean a failure no retry can fix (a changed host key): the child is stopped at
   * once instead of retrying, and the error carries the line. Watched on stderr, and on stdout
   * unless it goes to a file or is captured (duplicity 0.8 prints its retry warnings there).
   */
  readonly stopOn?: RegExp;
  /** Added to the agent's environment; values are never logged. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * 'capture' keeps all of stdout (small outputs only); a file path receives it directly from the
   * child. The file must be new: an existing name (or a symlink planted there) is never written.
   */
  readonly stdout?: 'capture' | 'tail' | { readonly file: string };
  /** Read file descriptor 3 of the child (duplicity --log-fd 3). */
  readonly captureFd3?: boolean;
  /** The child reads this plain file as its stdin (an import); the agent never holds its content. */
  readonly stdinFile?: string;
  /** Called with the child's pid once it runs, e.g. to follow its progress in /proc. */
  readonly onStart?: (pid: number) => void;
  /** Drop to this uid/gid for the child only (root restores run duplicity as the backup user). */
  readonly runAs?: { readonly uid: number; readonly gid: number; readonly home: string };
  /** Exit codes that are not failures. Default [0]. */
  readonly okExitCodes?: readonly number[];
  readonly cwd?: string;
}

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly fd3: string;
  readonly stderrTail: readonly string[];
  readonly stdoutTail: readonly string[];
  readonly durationMs: number;
}

export class CommandFailedError extends Error {
  constructor(
    readonly command: string,
    readonly result: CommandResult,
    readonly signal: string | undefined,
  ) {
    const how = signal === undefined ? `exit code ${result.exitCode}` : `signal ${signal}`;
    const tail = result.stderrTail.length > 0 ? `\n${result.stderrTail.join('\n')}` : '';
    super(`${command} failed with ${how}${tail}`);
    this.name = 'CommandFailedError';
  }
}

/** The command ran past its deadline; its process group was stopped. */
export class TimedOutError extends AgentError {
  readonly exitCode = 1;
  constructor(readonly deadline: Deadline) {
    super(
      `timed out after ${formatDuration(deadline.ms)} in ${deadline.step}`,
      deadline.key === undefined
        ? undefined
        : `if the step is just slow, raise ${deadline.key}; the next run starts afresh`,
    );
  }
}

const TAIL_LINES = 25;
const KILL_GRACE_MS = 10_000;

export class CommandRunner {
  constructor(
    readonly logger: Logger,
    private readonly cancel: AbortSignal,
    /** Values masked wherever the runner prints: argv and stderr. */
    private readonly secrets: readonly string[] = [],
  ) {}

  /**
   * This runner, whose commands also stop when `stop` aborts: one step ends early (a dump filling
   * its disk) without cancelling the run. An Error given as the reason is what they throw.
   */
  stoppedBy(stop: AbortSignal): CommandRunner {
    return this.withCancel(AbortSignal.any([this.cancel, stop]), this.secrets);
  }

  /** The same kind of runner with another cancel signal: a subclass keeps what it adds. */
  protected withCancel(cancel: AbortSignal, secrets: readonly string[]): CommandRunner {
    return new CommandRunner(this.logger, cancel, secrets);
  }

  /** Runs the command to completion; throws CommandFailedError for an exit code outside okExitCodes. */
  async run(spec: CommandSpec): Promise<CommandResult> {
    const shown = this.display(spec.argv);
    const started = Date.now();
    this.logger.debug({ argv: shown }, 'starting %s', spec.argv[0]);
    // Files are opened here and handed to the child as its own descriptors, like a shell's < and >:
    // execa's {file} target would pump every byte of a dump through this process.
    const output =
      spec.stdout === undefined || spec.stdout === 'tail' || spec.stdout === 'capture'
        ? undefined
        : await createNewFile(spec.stdout.file);
    let input: FileHandle | undefined;
    try {
      input = spec.stdinFile === undefined ? undefined : await openRegularFile(spec.stdinFile);
      // A stream built on an open descriptor carries it as .fd, which execa hands to the child as is.
      const stdin = input === undefined ? 'ignore' : createReadStream('', { fd: input.fd, autoClose: false });
      const stdout = output === undefined ? 'pipe' : createWriteStream('', { fd: output.fd, autoClose: false });
      return await this.runOpened(spec, shown, started, stdin, stdout);
    } finally {
      await input?.close();
      await output?.close();
    }
  }

  private async runOpened(
    spec: CommandSpec,
    shown: string[],
    started: number,
    stdin: ReadStream | 'ignore',
    stdoutOption: WriteStream | 'pipe',
  ): Promise<CommandResult> {
    const [file, ...args] = this.wrapper(spec);
    // One stop for the three reasons a child is ended early: the run is cancelled (SIGTERM), the
    // deadline passes, or stderr shows a failure that retrying cannot fix.
    const stop = new AbortController();
    let timedOut = false;
    let stoppedOn: string | undefined;
    const end = (): void => {
      if (stop.signal.aborted) return;
      stop.abort();
      signalGroup(child.pid, 'SIGTERM');
    };
    const child = execa(file, args, {
      stdio: spec.captureFd3 ? [stdin, stdoutOption, 'pipe', 'pipe'] : [stdin, stdoutOption, 'pipe'],
      env: childEnvironment(spec),
      extendEnv: false,
      buffer: false,
      reject: false,
      cancelSignal: stop.signal,
      forceKillAfterDelay: KILL_GRACE_MS,
      cwd: spec.cwd,
      // A process group (and session, without a terminal) of its own: a stop reaches what the
      // child started too (duplicity's rsync and ssh), not only the child.
      detached: true,
    });
    const pid = child.pid;
    this.cancel.addEventListener('abort', end, { once: true });
    if (this.cancel.aborted) end();
    const timer = setTimeout(() => {
      timedOut = true;
      end();
    }, spec.deadline.ms);
    // The group is killed outright once the grace is over, even if the child itself already ended.
    let killer: NodeJS.Timeout | undefined;
    stop.signal.addEventListener('abort', () => {
      killer = setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
    });
    if (pid !== undefined) spec.onStart?.(pid);
    const onOutputLine =
      spec.stopOn === undefined
        ? undefined
        : (line: string): void => {
            if (stoppedOn === undefined && spec.stopOn?.test(line)) {
              stoppedOn = line;
              end();
            }
          };
    const stderrTail = keepTail(child.stderr, onOutputLine);
    const stdoutCapture = spec.stdout === 'capture' ? collect(child.stdout) : Promise.resolve('');
    const stdoutTail =
      spec.stdout === 'tail' || spec.stdout === undefined ? keepTail(child.stdout, onOutputLine) : Promise.resolve([]);
    const fd3 = spec.captureFd3 ? collect(child.stdio[3]) : Promise.resolve('');
    const outcome = await child;
    clearTimeout(timer);
    this.cancel.removeEventListener('abort', end);
    // What the child left of its group after a stop has had its chance to end with it.
    if (stop.signal.aborted) {
      clearTimeout(killer);
      signalGroup(pid, 'SIGKILL');
    }
    const result: CommandResult = {
      exitCode: outcome.exitCode ?? 128,
      stdout: await stdoutCapture,
      fd3: await fd3,
      stderrTail: (await stderrTail).map((line) => this.redact(line)),
      stdoutTail: (await stdoutTail).map((line) => this.redact(line)),
      durationMs: Date.now() - started,
    };
    const ok =
      !stop.signal.aborted && outcome.signal === undefined && (spec.okExitCodes ?? [0]).includes(result.exitCode);
    const fields = { argv: shown, exitCode: result.exitCode, signal: outcome.signal, durationMs: result.durationMs };
    if (ok) {
      this.logger.info(fields, '%s finished in %ss', spec.argv[0], seconds(result.durationMs));
      return result;
    }
    if (timedOut) {
      this.logger.warn(
        { ...fields, stderr: result.stderrTail },
        '%s timed out in %s',
        spec.argv[0],
        spec.deadline.step,
      );
      throw new TimedOutError(spec.deadline);
    }
    this.logger.warn({ ...fields, stderr: result.stderrTail }, '%s failed', spec.argv[0]);
    if (stoppedOn !== undefined) {
      // Reported like an exit, so the caller's reading of stderr names the cause.
      const withLine = result.stderrTail.includes(this.redact(stoppedOn))
        ? result
        : { ...result, stderrTail: [...result.stderrTail, this.redact(stoppedOn)] };
      throw new CommandFailedError(shown.join(' '), withLine, undefined);
    }
    if (this.cancel.aborted && this.cancel.reason instanceof Error) throw this.cancel.reason;
    throw new CommandFailedError(shown.join(' '), result, this.cancel.aborted ? 'SIGTERM' : outcome.signal);
  }

  private wrapper(spec: CommandSpec): [string, ...string[]] {
    const identity = spec.runAs ? [`--reuid=${spec.runAs.uid}`, `--regid=${spec.runAs.gid}`, '--init-groups'] : [];
    return ['setpriv', '--pdeathsig', 'TERM', ...identity, '--', ...spec.argv];
  }

  display(argv: readonly string[]): string[] {
    return argv.map((argument) => this.redact(argument));
  }

  private redact(text: string): string {
    return this.secrets.reduce((masked, secret) => (secret === '' ? masked : masked.split(secret).join('***')), text);
  }
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

function childEnvironment(spec: CommandSpec): Record<string, string> {
  return {
    PATH: CHILD_PATH,
    HOME: spec.runAs?.home ?? userInfo().homedir,
    LC_ALL: 'C.UTF-8',
    ...spec.env,
  };
}

function keepTail(stream: Readable | null, onLine?: (line: string) => void): Promise<string[]> {
  const lines: string[] = [];
  if (stream === null) return Promise.resolve(lines);
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  reader.on('line', (line) => {
    onLine?.(line);
    lines.push(line);
    if (lines.length > TAIL_LINES * 2) lines.splice(0, lines.length - TAIL_LINES);
  });
  return new Promise((resolve) => reader.on('close', () => resolve(lines.slice(-TAIL_LINES))));
}

async function collect(stream: Readable | null): Promise<string> {
  if (stream === null) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
