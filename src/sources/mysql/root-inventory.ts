// `check` as root: the backup user cannot see the triggers, routines and events its grant hides,
// root's client (the restore's connection: mysql.admin_defaults_file, else the socket) can. Root
// lists them before check runs again as the backup user and hands the list over in the
// environment, which the re-run keeps for BACKUP_AGENT_* variables. Names only, a few per kind:
// an environment variable is limited in size, and the count stays exact.
import { CommandFailedError, type CommandRunner, quickDeadline } from '../../system/run-command.js';
import { queryCommand } from './commands.js';
import type { MysqlSection } from './keys.js';
import { type RootInventory, capInventory, inventoryQuery, parseInventory, rootInventorySchema } from './objects.js';
import { mysqlPrograms } from './programs.js';

export const ROOT_INVENTORY_VARIABLE = 'BACKUP_AGENT_MYSQL_OBJECTS';

const NAMES_PER_KIND = 10;

export async function listObjectsAsRoot(runner: CommandRunner, config: MysqlSection): Promise<RootInventory> {
  const { client } = await mysqlPrograms();
  const optionFile = config.admin_defaults_file === '' ? null : config.admin_defaults_file;
  const databases: Extract<RootInventory, { databases: unknown }>['databases'] = {};
  try {
    for (const database of config.databases) {
      const result = await runner.run({
        argv: queryCommand(client, optionFile, inventoryQuery(database)),
        stdout: 'capture',
        deadline: quickDeadline(`listing the objects of ${database}`),
      });
      databases[database] = capInventory(parseInventory(result.stdout), NAMES_PER_KIND);
    }
  } catch (error) {
    if (!(error instanceof CommandFailedError)) throw error;
    return { error: error.result.stderrTail.at(-1) ?? `exit code ${error.result.exitCode}` };
  }
  return { databases };
}

/** What root handed over, or null when check was not started by root (or the value is not ours). */
export function handedOverInventory(environment: NodeJS.ProcessEnv): RootInventory | null {
  const text = environment[ROOT_INVENTORY_VARIABLE];
  if (text === undefined) return null;
  try {
    const parsed = rootInventorySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
