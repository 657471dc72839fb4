// Renders the commented example backup-agent.ini (shipped as /etc/backup-agent.ini) from the key table.
import { OPTIONAL_SECTIONS, keySpecs, sectionNames } from './schema.js';

const HEADER = `; backup-agent configuration. Every key is shown with its default.
; Check it with: backup-agent check     Documentation: man backup-agent, /usr/share/doc/backup-agent/
`;

export function renderExampleConfig(): string {
  const blocks = sectionNames().map((section) => {
    const lines = [`[${section}]`];
    if (OPTIONAL_SECTIONS.includes(section)) lines.unshift(`; Remove this section to skip ${section}.`);
    for (const [name, spec] of keySpecs(section)) {
      lines.push(`; ${spec.doc}${spec.default === null ? ' Required.' : ''}`);
      const value = spec.example ?? spec.default ?? '';
      lines.push(value === '' ? `${name} =` : `${name} = ${value}`);
    }
    return lines.join('\n');
  });
  return `${HEADER}\n${blocks.join('\n\n')}\n`;
}

/** Markdown table of every key, for the README. */
export function renderConfigTable(): string {
  const rows = sectionNames().flatMap((section) =>
    keySpecs(section).map(([name, spec]) => {
      const shown = spec.default === null ? '(required)' : spec.default === '' ? '(empty)' : `\`${spec.default}\``;
      return `| \`${section}.${name}\` | ${shown} | ${spec.doc.replaceAll('|', '\\|')} |`;
    }),
  );
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
