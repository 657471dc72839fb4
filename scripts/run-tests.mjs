#!/usr/bin/env node
// Runs the test files under the given directories or the given files (default: src and test) with
// node's test runner.
// Node 20's runner neither expands globs nor picks up .ts files from a directory, so the files are
// listed here. Files run one at a time: the integration tests start real servers and share 2 cores.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.length > 2 ? process.argv.slice(2) : ['src', 'test'];
const files = roots
  .flatMap((root) =>
    statSync(root).isDirectory()
      ? readdirSync(root, { recursive: true, encoding: 'utf8' }).map((name) => join(root, name))
      : [root],
  )
  .filter((path) => path.endsWith('.test.ts') && !path.split('/').includes('node_modules'))
  .sort();

if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${roots.join(', ')}`);
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
