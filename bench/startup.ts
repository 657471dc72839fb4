// Start-up of the installed agent: `backup-agent --help`, `--version` and `status` of the bundle the
// benchmark runs, started the way its #! line says (node, its flag, the entry point), as `backup`
// through setpriv like every other agent start of the benchmark. `status` without --remote reads the
// config and the state file only and starts no duplicity, ssh or rsync (src/cli/backup-commands.ts:
// the context that reaches the target is made only for --remote), so it measures the agent's own
// start-up and never the target. The starts are interleaved (help, version, status, help, …) so that
// a busy moment on the shared machine spreads over all three; setpriv starting /bin/true is timed the
// same way, so the launcher's own share is known.
import { execa } from 'execa';
import { asBackupUser } from '../test/harness/temp-dir.js';
import type { Artefact } from './artefact.js';
import { median } from './measure.js';
import { table } from './report.js';
import { BACKUP_ENV } from './workflows.js';

/** issue 14's target for a start of the installed agent. */
const TARGET_MS = 300;

interface Start {
  readonly label: string;
  readonly argv: readonly string[];
  /** status exits 1 when a source is failing or in breach: that is still a complete start. */
  readonly okExits: readonly number[];
}

async function timeOnce(start: Start, env: Readonly<Record<string, string>>): Promise<number> {
  const args = await asBackupUser(start.argv);
  const started = performance.now();
  const result = await execa('setpriv', args, { stdin: 'ignore', reject: false, env, timeout: 60_000 });
  const ms = performance.now() - started;
  if (!start.okExits.includes(result.exitCode ?? -1)) {
    throw new Error(
      `${start.label} exited ${result.exitCode ?? result.signal} (expected ${start.okExits.join(' or ')}):\n${result.stderr}`,
    );
  }
  return ms;
}

/** `starts` timed starts of each command, interleaved; the table of median and max. */
export async function formatStartup(
  agent: Artefact,
  configFile: string,
  agentEnv: Readonly<Record<string, string>>,
  starts: number,
): Promise<string> {
  const bundle = [agent.node, ...agent.nodeArgs, agent.main];
  const commands: Start[] = [
    { label: 'backup-agent --help', argv: [...bundle, '--help'], okExits: [0] },
    { label: 'backup-agent --version', argv: [...bundle, '--version'], okExits: [0] },
    { label: 'backup-agent status', argv: [...bundle, '--config', configFile, 'status'], okExits: [0, 1] },
    { label: '(setpriv /bin/true: the launcher alone)', argv: ['/bin/true'], okExits: [0] },
  ];
  // The agent's environment as the runs get it, --agent-env included: a start-up lever goes there.
  const env = { ...BACKUP_ENV, ...agentEnv };
  const times = commands.map(() => [] as number[]);
  for (let round = 0; round < starts; round++) {
    for (const [i, command] of commands.entries()) times[i]?.push(await timeOnce(command, env));
  }
  const rows = [['command', 'median', 'max', `≤ ${TARGET_MS} ms`]];
  for (const [i, command] of commands.entries()) {
    const mine = times[i] ?? [];
    const [mid, max] = [median(mine), Math.max(...mine)];
    const agentStart = command.argv[0] === agent.node;
    rows.push([
      command.label,
      `${mid.toFixed(0)} ms`,
      `${max.toFixed(0)} ms`,
      agentStart ? (max <= TARGET_MS ? 'yes' : mid <= TARGET_MS ? 'median only' : 'no') : '',
    ]);
  }
  return [
    `start-up (${starts} starts each, interleaved, as backup through setpriv; spawn to exit; target ≤ ${TARGET_MS} ms):`,
    `  ${bundle.join(' ')} …; status with --config ${configFile}`,
    table(rows, new Set([1, 2])),
  ].join('\n');
}
