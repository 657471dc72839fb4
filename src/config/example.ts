// Renders the commented example backup-agent.ini (shipped as /etc/backup-agent.ini) and the README's
// key table from the key tables: the core sections here, each source's from its engine.
import { CONFIG_KEYS, type KeySpec, type SourceSection, keySpecs, sectionNames } from './schema.js';

const HEADER = `; backup-agent configuration. Every key is shown with its default.
; Check it with: backup-agent check     Documentation: man backup-agent, /usr/share/doc/backup-agent/
`;

interface Section {
  readonly name: string;
  readonly keys: Readonly<Record<string, KeySpec<unknown>>>;
  readonly optional: boolean;
}

/** The core sections up to [target], then one per engine, then the rest: the order a reader sets them up. */
function sections(engines: readonly SourceSection[]): Section[] {
  const core = sectionNames().map((name): Section => ({ name, keys: CONFIG_KEYS[name], optional: false }));
  const split = core.findIndex((section) => section.name === 'target') + 1;
  return [
    ...core.slice(0, split),
    ...engines.map((engine): Section => ({ name: engine.kind, keys: engine.keys, optional: true })),
    ...core.slice(split),
  ];
}

export function renderExampleConfig(engines: readonly SourceSection[]): string {
  const blocks = sections(engines).map((section) => {
    const lines = [`[${section.name}]`];
    if (section.optional) lines.unshift(`; Remove this section to skip ${section.name}.`);
    for (const [name, spec] of keySpecs(section.keys)) {
      lines.push(`; ${spec.doc}${spec.default === null ? ' Required.' : ''}`);
      const value = spec.example ?? spec.default ?? '';
      lines.push(value === '' ? `${name} =` : `${name} = ${value}`);
    }
    return lines.join('\n');
  });
  return `${HEADER}\n${blocks.join('\n\n')}\n`;
}

/** Markdown table of every key, for the README. */
export function renderConfigTable(engines: readonly SourceSection[]): string {
  const rows = sections(engines).flatMap((section) =>
    keySpecs(section.keys).map(([name, spec]) => {
      const shown = spec.default === null ? '(required)' : spec.default === '' ? '(empty)' : `\`${spec.default}\``;
      return `| \`${section.name}.${name}\` | ${shown} | ${spec.doc.replaceAll('|', '\\|')} |`;
    }),
  );
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
