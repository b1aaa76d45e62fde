/**
 * Back up a cluster into a data directory you can start a server on, like
 * `pg_basebackup -D <dir> -Fp -Xstream -c fast -P`.
 *
 *   npx tsx examples/backup-to-directory.ts [connection-string] <directory>
 *
 * The connection string is libpq's (`host=db1 user=replicator` or `postgresql://...`); without
 * one, the PG* environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE, ...) and ~/.pgpass
 * are used, as with libpq. The role needs the REPLICATION attribute and a `replication` line in
 * pg_hba.conf. Ctrl-C stops the backup and removes what was written; a second Ctrl-C kills.
 */
import { formatLsn, PgBackupError, runBackup, type BackupProgress } from 'pg-basebackup';

const args = process.argv.slice(2);
const [connection, directory] = args.length >= 2 ? [args[0] || undefined, args[1]] : [undefined, args[0]];
if (!directory) {
  console.error('usage: backup-to-directory.ts [connection-string] <directory>');
  process.exit(2);
}

// One AbortController for the whole run: the first SIGINT/SIGTERM aborts the backup (both
// replication connections close, the temporary slot goes with them, the directory is removed);
// `once` leaves the default handler in place for a second signal.
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

function showProgress(p: BackupProgress): void {
  // totalBytes is the server's estimate (PROGRESS option), absent until the end without it.
  const total = p.totalBytes ? ` of ${(p.totalBytes / 1024).toFixed(0)} kB` : '';
  const pct = p.totalBytes ? ` (${Math.floor((100 * p.bytesDone) / p.totalBytes)}%)` : '';
  process.stderr.write(`${(p.bytesDone / 1024).toFixed(0)} kB${total}${pct}, archive ${p.archivesDone}/${p.archivesTotal}\n`);
}

try {
  const result = await runBackup({
    ...(connection !== undefined ? { connection } : {}),
    // An immediate checkpoint instead of waiting for a spread one (checkpoint_completion_target).
    checkpoint: 'fast',
    // A second connection streams WAL while the files are copied, into <directory>/pg_wal,
    // so the copy is self-contained: recovery replays it up to the backup's end position.
    wal: 'stream',
    output: { format: 'plain', directory },
    progressIntervalMs: 500,
    onProgress: showProgress,
    // WARNINGs and NOTICEs from the server (e.g. about WAL archiving) are worth showing.
    onNotice: (n) => process.stderr.write(`server ${n.severity}: ${n.message}\n`),
    signal: controller.signal,
  });
  console.log(
    `backup complete in ${directory}: WAL ${formatLsn(result.startLsn)} to ${formatLsn(result.endLsn)} ` +
      `on timeline ${result.endTimeline}, ${result.stats.totalBytes} bytes`,
  );
} catch (err) {
  if (controller.signal.aborted) {
    console.error('interrupted: the backup was stopped and its directory removed');
    process.exitCode = 130; // 128 + SIGINT, as shells report it
  } else {
    // Every library error has a literal `code` (ERR_PGBB_AUTH, ERR_PGBB_TARGET, ERR_PGBB_SERVER...).
    console.error(`backup failed: ${err instanceof PgBackupError ? `${err.code}: ${err.message}` : String(err)}`);
    process.exitCode = 1;
  }
}
