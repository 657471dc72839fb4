// `backup-agent verify`: the restore drill. Downloads the latest backup of each source into scratch
// space, proves it against its manifest and checks each dump is complete; as root with --import it
// also loads it into scratch databases and compares. Nothing live is touched; the scratch is removed.
import type { SourceKind } from '../domain.js';
import { duplicityTime } from '../duplicity/run.js';
import { errorMessage } from '../errors.js';
import { type DownloadedBackup, downloadBackup, resolveBackupSet } from '../restore/download.js';
import { parseRestoreTime } from '../restore/restore-point.js';
import { engineOf } from '../sources/registry.js';
import { acquireRunLock } from '../system/lock.js';
import { agentUser, isRoot } from '../system/privileges.js';
import { type DownloadPlace, openRestoreArea, ownDownloadPlace, rootDownloadPlace } from '../restore/restore-area.js';
import { type AgentContext, endSession, engineTools, lockPath, sectionOf } from '../context/context.js';

export interface DrillResult {
  readonly source: SourceKind;
  readonly ok: boolean;
  readonly backupTime: Date | null;
  readonly bytes: number;
  readonly durationMs: number;
  /** What was proven, one sentence each; or the failure. */
  readonly findings: readonly string[];
}

export async function runDrill(
  context: AgentContext,
  sources: readonly SourceKind[],
  importToo: boolean,
): Promise<DrillResult[]> {
  const { config } = context;
  // Root (--import) downloads into its restore area as the backup user, as the restore does; the
  // backup user alone downloads into its own scratch space.
  const owner = isRoot() ? await agentUser() : undefined;
  const area = owner === undefined ? undefined : await openRestoreArea(config);
  const lock = await acquireRunLock(lockPath(config.agent.cache_dir), 'backup-agent verify', owner);
  try {
    const results: DrillResult[] = [];
    for (const source of sources) {
      if (context.cancel.aborted) break;
      const name = `verify-${source}`;
      const place =
        owner === undefined || area === undefined
          ? ownDownloadPlace(config, name)
          : rootDownloadPlace(area.root, name, owner);
      results.push(await drill(context, source, importToo, place));
    }
    return results;
  } finally {
    // Root's download ran as the backup user: the ssh master and gpg-agent are that user's.
    await endSession(context, owner);
    await lock.release();
  }
}

async function drill(
  context: AgentContext,
  source: SourceKind,
  importToo: boolean,
  place: DownloadPlace,
): Promise<DrillResult> {
  const started = Date.now();
  let downloaded: DownloadedBackup | undefined;
  try {
    const set = await resolveBackupSet(context, source, parseRestoreTime('now'), place.runAs);
    downloaded = await downloadBackup(context, source, set, place);
    const findings = [
      `${downloaded.manifest.files.length} file(s) match MANIFEST.json`,
      await engineOf(source).proveDumps(downloaded.dir, downloaded.databases, engineTools(context)),
      ...(importToo ? await importIntoScratch(context, downloaded) : []),
    ];
    return {
      source,
      ok: true,
      backupTime: set.time,
      bytes: downloaded.bytes,
      durationMs: Date.now() - started,
      findings,
    };
  } catch (error) {
    return {
      source,
      ok: false,
      backupTime: downloaded?.set.time ?? null,
      bytes: downloaded?.bytes ?? 0,
      durationMs: Date.now() - started,
      findings: [errorMessage(error)],
    };
  } finally {
    await place.remove();
  }
}

async function importIntoScratch(context: AgentContext, downloaded: DownloadedBackup): Promise<string[]> {
  const stamp = duplicityTime(new Date()).replace(/[-:TZ]/g, '');
  const engine = engineOf(downloaded.source);
  const restorer = await engine.restorer(sectionOf(context.config, downloaded.source), engineTools(context));
  const findings: string[] = [];
  for (const database of downloaded.databases)
    findings.push(await restorer.importScratch(database, downloaded.dir, `${database}_verify_${stamp}`));
  return findings;
}
