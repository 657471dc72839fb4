// Bundles the tsc output (dist/main.js) and its npm dependencies into ES modules for
// /usr/lib/backup-agent: main.mjs and the chunks/ it imports, and lists the bundled packages for the
// copyright file.
//
// Usage (from the repository root, after `npm run build`): node packaging/bundle.mjs OUTFILE PACKAGES_JSON
//
// Why a bundle: see packaging/README.md (smaller install, faster start-up than production node_modules).
// What stays outside: sd-notify, a native addon. It ships as node_modules/sd-notify next to the bundle
// (its .node file cannot be inlined), and Node resolves it from there at run time.
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { build } from 'esbuild';

const [outfile, packagesJson] = process.argv.slice(2);
if (outfile === undefined || packagesJson === undefined) {
  process.stderr.write('usage: node packaging/bundle.mjs OUTFILE PACKAGES_JSON\n');
  process.exit(2);
}
const {
  version,
  config: { nodeFlag },
} = JSON.parse(readFileSync('package.json', 'utf8'));

// src/cli/version.ts reads ../../package.json next to dist/ at run time; the installed bundle has
// no package.json there, so the version is compiled in. The check makes a changed version.ts fail
// the build instead of silently shipping a different file.
const versionPlugin = {
  name: 'compiled-in-version',
  setup(esbuild) {
    esbuild.onLoad({ filter: /[\\/]dist[\\/]cli[\\/]version\.js$/ }, (args) => {
      if (!readFileSync(args.path, 'utf8').includes('package.json')) {
        throw new Error(`${args.path} no longer reads package.json: update packaging/bundle.mjs`);
      }
      return { contents: `export const VERSION = ${JSON.stringify(version)};\n`, loader: 'js' };
    });
  },
};

const result = await build({
  entryPoints: { [basename(outfile, '.mjs')]: 'dist/main.js' },
  outdir: dirname(outfile),
  // Code splitting: each command's modules (src/cli/program.ts imports them when the command runs)
  // land in chunks/ and are only read when needed. One file of everything made `--version` parse
  // 2 MB of JavaScript and cost 54 MiB of RSS; split, it is 45 MiB.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: ['sd-notify'],
  // Not minified: stack traces in the journal stay readable. Minifying halves main.mjs (2.1 → 1.1 MB)
  // but the .deb is xz-compressed either way.
  minify: false,
  // Licence texts go to /usr/share/doc/backup-agent/copyright instead.
  legalComments: 'none',
  metafile: true,
  // Bundled CommonJS packages call require() for Node built-ins; an ES module has no require.
  banner: {
    js: "import { createRequire as __bundleCreateRequire } from 'node:module';\nconst require = __bundleCreateRequire(import.meta.url);",
  },
  plugins: [versionPlugin],
  logLevel: 'warning',
});

// Every npm package with at least one file in the bundle, with its licence and copyright lines.
const names = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) names.add(match[1]);
}
const packages = [...names].sort().map((name) => {
  const dir = join('node_modules', name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenseFile = readdirSync(dir).find((file) => /^(licen[cs]e|copying)(\.md|\.txt)?$/i.test(file));
  const text = licenseFile === undefined ? '' : readFileSync(join(dir, licenseFile), 'utf8');
  const copyright = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^(\(c\)|copyright\b)/i.test(line) && !/^copyright (notice|holders?)\b/i.test(line));
  return { name, version: meta.version, license: meta.license ?? 'UNKNOWN', copyright };
});
writeFileSync(packagesJson, `${JSON.stringify(packages, null, 2)}\n`);
if (!existsSync(outfile)) throw new Error(`esbuild wrote no ${outfile}`);

// Debian's node is /usr/bin/node (package nodejs); no env lookup through PATH for a system tool.
// package.json's config.nodeFlag: a 1 MiB young generation keeps the daemon's start-up peak and a
// run's peak about 7 MiB lower (bench/README.md); the agent allocates little, so the extra
// scavenges cost nothing measurable. The kernel passes everything after the interpreter as one
// argument, hence one flag.
if (/\s/.test(nodeFlag)) throw new Error(`package.json config.nodeFlag must be one flag for the #! line: ${nodeFlag}`);
const code = readFileSync(outfile, 'utf8').replace(/^#!.*\n/, '');
writeFileSync(outfile, `#!/usr/bin/node ${nodeFlag}\n${code}`, { mode: 0o755 });
