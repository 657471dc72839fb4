// The completeness proof of a pg_dump archive, used by the dump before the staging swap and by
// restore and verify on a downloaded set, without a server. pg_restore --list alone proves little:
// the table of contents sits at the start of the file and still reads when the data after it is
// cut short (checked on 15.18). So pg_restore also reads every data block to its end, writing the
// SQL to /dev/null; a file cut anywhere fails with "could not read from input file: end of file".
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupFailedError } from '../../errors.js';
import { CommandFailedError, type CommandRunner, type CommandSpec, type Deadline } from '../../system/run-command.js';
import { openRegularFile } from '../../system/root-fs.js';
import type { Argv } from '../source.js';
import { listCommand, readThroughCommand } from './commands.js';

/** What an archive's table of contents says about the database in it. */
export interface ArchiveContents {
  /** The database pg_dump read, from the archive's header. */
  readonly database: string | null;
  /** The database's owner (the DATABASE entry --create writes), or null. */
  readonly owner: string | null;
  /** "schema.table" of every TABLE DATA entry, sorted. */
  readonly tables: readonly string[];
}

export type RunAs = CommandSpec['runAs'];

export const GLOBALS_FILE = 'globals.sql';
const GLOBALS_TRAILER = '\n--\n-- PostgreSQL database cluster dump complete\n--\n\n';

export function archiveFile(dir: string, database: string): string {
  return join(dir, `${database}.dump`);
}

/** Reads pg_restore --list output. A name holding a space makes the line ambiguous: it is then read as the middle words. */
export function parseToc(listing: string): ArchiveContents {
  let database: string | null = null;
  let owner: string | null = null;
  const tables: string[] = [];
  for (const line of listing.split('\n')) {
    const header = /^;\s+dbname: (.*)$/.exec(line);
    if (header?.[1] !== undefined) database = header[1];
    const entry = /^\d+; \d+ \d+ (.*)$/.exec(line)?.[1];
    if (entry === undefined) continue;
    if (entry.startsWith('TABLE DATA ')) {
      const words = entry.slice('TABLE DATA '.length).split(' ');
      if (words.length >= 3) tables.push(`${words[0]}.${words.slice(1, -1).join(' ')}`);
    } else if (entry.startsWith('DATABASE - ')) {
      owner = entry.split(' ').at(-1) ?? null;
    }
  }
  return { database, owner, tables: tables.sort() };
}

/**
 * Proves `file` a complete archive of `database`; returns its table of contents. The archive is
 * input, not instructions: pg_restore only parses it here, it runs nothing from it, and it reads
 * it on stdin, which the runner opens without following links.
 */
export async function proveArchive(
  runner: CommandRunner,
  file: string,
  database: string,
  deadline: Deadline,
  runAs: RunAs,
  hint: string,
): Promise<ArchiveContents> {
  const read = async (argv: Argv, what: string) => {
    try {
      return await runner.run({ argv, stdinFile: file, stdout: 'capture', deadline, runAs });
    } catch (error) {
      if (!(error instanceof CommandFailedError) || error.signal !== undefined) throw error;
      const detail = error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}`;
      throw new BackupFailedError(`${file} ${what}: ${detail}`, hint, { cause: error });
    }
  };
  const contents = parseToc((await read(listCommand(), 'is not a readable pg_dump archive')).stdout);
  await read(readThroughCommand(), 'is cut short or damaged: its data does not read to the end');
  if (contents.database !== database) {
    throw new BackupFailedError(
      `${file} is an archive of database ${contents.database ?? '(none named)'}, not of ${database}`,
      hint,
    );
  }
  return contents;
}

/** pg_dumpall writes its trailer last: without it the file stopped early. */
export async function globalsComplete(file: string): Promise<boolean> {
  const handle = await openRegularFile(file);
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, GLOBALS_TRAILER.length);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8') === GLOBALS_TRAILER;
  } finally {
    await handle.close();
  }
}

/** A dump in a downloaded set: there, complete, and of `database`. */
export async function proveDownloadedArchive(
  runner: CommandRunner,
  file: string,
  database: string,
  deadline: Deadline,
  runAs: RunAs,
): Promise<ArchiveContents> {
  try {
    await stat(file);
  } catch {
    throw new BackupFailedError(`the backup holds no dump ${file}`, 'untouched: nothing was changed');
  }
  return proveArchive(
    runner,
    file,
    database,
    deadline,
    runAs,
    'nothing was changed; try an older --time (backup-agent list)',
  );
}
