// The role a restore's SQL runs as. A downloaded archive is input, not instructions: pg_restore
// executes the SQL its table of contents carries, and in a forged archive that can be
// COPY ... TO PROGRAM, lo_export or pg_read_file, which a superuser's session would carry out.
// pg_restore --role=<owner> does not stop it: SET ROLE lasts only until the archive's own
// RESET ROLE, and then the superuser who logged in is back (tried: the program ran). So the
// session must log in as a role that is not a superuser and is a member of nothing; the server
// then refuses every program and file access itself. Peer authentication cannot give root such a
// session, so the role gets a random password that only root's passfile holds, and logs in over
// TCP (Debian's pg_hba.conf: scram-sha-256 for 127.0.0.1). The server only ever sees the password
// as a SCRAM verifier: a CREATE ROLE in its log or in psql's argv reveals nothing to log in with.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SystemUser } from '../../system/privileges.js';
import { literal } from './commands.js';

export const SESSION_ROLE = 'backup_agent_restore';

/** A SCRAM-SHA-256 verifier of `password`, as PostgreSQL stores it (RFC 7677, 4096 iterations). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Logs in until `validUntil` only: a role a killed restore left behind is of no use afterwards. */
export function createSessionRoleSql(verifier: string, validUntil: Date): string {
  return [
    `CREATE ROLE ${SESSION_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
    `VALID UNTIL ${literal(validUntil.toISOString())} PASSWORD ${literal(verifier)}`,
  ].join(' ');
}

export interface SessionLogin {
  readonly passfile: string;
  readonly verifier: string;
  remove(): Promise<void>;
}

/**
 * A new random password in a passfile of its own, readable by the admin user only (the clients run
 * as that user). base64url holds no ":" or "\", which a passfile would need escaped.
 */
export async function writeSessionLogin(admin: SystemUser, host: string, port: number): Promise<SessionLogin> {
  const password = randomBytes(24).toString('base64url');
  const dir = await mkdtemp(join(tmpdir(), 'backup-agent-pg-'));
  const passfile = join(dir, 'pgpass');
  try {
    await writeFile(passfile, `${host}:${port}:*:${SESSION_ROLE}:${password}\n`, { mode: 0o600, flag: 'wx' });
    await chown(passfile, admin.uid, admin.gid);
    await chown(dir, admin.uid, admin.gid);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { passfile, verifier: scramVerifier(password), remove: () => rm(dir, { recursive: true, force: true }) };
}
