// ssh's shared connection (ControlMaster=auto, ControlPersist) is served by a master that ssh forks
// into a session of its own: the process-group kill that ends a command's children never reaches
// it, so after a stop it would outlive the agent, and after a normal end it lingers for
// ControlPersist. Every command that may have used the target ends it on its way out.
import type { SystemUser } from '../system/privileges.js';
import { type CommandRunner, quickDeadline } from '../system/run-command.js';
import type { RsyncUrl } from './rsync-url.js';
import { type SshAccess, sharesConnection, sshCommand } from './ssh.js';

// ssh's exit code when there is no master to talk to (no socket, or a stale one): nothing to stop.
const NO_MASTER = 255;

/**
 * `-O stop`, not `-O exit`: the master stops taking new sessions at once and exits when the ones it
 * carries end (immediately when idle). A concurrent run sharing it, such as the daemon's upload
 * during a `list`, keeps its transfer and opens a master of its own for the next; `-O exit` would
 * cut that transfer. Run as the user whose master it is (`runAs` when root restores). Never throws:
 * a cleanup must not hide why the command ended.
 */
export async function stopSharedConnection(
  runner: CommandRunner,
  url: RsyncUrl,
  access: SshAccess,
  runAs?: SystemUser,
): Promise<void> {
  if (!sharesConnection(access)) return;
  // rsync hands ssh the host without the brackets of an IPv6 literal, and %C hashes what ssh got.
  const host = url.host.replace(/^\[(.*)\]$/, '$1');
  await runner
    .run({
      argv: [...sshCommand(url, access), '-O', 'stop', '-l', url.user, host],
      okExitCodes: [0, NO_MASTER],
      deadline: quickDeadline('stopping the ssh connection master'),
      ...(runAs === undefined ? {} : { runAs }),
    })
    .catch(() => undefined);
}
