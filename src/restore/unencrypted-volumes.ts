// duplicity (0.8.22, seen) decides by the file name alone whether a volume is encrypted, and checks
// --sign-key only on volumes it decrypts: a volume named *.difftar.gz is read as plain gzip, with
// no signature and no passphrase, even inside an encrypted, signed chain, and the restore exits 0.
// collection-status cannot tell: it marks a whole set enc or noenc by the first of its files it
// lists. With encryption on, the agent never uploads such a volume, so one on the target was planted
// by whoever can write there (or dates from before encryption was turned on).
import { type AgentContext, duplicitySettings, targetDeadline } from '../context/context.js';
import type { SourceKind } from '../domain.js';
import { BackupFailedError } from '../errors.js';
import type { SystemUser } from '../system/privileges.js';
import { listRemoteFiles } from '../remote/remote.js';
import { formatRsyncUrl } from '../remote/rsync-url.js';

// duplicity's long and short volume names (file_naming.py): duplicity-full.T.volN.difftar[.gz|.gpg],
// duplicity-inc.T1.to.T2.volN.difftar[...], df.T.N.dt[.z|.g], di.T1.T2.N.dt[...].
const VOLUME = /^(duplicity-(full|inc)\..*\.vol\d+\.difftar|d[fi]\..*\.dt)(\.|$)/;
const ENCRYPTED = /\.g(pg)?$/;

export function unencryptedVolumes(names: readonly string[]): string[] {
  return names.filter((name) => VOLUME.test(name) && !ENCRYPTED.test(name));
}

/** Refuses to restore from a target that holds a volume duplicity would read unencrypted and unsigned. */
export async function refuseUnencryptedVolumes(
  context: AgentContext,
  source: SourceKind,
  runAs: SystemUser | undefined,
): Promise<void> {
  const { encryption } = context.config.target;
  if (encryption === 'none') return;
  const settings = duplicitySettings(context, source);
  const files = await listRemoteFiles(
    context.runner,
    settings.url,
    settings,
    targetDeadline(context.config, `listing ${source} on the target`),
    runAs,
  );
  const planted = unencryptedVolumes(files.map((file) => file.name));
  if (planted.length === 0) return;
  const shown = planted.slice(0, 3).join(', ') + (planted.length > 3 ? `, and ${planted.length - 3} more` : '');
  throw new BackupFailedError(
    `${formatRsyncUrl(settings.url)} holds unencrypted volume(s) (${shown}) although target.encryption = ${encryption}: backup-agent never uploads those, and duplicity would restore them unchecked${settings.signKey === null ? '' : ', without the signature of target.sign_key'}`,
    'nothing was changed; someone who can write to the target planted them, or they date from before encryption was turned on: look at them on the target and remove them there before restoring',
  );
}
