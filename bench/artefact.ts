// The agent the benchmark runs: the shipped artefact, i.e. the bundle the .deb installs as
// /usr/bin/backup-agent -> ../lib/backup-agent/main.mjs, started the way its #! line starts it
// (`/usr/bin/node --max-semi-space-size=1`). The .deb is built with scripts/build-deb.sh (Debian 13
// build root, Debian's node and npm) unless --deb names one, copied into the temp root at once (other
// people build on this machine) and extracted there with `dpkg-deb -x`. `--agent dist` runs a copy of
// dist/ with package.json's node flag instead, as the benchmark did before.
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, readdir, readFile, readlink, stat, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { NODE_FLAG } from '../test/harness/agent.js';
import { log } from './cleanup.js';

const REPO = resolve(new URL('..', import.meta.url).pathname);

export interface Artefact {
  /** The entry point node runs. */
  readonly main: string;
  /** The node binary and the flags before the entry point. */
  readonly node: string;
  readonly nodeArgs: readonly string[];
  /** For the header: how it was built and what it is. */
  readonly description: string;
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Builds the .deb with scripts/build-deb.sh (no lintian: it checks the package, not what runs). */
async function buildDeb(root: string): Promise<{ deb: string; how: string }> {
  const started = Date.now();
  log('building the .deb: scripts/build-deb.sh --no-lintian (Debian 13 build root)');
  const built = await execa(join(REPO, 'scripts', 'build-deb.sh'), ['--no-lintian'], {
    stdin: 'ignore',
    reject: false,
    all: true,
  });
  if (built.exitCode !== 0) throw new Error(`scripts/build-deb.sh failed (exit ${built.exitCode}):\n${built.all}`);
  const names = (await readdir(join(REPO, 'build'))).filter((name) => /^backup-agent_.*\.deb$/.test(name));
  const newest = (
    await Promise.all(names.map(async (name) => ({ name, mtime: (await stat(join(REPO, 'build', name))).mtimeMs })))
  ).sort((a, b) => b.mtime - a.mtime)[0];
  if (newest === undefined || newest.mtime < started - 1000) throw new Error('scripts/build-deb.sh made no new .deb');
  const deb = join(root, newest.name);
  await copyFile(join(REPO, 'build', newest.name), deb);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const lastLines = String(built.all)
    .split('\n')
    .filter((line) => line.includes('node v') || line.includes('.deb:'))
    .map((line) => line.replace(/^build-in-root: \[\s*\d+s\] /, ''));
  return { deb, how: `built by scripts/build-deb.sh --no-lintian in ${seconds} s (${lastLines.join('; ')})` };
}

export async function shippedAgent(root: string, givenDeb: string | undefined): Promise<Artefact> {
  const { deb, how } =
    givenDeb === undefined
      ? await buildDeb(root)
      : await (async () => {
          const copy = join(root, 'given.deb');
          await copyFile(givenDeb, copy);
          return { deb: copy, how: `given with --deb ${givenDeb}` };
        })();
  const tree = join(root, 'deb');
  await mkdir(tree, { mode: 0o755 });
  await execa('dpkg-deb', ['-x', deb, tree], { stdin: 'ignore' });
  const link = await readlink(join(tree, 'usr', 'bin', 'backup-agent'));
  const main = resolve(join(tree, 'usr', 'bin'), link);
  const shebang = (await readFile(main, 'utf8')).split('\n', 1)[0] ?? '';
  const words = shebang.replace(/^#!/, '').trim().split(/\s+/);
  const [node, ...nodeArgs] = words;
  if (node === undefined || !shebang.startsWith('#!')) throw new Error(`${main} has no #! line: ${shebang}`);
  const version = (await execa(node, [...nodeArgs, main, '--version'], { stdin: 'ignore' })).stdout.trim();
  const control = (await execa('dpkg-deb', ['-f', deb, 'Version'], { stdin: 'ignore' })).stdout.trim();
  return {
    main,
    node,
    nodeArgs,
    description:
      `the .deb's bundle (${how}); package ${control}, sha256 ${(await sha256(deb)).slice(0, 12)}; ` +
      `extracted with dpkg-deb -x, run as /usr/bin/backup-agent -> ${link} with its #! line ` +
      `"${shebang}" (host node ${(await execa(node, ['--version'])).stdout.trim()}); --version says ${version}`,
  };
}

/**
 * Other people rebuild dist/ on this machine while the benchmark runs; a private copy keeps every
 * round on the same agent. node_modules is linked, not copied: it does not change during a run.
 */
export async function distAgent(root: string): Promise<Artefact> {
  const dir = join(root, 'agent-build');
  await mkdir(dir, { mode: 0o755 });
  await cp(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true });
  await copyFile(join(REPO, 'package.json'), join(dir, 'package.json'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return {
    main: join(dir, 'dist', 'main.js'),
    node: process.execPath,
    nodeArgs: [NODE_FLAG],
    description: `a copy of dist/ run as ${process.execPath} ${NODE_FLAG} dist/main.js (--agent dist)`,
  };
}
