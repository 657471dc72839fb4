// A throwaway certificate authority and a server certificate for 127.0.0.1, made with openssl, so
// a test server can offer real TLS that the agent verifies (it trusts the CA through
// NODE_EXTRA_CA_CERTS, as an operator would add a private CA) instead of skipping verification.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeTempDir, removeDir } from './temp-dir.js';

export interface TestCa {
  /** PEM of the CA certificate, world-readable: the agent reads it as the backup user. */
  readonly caFile: string;
  /** PEM key and certificate of the server, valid for IP 127.0.0.1 and localhost. */
  readonly key: string;
  readonly cert: string;
  remove(): Promise<void>;
}

export async function makeTestCa(): Promise<TestCa> {
  const dir = await makeTempDir('test-ca');
  const file = (name: string) => join(dir, name);
  const openssl = (args: readonly string[]) => execa('openssl', args, { cwd: dir });
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=backup-agent test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  ]);
  await openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  ]);
  await writeFile(file('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n');
  await openssl([
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.pem'),
  ]);
  await chmod(file('ca.pem'), 0o644);
  return {
    caFile: file('ca.pem'),
    key: await readFile(file('server.key'), 'utf8'),
    cert: await readFile(file('server.pem'), 'utf8'),
    remove: () => removeDir(dir),
  };
}
