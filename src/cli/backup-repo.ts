/**
 * `pgbb backup --repo REPO` (or `PGBB_REPO`): the same flags as a backup into a directory, the archives
 * streamed into the repository by the library's `backupToRepository`, the catalog record written last.
 * @module
 */
import type { RunBackupOptions } from '../entries/backup.js';
import { formatLsn } from '../entries/lsn.js';
import { backupToRepository, openRepository, parseDuration, type RepositoryBackupOptions } from '../entries/repository.js';
import { UsageError } from './args.js';
import { BACKUP_COMMAND, type BackupCliOptions } from './backup-flags.js';
import type { CommandRun } from './context.js';

/** `3h 12m`-style age for messages. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const parts = [days > 0 ? `${days}d` : '', hours > 0 ? `${hours}h` : '', `${minutes % 60}m`].filter((p) => p !== '');
  return days > 0 ? parts.slice(0, 2).join(' ') : parts.join(' ');
}

/**
 * Run a repository backup with the options the directory backup would use (`options`, from
 * `mapBackupOptions` and the reporting callbacks); resolves to the exit status.
 */
export async function runRepositoryBackup(
  address: string,
  cli: BackupCliOptions,
  options: RunBackupOptions,
  { reporter, ctx }: CommandRun,
): Promise<number> {
  const {
    output: _output,
    writeRecoveryConf: _w,
    noClean: _n,
    noSync: _s,
    incrementalManifest: _i,
    walSink: _ws,
    onStart: _o,
    ...rest
  } = options;
  let ifOlderThanMs: number | undefined;
  if (cli.ifOlderThan !== undefined) {
    try {
      ifOlderThanMs = parseDuration(cli.ifOlderThan);
    } catch (err) {
      throw new UsageError(BACKUP_COMMAND.prog, (err as Error).message);
    }
  }
  const repoOptions: RepositoryBackupOptions = {
    ...rest,
    // Tar format: tablespaces are listed in tablespace_map rather than kept as symlinks.
    tablespaceMap: true,
    ...(ifOlderThanMs !== undefined ? { ifOlderThanMs } : {}),
    // -i auto: against the newest backup of the catalog (backupTarget refuses any other -i with --repo).
    ...(cli.incrementalManifest === 'auto' ? { incrementalFrom: 'latest' } : {}),
  };
  await using repository = await openRepository(address);
  const outcome = await backupToRepository(repository, repoOptions);
  if (outcome.skipped) {
    const message = `the newest full backup, ${outcome.newest.id}, is ${formatAge(outcome.ageMs)} old, younger than --if-older-than: no backup taken`;
    // Said on stderr whatever the verbosity: cron mail shows why nothing happened.
    if (reporter.mode !== 'json') ctx.stderr.write(`pgbb: ${message}\n`);
    reporter.done({ skipped: true, newestFullBackup: outcome.newest.id, ageMs: outcome.ageMs, repository: repository.location });
    return 0;
  }
  const { record } = outcome;
  reporter.finishProgress();
  reporter.info(`write-ahead log end point: ${formatLsn(record.endLsn)}`);
  reporter.info(`backup ${record.id} stored in ${repository.location}`);
  reporter.done({
    skipped: false,
    id: record.id,
    type: record.type,
    startLsn: formatLsn(record.startLsn),
    endLsn: formatLsn(record.endLsn),
    timeline: record.timeline,
    originalSize: record.originalSize,
    storedSize: record.storedSize,
    repository: repository.location,
  });
  return 0;
}
