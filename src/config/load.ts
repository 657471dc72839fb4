// Reads backup-agent.ini into a Config, collecting every problem at once so the operator fixes
// the file in one pass. Each problem names section.key, the bad value and what is allowed.
import { readFile } from 'node:fs/promises';
import { parse as parseIni } from 'ini';
import { ConfigError, errorMessage } from '../errors.js';
import { closest } from './did-you-mean.js';
import { type Config, OPTIONAL_SECTIONS, type SectionName, keySpecs, sectionNames } from './schema.js';

export const DEFAULT_CONFIG_FILE = '/etc/backup-agent.ini';

/** --config wins, then BACKUP_AGENT_CONFIG, then /etc/backup-agent.ini. */
export function configFilePath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? env['BACKUP_AGENT_CONFIG'] ?? DEFAULT_CONFIG_FILE;
}

export async function loadConfig(file: string): Promise<Config> {
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
  return parseConfig(text, file);
}

type RawSection = Record<string, unknown>;

export function parseConfig(text: string, file: string): Config {
  const raw = parseIni(text) as Record<string, unknown>;
  const problems: string[] = [];
  const known = sectionNames();
  const sections: Partial<Record<SectionName, RawSection>> = {};

  for (const [name, value] of Object.entries(raw)) {
    if (!isSectionName(name, known) || typeof value !== 'object' || value === null) {
      problems.push(
        typeof value === 'object'
          ? `unknown section [${name}]${suggestion(name, known, (s) => `[${s}]`)}; sections are ${known.map((s) => `[${s}]`).join(', ')}`
          : `key ${name} is outside any section; put it under one of ${known.map((s) => `[${s}]`).join(', ')}`,
      );
      continue;
    }
    sections[name] = value as RawSection;
  }

  const config: Record<string, Record<string, unknown>> = { file: {} };
  for (const section of known) {
    // An absent source section disables the source; any other absent section takes its defaults,
    // and a key without a default is then reported as required, by name.
    const absent: RawSection = OPTIONAL_SECTIONS.includes(section) ? { enabled: 'false' } : {};
    config[section] = parseSection(section, sections[section] ?? absent, problems);
  }
  if (problems.length === 0) problems.push(...crossChecks(config as unknown as Config));
  if (problems.length > 0)
    throw new ConfigError(file, problems, 'see the comments in the example configuration for every key');
  return { ...(config as unknown as Omit<Config, 'file'>), file };
}

function parseSection(section: SectionName, values: RawSection, problems: string[]): Record<string, unknown> {
  const specs = keySpecs(section);
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
  for (const source of ['mysql', 'influxdb'] as const) {
    if (config[source].enabled && config[source].databases.length === 0) {
      problems.push(`${source}.databases is empty but ${source}.enabled = true: list the databases to back up`);
    }
  }
  if (!config.mysql.enabled && !config.influxdb.enabled) {
    problems.push('no source is enabled: add a [mysql] or [influxdb] section with enabled = true');
  }
  return problems;
}

function isSectionName(name: string, known: readonly SectionName[]): name is SectionName {
  return (known as readonly string[]).includes(name);
}

function suggestion(word: string, candidates: readonly string[], format: (candidate: string) => string): string {
  const match = closest(word, candidates);
  return match === undefined ? '' : ` (did you mean ${format(match)}?)`;
}
