// Whether another user can read a file, decided from the modes along its path, as the kernel would
// (owner, then group, then other bits; ACLs aside). Root needs this answer before it starts the
// agent again as backup: a clone in /root (0700) would otherwise fail inside node with a
// misleading "Cannot find module".
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, sep } from 'node:path';

/** Who asks: a SystemUser of privileges.ts, which uses this file. */
export type Reader = { readonly name: string; readonly uid: number; readonly gid: number };

export interface Blocker {
  /** The directory the user cannot enter, or the file it cannot read. */
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
}

/** The first place on the way to `file` that stops `user`, or undefined when it can read the file. */
export async function unreadableBy(user: Reader, file: string): Promise<Blocker | undefined> {
  const groups = await groupsOf(user);
  const target = await realpath(file);
  const parts = dirname(target)
    .split(sep)
    .filter((part) => part !== '');
  const directories = parts.map((_, depth) => sep + parts.slice(0, depth + 1).join(sep));
  for (const [path, wanted] of [
    [sep, 0o1],
    ...directories.map((directory) => [directory, 0o1] as const),
    [target, 0o4],
  ] as const) {
    const info = await stat(path);
    const bits = info.uid === user.uid ? info.mode >> 6 : groups.has(info.gid) ? info.mode >> 3 : info.mode;
    if ((bits & wanted) === 0) return { path, mode: info.mode & 0o7777, uid: info.uid };
  }
  return undefined;
}

async function groupsOf(user: Reader): Promise<Set<number>> {
  const groups = new Set([user.gid]);
  for (const line of (await readFile('/etc/group', 'utf8')).split('\n')) {
    const [, , gid, members] = line.split(':');
    if (gid !== undefined && members?.split(',').includes(user.name)) groups.add(Number(gid));
  }
  return groups;
}
