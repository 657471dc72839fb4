// Reads backup-agent.ini into a Config, collecting every problem at once so the operator fixes
// the file in one pass. Each problem names section.key, the bad value and what is allowed.
import { readFile } from 'node:fs/promises';
import { parse as parseIni } from 'ini';
import { ConfigError, errorMessage } from '../errors.js';
import { closest } from './did-you-mean.js';
import {
  type Config,
  type EngineSection,
  type KeySpec,
  type SectionName,
  type SourceSection,
  CONFIG_KEYS,
  keySpecs,
  sectionNames,
} from './schema.js';

export const DEFAULT_CONFIG_FILE = '/etc/backup-agent.ini';

/** --config wins, then BACKUP_AGENT_CONFIG, then /etc/backup-agent.ini. */
export function configFilePath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? env['BACKUP_AGENT_CONFIG'] ?? DEFAULT_CONFIG_FILE;
}

/** `engines`: the sources' sections (sources/registry.ts ENGINES), which config/ does not know itself. */
export async function loadConfig(file: string, engines: readonly SourceSection[]): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      file,
      [`cannot read the configuration: ${errorMessage(error)}`],
      `create it with: backup-agent example-config > ${file}   (then edit it), or pass --config FILE`,
    );
  }
  return parseConfig(text, file, engines);
}

type RawSection = Record<string, unknown>;

export function parseConfig(text: string, file: string, engines: readonly SourceSection[]): Config {
  const raw = parseIni(text) as Record<string, unknown>;
  const problems: string[] = [];
  const tables: [string, Readonly<Record<string, KeySpec<unknown>>>][] = [
    ...sectionNames().map((section): [SectionName, Readonly<Record<string, KeySpec<unknown>>>] => [
      section,
      CONFIG_KEYS[section],
    ]),
    ...engines.map((engine): [string, Readonly<Record<string, KeySpec<unknown>>>] => [engine.kind, engine.keys]),
  ];
  const known = tables.map(([name]) => name);
  const sections: Record<string, RawSection> = {};

  for (const [name, value] of Object.entries(raw)) {
    if (!known.includes(name) || typeof value !== 'object' || value === null) {
      problems.push(
        typeof value === 'object'
          ? `unknown section [${name}]${suggestion(name, known, (s) => `[${s}]`)}; sections are ${known.map((s) => `[${s}]`).join(', ')}`
          : `key ${name} is outside any section; put it under one of ${known.map((s) => `[${s}]`).join(', ')}`,
      );
      continue;
    }
    sections[name] = value as RawSection;
  }

  const core: Record<string, Record<string, unknown>> = {};
  for (const section of sectionNames()) {
    // An absent section takes its defaults; a key without a default is then reported as required, by name.
    core[section] = parseSection(section, CONFIG_KEYS[section], sections[section] ?? {}, problems);
  }
  const sources: Record<string, EngineSection> = {};
  for (const engine of engines) {
    // An absent source section disables the source.
    sources[engine.kind] = parseSection(
      engine.kind,
      engine.keys,
      sections[engine.kind] ?? { enabled: 'false' },
      problems,
    ) as unknown as EngineSection;
  }
  const config = { ...(core as unknown as Omit<Config, 'file' | 'sources'>), sources, file };
  if (problems.length === 0) problems.push(...crossChecks(config));
  if (problems.length > 0)
    throw new ConfigError(file, problems, 'see the comments in the example configuration for every key');
  return config;
}

function parseSection(
  section: string,
  keys: Readonly<Record<string, KeySpec<unknown>>>,
  values: RawSection,
  problems: string[],
): Record<string, unknown> {
  const specs = keySpecs(keys);
  const names = specs.map(([name]) => name);
  for (const name of Object.keys(values)) {
    if (!names.includes(name)) {
      problems.push(`unknown key ${section}.${name}${suggestion(name, names, (k) => `${section}.${k}`)}`);
    }
  }
  const parsed: Record<string, unknown> = {};
  for (const [name, spec] of specs) {
    const given = values[name];
    if (given !== undefined && typeof given !== 'string' && typeof given !== 'boolean') {
      // `key[] = …` lines become arrays in the ini parser; every key here takes one value.
      problems.push(`${section}.${name} is given more than once or as a list: write it once, as ${name} = value`);
      continue;
    }
    const text = given === undefined ? spec.default : String(given).trim();
    if (text === null) {
      problems.push(`${section}.${name} is required: ${spec.doc}`);
      continue;
    }
    const result = spec.schema.safeParse(text);
    if (result.success) {
      parsed[name] = result.data;
    } else {
      const reason = result.error.issues.map((issue) => issue.message).join('; ');
      // Error messages end up in the journal, mails and support tickets.
      const shown = spec.secret === true ? '(value not shown: it can hold a password)' : `= "${text}"`;
      problems.push(`${section}.${name} ${shown}: ${reason}`);
    }
  }
  return parsed;
}

/** Rules that involve more than one key. */
function crossChecks(config: Config): string[] {
  const problems: string[] = [];
  const { target } = config;
  if (target.encryption === 'pubkey' && target.encrypt_key === '') {
    problems.push('target.encrypt_key is empty but target.encryption = pubkey: set the fingerprint of the public key');
  }
  // duplicity signs through gpg only: its --no-encryption volumes are plain gzip, silently unsigned.
  if (target.encryption === 'none' && target.sign_key !== '') {
    problems.push(
      'target.sign_key is set but target.encryption = none: duplicity signs only encrypted volumes; use symmetric or pubkey',
    );
  }
  const sources = Object.entries(config.sources);
  for (const [kind, section] of sources) {
    if (section.enabled && section.databases.length === 0) {
      problems.push(`${kind}.databases is empty but ${kind}.enabled = true: list the databases to back up`);
    }
  }
  if (!sources.some(([, section]) => section.enabled)) {
    problems.push(
      `no source is enabled: add a ${sources
        .map(([kind]) => `[${kind}]`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1')} section with enabled = true`,
    );
  }
  return problems;
}

function suggestion(word: string, candidates: readonly string[], format: (candidate: string) => string): string {
  const match = closest(word, candidates);
  return match === undefined ? '' : ` (did you mean ${format(match)}?)`;
}
