// What a hostile backup user (or anyone holding the target's write access and the needed keys) can
// do: take the host's staged dump, change it, make MANIFEST.json and SHA256SUMS match again, and
// upload it with plain duplicity as the newest incremental of the chain root restores from.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { SshTarget } from './ssh-target.js';
import { asBackupUser, chownToBackup, makeTempDir, removeDir } from './temp-dir.js';

export interface ForgedManifest {
  databases: string[];
  files: { name: string; size: number; sha256: string }[];
}

export interface Forgery {
  /** The staged source directory the forger starts from, e.g. <staging>/mysql. */
  readonly from: string;
  readonly target: SshTarget;
  /** duplicity's URL for the source, e.g. `${target.url}/mysql`. */
  readonly url: string;
  /** PASSPHRASE=…, GNUPGHOME=…: what the forger's duplicity runs with. */
  readonly env: readonly string[];
  /** Encryption options for duplicity (--encrypt-key …, --no-encryption); none: symmetric. */
  readonly duplicityOptions?: readonly string[];
  readonly change?: (dir: string) => Promise<void>;
  readonly changeManifest?: (manifest: ForgedManifest) => void;
}

export async function uploadForgedSet(forgery: Forgery): Promise<void> {
  const scratch = await makeTempDir('forge');
  const dir = join(scratch, 'set');
  await execa('cp', ['-a', forgery.from, dir]);
  await forgery.change?.(dir);
  const manifest = JSON.parse(await readFile(join(dir, 'MANIFEST.json'), 'utf8')) as ForgedManifest;
  for (const file of manifest.files) {
    // A file the change replaced by something unreadable (a symlink to root's file) still gets a line.
    const content = await readFile(join(dir, file.name)).catch(() => Buffer.alloc(0));
    file.size = content.length;
    file.sha256 = createHash('sha256').update(content).digest('hex');
  }
  forgery.changeManifest?.(manifest);
  await writeFile(join(dir, 'MANIFEST.json'), JSON.stringify(manifest));
  await writeFile(join(dir, 'SHA256SUMS'), manifest.files.map((file) => `${file.sha256}  ${file.name}\n`).join(''));
  await chownToBackup(scratch);
  // duplicity names sets by the second.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const upload = await execa(
    'setpriv',
    await asBackupUser([
      'env',
      ...forgery.env,
      `HOME=${scratch}`,
      'duplicity',
      'incremental',
      '--allow-source-mismatch',
      '--archive-dir',
      join(scratch, 'cache'),
      '--name',
      'forger',
      ...(forgery.duplicityOptions ?? []),
      `--ssh-options=-oIdentityFile=${forgery.target.clientKey} -oUserKnownHostsFile=${forgery.target.knownHosts}`,
      dir,
      forgery.url,
    ]),
    { reject: false, stdin: 'ignore' },
  );
  assert.equal(upload.exitCode, 0, `the forged upload: ${upload.stderr}`);
  await removeDir(scratch);
}
