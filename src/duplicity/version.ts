// duplicity 0.8 (Debian 12) and 3.x (Debian 13) need slightly different command lines.

export interface DuplicityVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly text: string;
}

/** Parses `duplicity --version` output, e.g. "duplicity 0.8.22" or "duplicity 3.0.4". */
export function parseDuplicityVersion(output: string): DuplicityVersion | null {
  const match = /duplicity\s+(\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return null;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3] ?? 0),
    text: `${match[1]}.${match[2]}${match[3] === undefined ? '' : `.${match[3]}`}`,
  };
}

/** 2.0 removed --asynchronous-upload and renamed the restore path option. */
export function isModernDuplicity(version: DuplicityVersion): boolean {
  return version.major >= 2;
}
