// Writes /usr/share/doc/backup-agent/copyright in the machine-readable format (DEP-5): the agent's
// own licence, then every npm package that is bundled into main.mjs or shipped beside it, with the
// copyright lines from its licence file. A licence without a text below fails the build: a new
// dependency under another licence must be looked at, not shipped unnoticed.
//
// Usage: node packaging/copyright.mjs BUNDLED_JSON SHIPPED_JSON OUTFILE
import { readFileSync, writeFileSync } from 'node:fs';

const [bundledJson, shippedJson, outfile] = process.argv.slice(2);
if (outfile === undefined) {
  process.stderr.write('usage: node packaging/copyright.mjs BUNDLED_JSON SHIPPED_JSON OUTFILE\n');
  process.exit(2);
}
const bundled = JSON.parse(readFileSync(bundledJson, 'utf8'));
const shipped = JSON.parse(readFileSync(shippedJson, 'utf8'));

const TEXTS = {
  MIT: `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.`,
  'MIT-0': `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`,
  // Debian ships this one; policy 12.5 asks for a reference instead of the full text.
  'Apache-2.0': `Licensed under the Apache License, Version 2.0.

On Debian systems, the full text of the Apache License, Version 2.0 can be
found in /usr/share/common-licenses/Apache-2.0.`,
  'BSD-3-Clause': `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice,
this list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
this list of conditions and the following disclaimer in the documentation
and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors
may be used to endorse or promote products derived from this software without
specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
};

/** A DEP-5 field value over several lines: continuation lines start with a space, empty ones are " .". */
function continued(lines) {
  return lines.map((line, index) => (index === 0 ? line : line === '' ? ' .' : ` ${line}`)).join('\n');
}

function stanza(files, packages) {
  const licenses = [...new Set(packages.map((pkg) => pkg.license))].sort();
  for (const license of licenses) {
    if (TEXTS[license] === undefined)
      throw new Error(
        `no licence text for "${license}" (${packages
          .filter((p) => p.license === license)
          .map((p) => p.name)
          .join(', ')})`,
      );
  }
  const holders = [
    ...new Set(packages.flatMap((pkg) => (pkg.copyright.length > 0 ? pkg.copyright : [`the authors of ${pkg.name}`]))),
  ];
  return [
    `Files: ${files}`,
    `Copyright: ${continued(holders.map((line) => line.replace(/^copyright\s*(\(c\)|©)?\s*/i, '')))}`,
    `License: ${licenses.join(' and ')}`,
    `Comment: ${continued(['npm packages in these files:', ...packages.filter((pkg) => pkg.version !== '').map((pkg) => `${pkg.name} ${pkg.version} (${pkg.license})`)])}`,
  ].join('\n');
}

const own = { name: 'backup-agent', version: '', license: 'MIT', copyright: ['2026 backup-agent maintainers'] };
const all = [own, ...bundled, ...shipped];
const paragraphs = [
  ['Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/', 'Upstream-Name: backup-agent'].join(
    '\n',
  ),
  ['Files: *', 'Copyright: 2026 backup-agent maintainers', 'License: MIT'].join('\n'),
  stanza('usr/lib/backup-agent/main.mjs', [own, ...bundled]),
  ...(shipped.length > 0 ? [stanza('usr/lib/backup-agent/node_modules/*', shipped)] : []),
  ...[...new Set(all.map((pkg) => pkg.license))]
    .sort()
    .map((license) => `License: ${continued([license, ...TEXTS[license].split('\n')])}`),
];
writeFileSync(outfile, `${paragraphs.join('\n\n')}\n`);
