import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sizeBySetTime } from './list.js';

test('volumes, manifests and signatures add up per backup set', () => {
  const sizes = sizeBySetTime([
    { name: 'duplicity-full.20261123T201408Z.vol1.difftar.gpg', size: 1000 },
    { name: 'duplicity-full.20261123T201408Z.vol2.difftar.gpg', size: 500 },
    { name: 'duplicity-full.20261123T201408Z.manifest.gpg', size: 10 },
    { name: 'duplicity-full-signatures.20261123T201408Z.sigtar.gpg', size: 90 },
    { name: 'duplicity-inc.20261123T201408Z.to.20261124T201408Z.vol1.difftar.gpg', size: 70 },
    { name: 'duplicity-new-signatures.20261123T201408Z.to.20261124T201408Z.sigtar.gpg', size: 7 },
    { name: 'unrelated.txt', size: 5 },
  ]);
  assert.deepEqual(Object.fromEntries(sizes), { '20261123T201408Z': 1600, '20261124T201408Z': 77 });
});
