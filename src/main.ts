#!/usr/bin/env node
// Entry point: runs the command line and turns errors into exit codes. Nothing else happens here.
import { CommanderError } from 'commander';
import { buildProgram } from './cli/program.js';
import { AgentError, errorMessage } from './errors.js';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`backup-agent: ${signal} received, stopping child processes\n`);
    controller.abort(signal);
  });
}

let exitCode = 0;
try {
  await buildProgram(controller.signal, (code) => (exitCode = code)).parseAsync(process.argv);
} catch (error) {
  exitCode = report(error);
}
// A command that a signal ended early says so in its status, whatever error the stop caused on
// the way (a killed import, a drill that failed); one that finished anyway keeps its own (0 for the
// daemon's clean stop).
if (controller.signal.aborted && exitCode !== 0) exitCode = controller.signal.reason === 'SIGINT' ? 130 : 143;
process.exitCode = exitCode;

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version "errors" are successes; everything else commander rejects is a usage error.
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof AgentError) {
    process.stderr.write(`backup-agent: ${error.message}\n${error.hint === undefined ? '' : `  fix: ${error.hint}\n`}`);
    return error.exitCode;
  }
  if (controller.signal.aborted) {
    // What the stop broke on its way (a killed child), not a bug: no stack trace.
    process.stderr.write(`backup-agent: stopped by ${String(controller.signal.reason)}: ${errorMessage(error)}\n`);
    return 1;
  }
  process.stderr.write(
    `backup-agent: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : errorMessage(error)}\n`,
  );
  return 1;
}
