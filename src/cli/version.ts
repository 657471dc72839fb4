import { readFileSync } from 'node:fs';

/** The package.json version, read once at start-up (the file sits one level above dist/ and src/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
