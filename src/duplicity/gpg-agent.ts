import type { SystemUser } from '../system/privileges.js';
import { type CommandRunner, quickDeadline } from '../system/run-command.js';

/**
 * gpg starts a gpg-agent daemon per GNUPGHOME (and, when asked, dirmngr or keyboxd) that outlives
 * duplicity: every command that may have run gpg stops them so that nothing the agent started keeps
 * running after it. As the user who owns the home (`runAs` when root restores): root does not act
 * on a directory the backup user can write. Failure to stop them is not a failure of the command.
 */
export async function stopGpgAgent(runner: CommandRunner, gnupgHome: string, runAs?: SystemUser): Promise<void> {
  await runner
    .run({
      argv: ['gpgconf', '--homedir', gnupgHome, '--kill', 'all'],
      deadline: quickDeadline('stopping the gpg-agent'),
      ...(runAs === undefined ? {} : { runAs }),
    })
    .catch(() => undefined);
}
