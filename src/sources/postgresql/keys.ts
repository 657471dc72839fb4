// The [postgresql] section of backup-agent.ini.
import { z } from 'zod';
import { type EngineValues, key } from '../../config/schema.js';
import { boolean, integer, nameList, optionalAbsolutePath } from '../../config/values.js';

/** A socket directory (peer authentication) or a host name or address (TCP, with a passfile). */
const host = z
  .string()
  .regex(
    /^(\/[^\s]*|[A-Za-z0-9][A-Za-z0-9.:-]*)$/,
    'expected a socket directory (an absolute path) or a host name or address, e.g. /var/run/postgresql or 127.0.0.1',
  );

/** Role and user names become arguments of pg_dump and runuser: no options, no spaces. */
const name = (what: string, allowEmpty: boolean) =>
  z
    .string()
    .refine(
      (text) => (allowEmpty && text === '') || /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(text),
      `expected a ${what} name (a letter or _, then letters, digits, _ $ -)${allowEmpty ? ' or empty' : ''}`,
    );

export const POSTGRESQL_KEYS = {
  enabled: key(boolean, 'true', 'Back up PostgreSQL (a missing [postgresql] section means false).'),
  databases: key(nameList('database'), '', 'Databases to dump with pg_dump, one archive each.', { example: 'shop' }),
  host: key(
    host,
    '/var/run/postgresql',
    'Socket directory (peer authentication: the agent user logs in as the role of the same name), or a host name or 127.0.0.1 for TCP with `passfile`; the restore uses it too.',
  ),
  port: key(integer(1, 65535), '5432', "The server's port (also names its socket in the socket directory)."),
  user: key(name('role', true), '', "The role the dump logs in as; empty: the agent user's name (backup)."),
  passfile: key(
    optionalAbsolutePath,
    '',
    'A .pgpass file for a login with a password; owned by the agent user, mode 0600. Empty: none (peer authentication).',
  ),
  admin_user: key(
    name('system user', false),
    'postgres',
    "The system user root's restore runs the clients as, logging in through the socket as the role of the same name (a superuser).",
  ),
} as const;

export type PostgresqlSection = EngineValues<typeof POSTGRESQL_KEYS>;
