// A signed apt repository holding one .deb, served over HTTP on loopback: what an operator's
// repository gives the backup_agent role (backup_agent_apt_repository, backup_agent_apt_key). Flat
// layout ("deb URL ./"): Packages and an InRelease signed by a throwaway key, written here rather
// than with apt-ftparchive, so the controller needs nothing beyond dpkg and gpg.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { freePort } from '../harness/ports.js';

export interface AptRepository {
  /** backup_agent_apt_repository: "URL suite", the flat layout's suite being ./ */
  readonly line: string;
  /** The armored public key that signs it (backup_agent_apt_key). */
  readonly keyFile: string;
  /** Paths apt asked for, in order. */
  readonly requests: string[];
  stop(): Promise<void>;
}

export async function startAptRepository(dir: string, deb: string): Promise<AptRepository> {
  const root = join(dir, 'repo');
  const gnupg = join(dir, 'repo-gnupg');
  await mkdir(root, { recursive: true });
  await mkdir(gnupg, { mode: 0o700, recursive: true });
  const name = basename(deb);
  await copyFile(deb, join(root, name));
  const control = (await execa('dpkg-deb', ['--field', deb])).stdout.trimEnd();
  const bytes = await readFile(deb);
  const packages = `${control}\nFilename: ./${name}\nSize: ${bytes.length}\nSHA256: ${sha256(bytes)}\n`;
  await writeFile(join(root, 'Packages'), packages);
  const release = [
    'Origin: backup-agent e2e',
    'Label: backup-agent e2e',
    `Date: ${new Date().toUTCString()}`,
    'SHA256:',
    ` ${sha256(Buffer.from(packages))} ${Buffer.byteLength(packages)} Packages`,
    '',
  ].join('\n');
  await writeFile(join(root, 'Release'), release);
  const gpg = (args: readonly string[]) => execa('gpg', ['--homedir', gnupg, '--batch', '--quiet', ...args]);
  try {
    await gpg(['--passphrase', '', '--quick-generate-key', 'backup-agent e2e repository', 'ed25519', 'sign', 'never']);
    await gpg(['--clearsign', '--output', join(root, 'InRelease'), join(root, 'Release')]);
    await gpg(['--armor', '--output', join(dir, 'repo-key.asc'), '--export']);
  } finally {
    await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
  }

  const requests: string[] = [];
  const port = await freePort();
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    requests.push(path);
    const file = join(root, path.replace(/^\.\//, ''));
    if (path.includes('..') || !file.startsWith(root)) {
      response.writeHead(404).end();
      return;
    }
    stat(file)
      .then((info) => {
        if (!info.isFile()) throw new Error('not a file');
        response.writeHead(200, { 'content-length': info.size });
        createReadStream(file).pipe(response);
      })
      .catch(() => response.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    line: `http://127.0.0.1:${port}/ ./`,
    keyFile: join(dir, 'repo-key.asc'),
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
