// Rewrites the configuration table in README.md from the key tables (src/config/schema.ts and each engine's), so the
// documentation of every key cannot drift from the code (src/config/load.test.ts fails when it has); and the
// backup_agent Ansible role's defaults and key table from the same tables (test/ansible.test.ts fails when stale).
import { readFile, writeFile } from 'node:fs/promises';
import { renderConfigTable } from '../src/config/example.js';
import { ENGINES } from '../src/sources/registry.js';
import {
  ANSIBLE_CONFIG_DEFAULTS,
  ANSIBLE_KEY_TABLE,
  renderAnsibleConfigDefaults,
  renderAnsibleKeyTable,
} from './ansible-defaults.js';

const README = new URL('../README.md', import.meta.url);
const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

const text = await readFile(README, 'utf8');
const start = text.indexOf(START);
const end = text.indexOf(END);
if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} … ${END} markers`);
await writeFile(README, `${text.slice(0, start + START.length)}\n${renderConfigTable(ENGINES)}\n${text.slice(end)}`);
await writeFile(ANSIBLE_CONFIG_DEFAULTS, await renderAnsibleConfigDefaults(ENGINES));
await writeFile(ANSIBLE_KEY_TABLE, await renderAnsibleKeyTable(ENGINES));
