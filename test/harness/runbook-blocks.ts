import { readFile } from 'node:fs/promises';

const RUNBOOK = new URL('../../backup_restore.md', import.meta.url);

/**
 * The fenced block right after each `<!-- runbook:NAME -->` marker of backup_restore.md, without the
 * indentation of a block inside a list item.
 */
export async function runbookBlocks(): Promise<Map<string, string>> {
  const markdown = await readFile(RUNBOOK, 'utf8');
  const found = new Map<string, string>();
  for (const match of markdown.matchAll(/^( *)<!-- runbook:([a-z-]+) -->\n\1```sh\n([\s\S]*?)\n\1```$/gm)) {
    const indent = match[1] ?? '';
    const lines = (match[3] ?? '')
      .split('\n')
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line));
    found.set(match[2] ?? '', lines.join('\n'));
  }
  return found;
}

/** The variables a settings block assigns (`NAME=…` or `export NAME=…` at the start of a line). */
export function declaredVariables(block: string): string[] {
  return [...block.matchAll(/^(?:export )?([A-Z_]+)=/gm)].flatMap((match) =>
    match[1] === undefined ? [] : [match[1]],
  );
}

/** The variables a block reads ($NAME or ${NAME}). */
export function usedVariables(block: string): string[] {
  return [...block.matchAll(/\$\{?([A-Z_]+)/g)].flatMap((match) => (match[1] === undefined ? [] : [match[1]]));
}
