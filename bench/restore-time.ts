// Restore time (the RTO figure of backup_sla.md): `backup-agent restore mysql --yes` against the
// plain runbook commands doing the same job (duplicity restore as backup, sha256sum, mariadb import)
// on the same backup of a generated database. Prints figures; asserts nothing.
//   npm run build && node --import tsx bench/restore-time.ts [--size-mb 500]
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT, NODE_FLAG, makeAgentHost } from '../test/harness/agent.js';
import { startMariaDb } from '../test/harness/mariadb.js';
import { startSshTarget } from '../test/harness/ssh-target.js';
import { chownToBackup, makeTempDir, removeDir } from '../test/harness/temp-dir.js';
import { DATABASE, checksum, generate, shapeFor } from './dataset.js';
import { loadAverage, secs } from './measure.js';

const { values } = parseArgs({ options: { 'size-mb': { type: 'string', default: '500' } } });
const sizeMiB = Number(values['size-mb']);

const [mariadb, target] = await Promise.all([startMariaDb(), startSshTarget()]);
const host = await makeAgentHost({ mariadb, target });
const scratch = await makeTempDir('bench-restore');
try {
  process.stdout.write(`restore benchmark, ${sizeMiB} MiB dump; load ${await loadAverage()}\n`);
  await generate(mariadb, shapeFor(sizeMiB));
  const original = await checksum(mariadb);
  const backup = await host.run(['run', '--full']);
  if (backup.exitCode !== 0) throw new Error(`backup failed: ${backup.stderr}`);

  const timed = async (what: string, work: () => Promise<unknown>): Promise<number> => {
    const started = Date.now();
    await work();
    const ms = Date.now() - started;
    process.stdout.write(`  ${what.padEnd(44)} ${secs(ms).padStart(9)}\n`);
    return ms;
  };
  const drop = () => mariadb.sql(`DROP DATABASE ${DATABASE}`);

  process.stdout.write(
    'agent: backup-agent restore mysql --yes (download, manifest check, safety dump, import, check)\n',
  );
  await drop();
  const agentMs = await timed('total', async () => {
    const result = await execa(
      process.execPath,
      [NODE_FLAG, AGENT, '--config', host.configFile, 'restore', 'mysql', '--yes'],
      {
        stdin: 'ignore',
        reject: false,
      },
    );
    if (result.exitCode !== 0) throw new Error(`restore failed: ${result.stderr}`);
    process.stdout.write(`${result.stdout.trimEnd().replace(/^/gm, '    ')}\n`);
  });
  const agentOk = (await checksum(mariadb)) === original;

  process.stdout.write('plain: duplicity restore, sha256sum --check, mariadb import (the runbook fallback)\n');
  await chownToBackup(scratch);
  await drop();
  const passphrase = await readFile(host.passphraseFile, 'utf8');
  const plainMs =
    (await timed('duplicity restore', () =>
      execa(
        'setpriv',
        [
          '--reuid=backup',
          '--regid=backup',
          '--init-groups',
          '--',
          'duplicity',
          'restore',
          '--archive-dir',
          join(scratch, 'cache'),
          `--ssh-options=-oIdentityFile=${target.clientKey} -oUserKnownHostsFile=${target.knownHosts}`,
          `${target.url}/mysql`,
          join(scratch, 'mysql'),
        ],
        { env: { PASSPHRASE: passphrase.trim(), GNUPGHOME: host.gnupgHome }, stdin: 'ignore' },
      ),
    )) +
    (await timed('sha256sum --check', () =>
      execa('sha256sum', ['--check', 'SHA256SUMS'], { cwd: join(scratch, 'mysql') }),
    )) +
    (await timed('mariadb import', async () => {
      await mariadb.sql(`CREATE DATABASE ${DATABASE}`);
      await mariadb.importFile(DATABASE, join(scratch, 'mysql', `${DATABASE}.sql`));
    }));
  const plainOk = (await checksum(mariadb)) === original;

  process.stdout.write(
    `\nrestore of ${sizeMiB} MiB: agent ${secs(agentMs)} (data ${agentOk ? 'identical' : 'DIFFERENT'}), ` +
      `plain ${secs(plainMs)} (data ${plainOk ? 'identical' : 'DIFFERENT'}); the agent also takes a safety dump ` +
      `of the live database when there is one. load ${await loadAverage()}\n`,
  );
} finally {
  await Promise.allSettled([mariadb.stop(), target.stop(), host.remove(), removeDir(scratch)]);
}
