import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RemoteFile } from '../remote/remote.js';
import { groupSets, parseBackupFileName, parseManifest } from './backup-files.js';
import { type ChainEvidence, judgeNewestChain, sourceChange } from './chain-health.js';
import { EMPTY_LEDGER, type UploadLedger, recordNewestSet } from './upload-ledger.js';

const F = '20261201T021405Z';
const I1 = '20261201T021409Z';
const I2 = '20261201T021417Z';

/** A full with two volumes and two incrementals of one volume each, as the target lists them. */
function target(): RemoteFile[] {
  return [
    { name: `duplicity-full-signatures.${F}.sigtar.gpg`, size: 31867 },
    { name: `duplicity-full.${F}.manifest.gpg`, size: 321 },
    { name: `duplicity-full.${F}.vol1.difftar.gpg`, size: 1063455 },
    { name: `duplicity-full.${F}.vol2.difftar.gpg`, size: 91927 },
    { name: `duplicity-inc.${F}.to.${I1}.manifest.gpg`, size: 206 },
    { name: `duplicity-inc.${F}.to.${I1}.vol1.difftar.gpg`, size: 758 },
    { name: `duplicity-new-signatures.${F}.to.${I1}.sigtar.gpg`, size: 31821 },
    { name: `duplicity-inc.${I1}.to.${I2}.manifest.gpg`, size: 206 },
    { name: `duplicity-inc.${I1}.to.${I2}.vol1.difftar.gpg`, size: 760 },
    { name: `duplicity-new-signatures.${I1}.to.${I2}.sigtar.gpg`, size: 31822 },
  ];
}

function manifest(volumes: number, localdir = '/var/lib/backup-agent/staging/mysql'): string {
  const blocks = Array.from(
    { length: volumes },
    (_, index) =>
      `Volume ${index + 1}:\n    StartingPath   .  \n    EndingPath     a.sql 20\n    Hash SHA1 92c0f4215618\n`,
  );
  return `Hostname db1\nLocaldir ${localdir}\n${blocks.join('')}Filelist 1\n    new      agama.sql\n`;
}

function evidence(listing: RemoteFile[], ledger: UploadLedger = EMPTY_LEDGER): ChainEvidence {
  return {
    listing,
    ledger,
    manifests: new Map([
      [`full ${F}`, parseManifest(manifest(2))],
      [`incremental ${F} to ${I1}`, parseManifest(manifest(1))],
      [`incremental ${I1} to ${I2}`, parseManifest(manifest(1))],
    ]),
  };
}

const without = (listing: RemoteFile[], name: string): RemoteFile[] => listing.filter((file) => file.name !== name);

test('file names of the target and of the cache parse into sets and roles; others are not duplicity files', () => {
  assert.deepEqual(parseBackupFileName(`duplicity-inc.${F}.to.${I1}.vol12.difftar.gpg`), {
    set: { kind: 'incremental', start: F, end: I1 },
    role: 'volume',
    volume: 12,
    partial: false,
  });
  assert.equal(parseBackupFileName(`duplicity-full-signatures.${F}.sigtar.gz`)?.role, 'signatures');
  assert.equal(parseBackupFileName(`duplicity-full.${F}.manifest`)?.role, 'manifest');
  assert.equal(parseBackupFileName(`duplicity-full.${F}.manifest.part`)?.partial, true);
  assert.equal(parseBackupFileName(`duplicity-full.${F}.vol1.difftar.gz`)?.volume, 1);
  for (const name of [
    `duplicity-full.${F}.to.${I1}.manifest.gpg`,
    `duplicity-inc.${F}.manifest.gpg`,
    `duplicity-full.${F}.sigtar.gpg`,
    '.backup-agent-write-test',
  ]) {
    assert.equal(parseBackupFileName(name), undefined, name);
  }
  const sets = groupSets(target());
  assert.deepEqual(
    sets.map((set) => [set.kind, set.end, set.volumes.size, set.manifest !== undefined]),
    [
      ['full', F, 2, true],
      ['incremental', I1, 1, true],
      ['incremental', I2, 1, true],
    ],
  );
});

test('a cached manifest gives its volumes, directory and host; one cut short says so', () => {
  const whole = parseManifest(manifest(2, '"/srv/new\\x20disk/mysql"'));
  assert.deepEqual(whole, { hostname: 'db1', localdir: '/srv/new disk/mysql', volumes: [1, 2], damage: null });
  const text = manifest(2);
  assert.match(parseManifest(text.slice(0, Math.floor(text.length / 2))).damage ?? '', /./);
  assert.match(parseManifest(text.slice(0, -1)).damage ?? '', /does not end with a newline/);
  assert.match(parseManifest(text.replace('    new      agama.sql\n', '')).damage ?? '', /Filelist declares 1/);
});

test('a whole chain can be extended', () => {
  const verdict = judgeNewestChain(evidence(target()));
  assert.equal(verdict.state, 'whole');
  assert.equal(verdict.state === 'whole' ? verdict.sets.length : 0, 3);
  assert.deepEqual(judgeNewestChain({ listing: [], manifests: new Map(), ledger: EMPTY_LEDGER }), { state: 'none' });
});

test('a missing volume of any set breaks the chain, by the cached manifest or, without cache, by the numbering', () => {
  const listing = without(target(), `duplicity-full.${F}.vol1.difftar.gpg`);
  assert.deepEqual(judgeNewestChain(evidence(listing)), {
    state: 'broken',
    problem: 'volume 1 of the full backup of 2026-12-01T02:14:05.000Z is missing on the target (its manifest lists 2)',
  });
  assert.deepEqual(judgeNewestChain({ listing, manifests: new Map(), ledger: EMPTY_LEDGER }), {
    state: 'broken',
    problem: 'volume 1 of the full backup of 2026-12-01T02:14:05.000Z is missing on the target',
  });
  // The last volume is only missed with the manifest (or the ledger).
  const last = without(target(), `duplicity-full.${F}.vol2.difftar.gpg`);
  assert.equal(judgeNewestChain(evidence(last)).state, 'broken');
  assert.equal(judgeNewestChain({ listing: last, manifests: new Map(), ledger: EMPTY_LEDGER }).state, 'whole');
});

test('a missing manifest or signature file of a known set breaks the chain; a gap too', () => {
  const noManifest = without(target(), `duplicity-inc.${F}.to.${I1}.manifest.gpg`);
  assert.match(
    JSON.stringify(judgeNewestChain(evidence(noManifest))),
    /the manifest of the incremental backup of 2026-12-01T02:14:09.000Z is missing/,
  );
  // Without the cache the set is unknown, and the next one no longer follows anything.
  assert.match(
    JSON.stringify(judgeNewestChain({ listing: noManifest, manifests: new Map(), ledger: EMPTY_LEDGER })),
    /builds on a set ending 20261201T021409Z, which is not on the target/,
  );
  const noSignatures = without(target(), `duplicity-new-signatures.${I1}.to.${I2}.sigtar.gpg`);
  assert.match(JSON.stringify(judgeNewestChain(evidence(noSignatures))), /signatures of the incremental backup/);
});

test('the newest set of an interrupted upload (volumes, no manifest anywhere) is left to the resume', () => {
  const I3 = '20261201T021500Z';
  const interrupted = [...target(), { name: `duplicity-inc.${I2}.to.${I3}.vol1.difftar.gpg`, size: 4096 }];
  const verdict = judgeNewestChain(evidence(interrupted));
  assert.equal(verdict.state, 'whole');
  assert.equal(verdict.state === 'whole' ? verdict.sets.at(-1)?.end : '', I2);
});

test('the ledger catches a file cut short or changed, which no manifest can', () => {
  const ledger = recordNewestSet(EMPTY_LEDGER, target(), { localdir: '/s/mysql', hostname: 'db1' });
  assert.deepEqual(Object.keys(ledger.files).sort(), [
    `duplicity-inc.${I1}.to.${I2}.manifest.gpg`,
    `duplicity-inc.${I1}.to.${I2}.vol1.difftar.gpg`,
    `duplicity-new-signatures.${I1}.to.${I2}.sigtar.gpg`,
  ]);
  const short = target().map((file) =>
    file.name === `duplicity-inc.${I1}.to.${I2}.vol1.difftar.gpg` ? { ...file, size: 380 } : file,
  );
  assert.deepEqual(judgeNewestChain(evidence(short, ledger)), {
    state: 'broken',
    problem: `duplicity-inc.${I1}.to.${I2}.vol1.difftar.gpg is 380 bytes on the target, but was 760 bytes when uploaded`,
  });
  // Sets that retention removed leave the ledger; a set that lost one file keeps its record.
  const later = recordNewestSet(
    ledger,
    without(target(), `duplicity-inc.${I1}.to.${I2}.manifest.gpg`),
    ledger.source ?? { localdir: '', hostname: '' },
  );
  assert.ok(`duplicity-inc.${I1}.to.${I2}.manifest.gpg` in later.files);
  const pruned = recordNewestSet(ledger, [], { localdir: '/s/mysql', hostname: 'db1' });
  assert.deepEqual(pruned.files, {});
});

test('another staging directory or host in the last manifest (else the ledger) means duplicity would refuse', () => {
  const last = parseManifest(manifest(1, '/var/lib/backup-agent/staging/mysql'));
  const here = { localdir: '/var/lib/backup-agent/staging/mysql', hostname: 'db1' };
  assert.equal(sourceChange(last, null, here), undefined);
  assert.match(
    sourceChange(last, null, { ...here, localdir: '/srv/staging/mysql' }) ?? '',
    /made from \/var\/lib\/backup-agent\/staging\/mysql, this one is made from \/srv\/staging\/mysql \(agent.staging_dir changed\)/,
  );
  assert.match(sourceChange(last, null, { ...here, hostname: 'db2' }) ?? '', /made on host db1, this host is db2/);
  assert.match(sourceChange(undefined, { ...here, localdir: '/old/mysql' }, here) ?? '', /made from \/old\/mysql/);
  assert.equal(sourceChange(undefined, null, here), undefined);
});
