import { type CommandRunner, quickDeadline } from '../system/run-command.js';

/**
 * gpg starts a gpg-agent daemon per GNUPGHOME that outlives duplicity; the run stops it so that
 * nothing the agent started keeps running after it. Failure to stop it is not a backup failure.
 */
export async function stopGpgAgent(runner: CommandRunner, gnupgHome: string): Promise<void> {
  await runner
    .run({
      argv: ['gpgconf', '--homedir', gnupgHome, '--kill', 'gpg-agent'],
      deadline: quickDeadline('stopping the gpg-agent'),
    })
    .catch(() => undefined);
}
