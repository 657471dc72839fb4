// What the daemon may write under backup-agent.service. ProtectSystem=strict makes the whole file
// system read-only inside the unit except the directories the unit names, so a configured path
// outside them works from a shell (where `check` and manual runs happen) and fails only in the
// daemon, where a failed metrics write is merely logged. `check` therefore reads the sandbox the
// daemon gets: from the running systemd (drop-ins included, as loaded), else from the unit files.
import { existsSync } from 'node:fs';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { CommandRunner } from './run-command.js';
import { quickDeadline } from './run-command.js';

export const UNIT = 'backup-agent.service';

/** The unit's settings that decide where its processes can write. Paths as the unit spells them. */
export interface UnitSandbox {
  /** Where the settings come from: `systemctl show`, or the unit file and its drop-ins. */
  readonly source: string;
  readonly protectSystem: 'no' | 'yes' | 'full' | 'strict';
  readonly protectHome: 'no' | 'yes' | 'read-only' | 'tmpfs';
  readonly privateTmp: boolean;
  readonly readWritePaths: readonly string[];
  readonly readOnlyPaths: readonly string[];
  readonly inaccessiblePaths: readonly string[];
  readonly stateDirectory: readonly string[];
  readonly cacheDirectory: readonly string[];
  readonly logsDirectory: readonly string[];
  readonly runtimeDirectory: readonly string[];
  /** The configuration the daemon reads: ExecStart's --config, else $BACKUP_AGENT_CONFIG; undefined: the default. */
  readonly configFile: string | undefined;
  /** systemd has not loaded changed unit files yet (`systemctl daemon-reload`). */
  readonly needsReload: boolean;
}

export type Access = 'writable' | 'read-only' | 'hidden' | 'private';

export interface Verdict {
  readonly access: Access;
  /** The setting that decides it, e.g. `ProtectSystem=strict` or `ReadWritePaths=/srv/dumps`. */
  readonly because: string;
  /** The directory that setting covers. */
  readonly under: string;
}

const LIST_KEYS = {
  ReadWritePaths: 'readWritePaths',
  ReadOnlyPaths: 'readOnlyPaths',
  InaccessiblePaths: 'inaccessiblePaths',
  StateDirectory: 'stateDirectory',
  CacheDirectory: 'cacheDirectory',
  LogsDirectory: 'logsDirectory',
  RuntimeDirectory: 'runtimeDirectory',
} as const;
const SCALAR_KEYS = ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'ExecStart', 'Environment'] as const;
const SHOW_PROPERTIES = [...Object.keys(LIST_KEYS), ...SCALAR_KEYS, 'LoadState', 'NeedDaemonReload'];

type Settings = Map<string, string[]>;

/** Parses `systemctl show -p …` output (one Key=value per line, lists separated by spaces). */
export function parseShow(text: string): UnitSandbox | undefined {
  const settings: Settings = new Map();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) settings.set(line.slice(0, at), [line.slice(at + 1)]);
  }
  if (settings.get('LoadState')?.[0] !== 'loaded') return undefined;
  const lists: Settings = new Map(
    Object.keys(LIST_KEYS).map((key) => [key, words(settings.get(key)?.[0] ?? '')] as const),
  );
  return build('systemctl show', settings, lists, isTrue(settings.get('NeedDaemonReload')?.[0] ?? 'no'));
}

/**
 * Parses a unit file followed by its drop-ins, in the order systemd applies them: a later scalar
 * wins, a list grows, and an empty assignment empties it.
 */
export function parseUnitFiles(files: readonly { readonly path: string; readonly text: string }[]): UnitSandbox {
  const settings: Settings = new Map();
  const lists: Settings = new Map();
  for (const { text } of files) {
    let section = '';
    for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
      const header = /^\[(.+)\]$/.exec(trimmed);
      if (header) {
        section = header[1] ?? '';
        continue;
      }
      const at = trimmed.indexOf('=');
      if (section !== 'Service' || at <= 0) continue;
      const key = trimmed.slice(0, at).trim();
      const value = trimmed.slice(at + 1).trim();
      if (key in LIST_KEYS) lists.set(key, value === '' ? [] : [...(lists.get(key) ?? []), ...words(value)]);
      else settings.set(key, [value]);
    }
  }
  return build(files.map((file) => file.path).join(', '), settings, lists, false);
}

function build(source: string, settings: Settings, lists: Settings, needsReload: boolean): UnitSandbox {
  const scalar = (key: string): string => settings.get(key)?.[0] ?? '';
  const list = (key: keyof typeof LIST_KEYS): readonly string[] => lists.get(key) ?? [];
  const protectSystem = scalar('ProtectSystem');
  const protectHome = scalar('ProtectHome');
  return {
    source,
    protectSystem:
      protectSystem === 'strict' || protectSystem === 'full' ? protectSystem : isTrue(protectSystem) ? 'yes' : 'no',
    protectHome:
      protectHome === 'read-only' || protectHome === 'tmpfs' ? protectHome : isTrue(protectHome) ? 'yes' : 'no',
    privateTmp: isTrue(scalar('PrivateTmp')),
    readWritePaths: list('ReadWritePaths'),
    readOnlyPaths: list('ReadOnlyPaths'),
    inaccessiblePaths: list('InaccessiblePaths'),
    stateDirectory: list('StateDirectory'),
    cacheDirectory: list('CacheDirectory'),
    logsDirectory: list('LogsDirectory'),
    runtimeDirectory: list('RuntimeDirectory'),
    configFile:
      /(?:^|\s)(?:-c|--config)(?:=|\s+)([^\s;]+)/.exec(scalar('ExecStart'))?.[1] ??
      /(?:^|\s)"?BACKUP_AGENT_CONFIG=([^\s"]+)/.exec(scalar('Environment'))?.[1],
    needsReload,
  };
}

/**
 * What the unit's processes can do at `path` (absolute, normalised): the most specific setting
 * that covers it decides, as systemd stacks the mounts deepest last; at equal depth the stricter.
 * Entries of ReadWritePaths= and friends must already be plain paths (see resolvePaths).
 */
export function accessInSandbox(sandbox: UnitSandbox, path: string): Verdict {
  const rules: { readonly path: string; readonly verdict: Verdict }[] = [];
  const add = (paths: readonly string[], access: Access, because: (path: string) => string) => {
    for (const rule of paths) rules.push({ path: rule, verdict: { access, because: because(rule), under: rule } });
  };
  const system = `ProtectSystem=${sandbox.protectSystem}`;
  if (sandbox.protectSystem === 'strict') add(['/'], 'read-only', () => system);
  if (sandbox.protectSystem === 'full') add(['/usr', '/boot', '/efi', '/etc'], 'read-only', () => system);
  if (sandbox.protectSystem === 'yes') add(['/usr', '/boot', '/efi'], 'read-only', () => system);
  const home = `ProtectHome=${sandbox.protectHome}`;
  const homes = ['/home', '/root', '/run/user'];
  if (sandbox.protectHome === 'yes') add(homes, 'hidden', () => home);
  if (sandbox.protectHome === 'read-only') add(homes, 'read-only', () => home);
  if (sandbox.protectHome === 'tmpfs') add(homes, 'private', () => home);
  if (sandbox.privateTmp) add(['/tmp', '/var/tmp'], 'private', () => 'PrivateTmp=yes');
  const own = (key: string, base: string, names: readonly string[]) =>
    add(
      names.map((name) => posix.join(base, name.split(':')[0] ?? name)),
      'writable',
      (rule) => `${key}=${posix.relative(base, rule)}`,
    );
  own('StateDirectory', '/var/lib', sandbox.stateDirectory);
  own('CacheDirectory', '/var/cache', sandbox.cacheDirectory);
  own('LogsDirectory', '/var/log', sandbox.logsDirectory);
  own('RuntimeDirectory', '/run', sandbox.runtimeDirectory);
  add(sandbox.readWritePaths, 'writable', (rule) => `ReadWritePaths=${rule}`);
  add(sandbox.readOnlyPaths, 'read-only', (rule) => `ReadOnlyPaths=${rule}`);
  add(sandbox.inaccessiblePaths, 'hidden', (rule) => `InaccessiblePaths=${rule}`);

  const strictness: Record<Access, number> = { hidden: 3, 'read-only': 2, private: 1, writable: 0 };
  let best: { readonly path: string; readonly verdict: Verdict } = {
    path: '/',
    verdict: { access: 'writable', because: 'no ProtectSystem=', under: '/' },
  };
  let bestDepth = -1;
  for (const rule of rules) {
    if (!covers(rule.path, path)) continue;
    const depth = rule.path === '/' ? 0 : rule.path.split('/').length - 1;
    if (
      depth > bestDepth ||
      (depth === bestDepth && strictness[rule.verdict.access] > strictness[best.verdict.access])
    ) {
      best = rule;
      bestDepth = depth;
    }
  }
  return best.verdict;
}

/** A directory the daemon writes in, named by the configuration key it comes from. */
export interface WrittenPath {
  readonly key: string;
  /** The key's value as configured (a file for metrics.textfile and agent.state_file). */
  readonly value: string;
  /** The directory that must be writable: canonical, see canonicalPath. */
  readonly dir: string;
}

type BlockedAccess = Exclude<Access, 'writable'>;

export interface Blocked extends WrittenPath {
  readonly verdict: Verdict & { readonly access: BlockedAccess };
}

export function blockedPaths(sandbox: UnitSandbox, written: readonly WrittenPath[]): Blocked[] {
  return written.flatMap((path) => {
    const { access, because, under } = accessInSandbox(sandbox, path.dir);
    return access === 'writable' ? [] : [{ ...path, verdict: { access, because, under } }];
  });
}

const ACCESS_TEXT: Record<BlockedAccess, string> = {
  'read-only': 'read-only',
  hidden: 'hidden',
  private: 'private to the unit (a directory of its own that nobody else sees and that is emptied when it stops)',
};

/** The failed check's text: each path with its key and the setting that blocks it, then the fix. */
export function describeBlocked(
  sandbox: UnitSandbox,
  blocked: readonly Blocked[],
): { readonly detail: string; readonly hint: string } {
  const writable = [
    ...sandbox.stateDirectory.map((name) => posix.join('/var/lib', name.split(':')[0] ?? name)),
    ...sandbox.cacheDirectory.map((name) => posix.join('/var/cache', name.split(':')[0] ?? name)),
    ...sandbox.readWritePaths,
  ];
  const each = blocked.map(({ key, value, dir, verdict }) => {
    const where = value === dir ? `${key} = ${value}` : `${key} = ${value} (directory ${dir})`;
    return `${where} is ${ACCESS_TEXT[verdict.access]} under ${verdict.because}`;
  });
  const detail = `the daemon (${UNIT}, from ${sandbox.source}) cannot write: ${each.join('; ')}; it can write ${writable.join(', ')}`;
  const unique = (values: readonly string[]) => [...new Set(values)];
  const readOnly = unique(blocked.filter((path) => path.verdict.access === 'read-only').map((path) => path.dir));
  // ReadWritePaths= cannot open a hidden or private directory: those must move.
  const elsewhere = blocked.filter((path) => path.verdict.access !== 'read-only');
  const fixes = [
    ...(readOnly.length === 0
      ? []
      : [
          `systemctl edit backup-agent, add the lines "[Service]" and "ReadWritePaths=${readOnly.join(' ')}", then systemctl restart backup-agent`,
        ]),
    ...(elsewhere.length === 0
      ? []
      : [
          `set ${unique(elsewhere.map((path) => path.key)).join(', ')} to a directory outside ${unique(elsewhere.map(({ verdict }) => `${verdict.under} (${verdict.because})`)).join(', ')}`,
        ]),
    ...(sandbox.needsReload ? ['systemd has not loaded the changed unit files yet: systemctl daemon-reload'] : []),
  ];
  return { detail, hint: fixes.join('; ') };
}

function covers(rule: string, path: string): boolean {
  return rule === '/' || path === rule || path.startsWith(`${rule}/`);
}

/**
 * The sandbox with plain, symlink-free paths, as systemd sees them when the unit starts: a
 * "-" entry that does not exist is dropped (systemd ignores it), "+" (relative to RootDirectory=,
 * which the unit does not set) is stripped.
 */
export async function resolvePaths(sandbox: UnitSandbox): Promise<UnitSandbox> {
  const resolve = async (entries: readonly string[]): Promise<string[]> => {
    const out: string[] = [];
    for (const entry of entries) {
      const optional = /^[-+]*-/.test(entry);
      const path = entry.replace(/^[-+]+/, '');
      if (optional && !existsSync(path)) continue;
      out.push(await canonicalPath(path));
    }
    return out;
  };
  return {
    ...sandbox,
    readWritePaths: await resolve(sandbox.readWritePaths),
    readOnlyPaths: await resolve(sandbox.readOnlyPaths),
    inaccessiblePaths: await resolve(sandbox.inaccessiblePaths),
  };
}

/** The path with the symlinks of its existing part resolved; the missing rest is kept as written. */
export async function canonicalPath(path: string): Promise<string> {
  const normal = posix.resolve(path);
  let existing = normal;
  for (;;) {
    try {
      return posix.join(await realpath(existing), posix.relative(existing, normal));
    } catch {
      if (existing === '/') return normal;
      existing = dirname(existing);
    }
  }
}

/**
 * The installed unit's sandbox, or undefined when the unit is not installed. Asks the running
 * systemd first: it has the drop-ins of `systemctl edit` merged. Without systemd (a container
 * without an init, or no access to its bus), the files systemd would load.
 */
export async function readUnitSandbox(runner: CommandRunner): Promise<UnitSandbox | undefined> {
  if (existsSync('/run/systemd/system')) {
    const shown = await runner
      .run({
        argv: ['systemctl', 'show', UNIT, ...SHOW_PROPERTIES.map((property) => `--property=${property}`)],
        stdout: 'capture',
        deadline: quickDeadline('systemctl show'),
      })
      .catch(() => undefined);
    if (shown !== undefined) return parseShow(shown.stdout);
  }
  const files = await unitFiles();
  return files.length === 0 ? undefined : parseUnitFiles(files);
}

// systemd's system unit search path, most important first.
const UNIT_DIRS = [
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
];

async function unitFiles(): Promise<{ path: string; text: string }[]> {
  const read = (path: string) => readFile(path, 'utf8').then((text) => ({ path, text }));
  const main = UNIT_DIRS.map((dir) => join(dir, UNIT)).find((path) => existsSync(path));
  if (main === undefined) return [];
  // A drop-in name in a more important directory masks the same name further down.
  const dropIns = new Map<string, string>();
  for (const dir of [...UNIT_DIRS].reverse()) {
    const names = await readdir(join(dir, `${UNIT}.d`)).catch(() => []);
    for (const name of names) if (name.endsWith('.conf')) dropIns.set(name, join(dir, `${UNIT}.d`, name));
  }
  const ordered = [...dropIns.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, path]) => path);
  return Promise.all([main, ...ordered].map(read));
}

function words(value: string): string[] {
  return value.split(/\s+/).filter((word) => word !== '');
}

function isTrue(value: string): boolean {
  return ['yes', 'true', 'on', '1'].includes(value);
}
