import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unencryptedVolumes } from './unencrypted-volumes.js';

test('volumes duplicity would read without gpg are found, in long and short names; nothing else is', () => {
  const legitimate = [
    'duplicity-full.20261130T212413Z.vol1.difftar.gpg',
    'duplicity-inc.20261130T212413Z.to.20261130T212422Z.vol12.difftar.gpg',
    'duplicity-full.20261130T212413Z.manifest.gpg',
    'duplicity-full-signatures.20261130T212413Z.sigtar.gpg',
    'df.kx3pq1.1.dt.g',
    '.backup-agent-write-test',
  ];
  const planted = [
    'duplicity-inc.20261130T212413Z.to.20261130T212422Z.vol1.difftar.gz',
    'duplicity-full.20261130T212503Z.vol1.difftar.gz',
    'duplicity-full.20261130T212503Z.vol2.difftar',
    'di.kx3pq1.kx3pq9.1.dt.z',
  ];
  assert.deepEqual(unencryptedVolumes([...legitimate, ...planted]), planted);
});
