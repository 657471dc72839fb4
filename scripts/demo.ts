// A real backup-and-restore on throwaway local services: MariaDB, InfluxDB, PostgreSQL and an sshd
// rsync target on loopback, in temporary directories, removed at the end. It runs the built agent as an
// operator would and shows each command with its output.
import { execa } from 'execa';
import { AGENT, INFLUX_DATABASE, MYSQL_DATABASE, PG_DATABASE, makeAgentHost } from '../test/harness/agent.js';
import { changeInflux, seedInflux, startInfluxDb } from '../test/harness/influxdb.js';
import { changeData, seedDatabase, startMariaDb } from '../test/harness/mariadb.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startSshTarget } from '../test/harness/ssh-target.js';

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

const [mariadb, influx, postgres, target] = await Promise.all([
  startMariaDb(),
  startInfluxDb(),
  startPostgres(),
  startSshTarget(),
]);
const host = await makeAgentHost({ mariadb, influx, postgres, target });
let failed = false;

async function agent(...args: string[]): Promise<void> {
  process.stdout.write(`$ backup-agent ${args.join(' ')}\n`);
  const result = await execa(process.execPath, [AGENT, '--config', host.configFile, ...args], {
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'inherit',
    env: { BACKUP_AGENT_LOG_LEVEL: 'warn' },
    reject: false,
  });
  if (result.exitCode !== 0) throw new Error(`backup-agent ${args.join(' ')} exited ${result.exitCode}`);
}

try {
  say(
    `MariaDB on ${mariadb.socket}, InfluxDB RPC ${influx.rpcAddress}, PostgreSQL on ${postgres.socketDir} port ${postgres.port}, target ${target.url}`,
  );
  await seedDatabase(mariadb, MYSQL_DATABASE, 5000);
  await postgres.seed(PG_DATABASE, 5000);
  await influx.createDatabase(INFLUX_DATABASE);
  await seedInflux(influx, INFLUX_DATABASE, 5000);
  process.stdout.write(`config: ${host.configFile}\n`);

  say('check: every prerequisite');
  await agent('check');
  say('first run: always a full backup');
  await agent('run');
  await changeData(mariadb, MYSQL_DATABASE, 3);
  await changeInflux(influx, INFLUX_DATABASE);
  await postgres.change(PG_DATABASE, 0.03);
  say('data changed; the next run is incremental');
  await agent('run');
  await agent('list');
  const mysqlBefore = await mariadb.fingerprint(MYSQL_DATABASE);
  const influxBefore = await influx.fingerprint(INFLUX_DATABASE);
  const postgresBefore = await postgres.fingerprint(PG_DATABASE);

  say('disaster: the databases are destroyed');
  await mariadb.sql(`DROP DATABASE ${MYSQL_DATABASE}`);
  await influx.dropDatabase(INFLUX_DATABASE);
  await postgres.sql(`DROP DATABASE ${PG_DATABASE}`);

  say('restore as root, from the target');
  await agent('restore', 'mysql', '--yes');
  await agent('restore', 'influxdb', '--yes');
  await agent('restore', 'postgresql', '--yes');

  const mysqlOk = (await mariadb.fingerprint(MYSQL_DATABASE)) === mysqlBefore;
  const influxOk = (await influx.fingerprint(INFLUX_DATABASE)) === influxBefore;
  say(`MySQL data ${mysqlOk ? 'identical to' : 'DIFFERENT from'} the backed-up data`);
  const postgresOk = (await postgres.fingerprint(PG_DATABASE)) === postgresBefore;
  say(`InfluxDB data ${influxOk ? 'identical to' : 'DIFFERENT from'} the backed-up data`);
  say(`PostgreSQL data ${postgresOk ? 'identical to' : 'DIFFERENT from'} the backed-up data`);
  failed = !mysqlOk || !influxOk || !postgresOk;
} catch (error) {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  failed = true;
} finally {
  await Promise.allSettled([mariadb.stop(), influx.stop(), postgres.stop(), target.stop(), host.remove()]);
}
process.exit(failed ? 1 : 0);
