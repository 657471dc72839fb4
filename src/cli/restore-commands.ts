// The commands that bring data back: restore (root) and verify (the drill; --import as root).
import { UsageError } from '../errors.js';
import { requireRoot } from '../system/privileges.js';
import {
  type CommandSetup,
  SOURCE_ARGUMENT,
  cli,
  loadAsRoot,
  parseSource,
  prepare,
  selectSources,
} from './command-kit.js';

export function addRestoreCommands({ program, cancel, setExitCode }: CommandSetup): void {
  program
    .command('restore')
    .description('as root: download a backup, check it, and put it back in place of the live database')
    .argument('<source>', 'the source: its section name in backup-agent.ini, e.g. mysql')
    .option('--time <time>', 'now (the latest backup), an ISO date/time, or an age like 3D', 'now')
    .option('--database <name>', 'only this one of the configured databases (default: all)')
    .option('--into <name>', 'restore into this new database; the original is not touched')
    .option('--from-dir <dir>', 'restore a directory already downloaded (restore --download-only)')
    .option('--download-only', 'download and check, change nothing else')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'print every step and command; change nothing')
    .action(
      async (
        sourceName: string,
        options: {
          time: string;
          database?: string;
          into?: string;
          fromDir?: string;
          downloadOnly?: boolean;
          yes?: boolean;
          dryRun?: boolean;
        },
      ) => {
        requireRoot(`restore ${sourceName}`);
        const source = await parseSource(sourceName);
        const [
          { parseRestoreTime },
          { runRestore, selectDatabases },
          { createContext },
          { createLogger },
          { confirmer },
          { formatRestoreReport },
        ] = await Promise.all([
          cli.restorePoint(),
          cli.restore(),
          cli.context(),
          cli.logger(),
          cli.confirm(),
          cli.output(),
        ]);
        const time = parseRestoreTime(options.time);
        if (options.fromDir !== undefined && options.time !== 'now') {
          throw new UsageError('--from-dir restores what is in the directory; --time does not apply');
        }
        const config = await loadAsRoot(program);
        const section = config.sources[source];
        if (section?.enabled !== true) throw new UsageError(`source ${source} is not enabled in ${config.file}`);
        const databases = selectDatabases(section.databases, options.database, options.into);
        const context = await createContext(config, createLogger({ toStderr: true }), cancel);
        const report = await runRestore(context, {
          source,
          time,
          databases,
          into: options.into,
          fromDir: options.fromDir,
          downloadOnly: options.downloadOnly === true,
          dryRun: options.dryRun === true,
          confirm: confirmer(options.yes === true),
        });
        if (report !== null) process.stdout.write(formatRestoreReport(report));
        setExitCode(0);
      },
    );

  program
    .command('verify')
    .description('restore drill: download the latest backup to scratch space and prove it is complete and restorable')
    .argument('[source]', SOURCE_ARGUMENT)
    .option('--import', 'as root: also load it into scratch databases, compare, and drop them')
    .action(async (source: string | undefined, options: { import?: boolean }) => {
      if (options.import) requireRoot('verify --import');
      const config = options.import ? await loadAsRoot(program) : await prepare(program);
      const sources = await selectSources(config, source === undefined ? [] : [source]);
      const [{ createContext }, { createLogger }, { runDrill }, { formatDrill }] = await Promise.all([
        cli.context(),
        cli.logger(),
        cli.verify(),
        cli.output(),
      ]);
      const context = await createContext(config, createLogger({ toStderr: true }), cancel);
      const results = await runDrill(
        context,
        sources.map((selected) => selected.kind),
        options.import === true,
      );
      process.stdout.write(formatDrill(results));
      setExitCode(results.every((result) => result.ok) ? 0 : 1);
    });
}
