// The command line (commander only): flags → action → printer. Exit codes are decided in main.ts.
import { Command } from 'commander';
import { addBackupCommands } from './backup-commands.js';
import { addRestoreCommands } from './restore-commands.js';
import { VERSION } from './version.js';

export const EXIT_STATUS = `
Exit status:
  0   success
  1   a backup (or check) failed; other sources may have succeeded; status: a source is failing or in breach
  2   usage error
  75  another run holds the lock; try again later
  77  the command needs root
  78  the configuration is invalid (for check also: schedule + spread + run time miss the deadline),
      or the agent lies where the backup user cannot read it
  130/143  stopped by SIGINT/SIGTERM (the daemon exits 0 after a clean stop)`;

/** Builds the program; each action resolves to the exit code. */
export function buildProgram(cancel: AbortSignal, setExitCode: (code: number) => void): Command {
  const program = new Command('backup-agent')
    .description(
      'Dumps the databases configured in backup-agent.ini and uploads them with duplicity to an rsync-over-ssh target.',
    )
    .version(VERSION)
    .option('-c, --config <file>', 'configuration file (default: $BACKUP_AGENT_CONFIG or /etc/backup-agent.ini)')
    .addHelpText('after', EXIT_STATUS)
    .showHelpAfterError()
    .exitOverride();
  addBackupCommands({ program, cancel, setExitCode });
  addRestoreCommands({ program, cancel, setExitCode });
  return program;
}
