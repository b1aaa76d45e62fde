/**
 * Stream a tar-format backup into any Writable, here gzip into files, like
 * `pg_basebackup -D <dir> -Ft -z -Xfetch -c fast`, but with the compression and the
 * destination in your hands.
 *
 *   npx tsx examples/stream-tar-to-writable.ts [connection-string] <output-directory>
 *
 * writes `<output-directory>/base.tar.gz` (one `<oid>.tar.gz` per user tablespace) and
 * `backup_manifest`. Connection as in backup-to-directory.ts: a libpq connection string, or
 * the PG* environment. Ctrl-C stops the backup and removes the partial files.
 *
 * The destination is just a Writable: an HTTP upload (`http.request(...)`), an S3 multipart
 * upload stream or a socket works the same way. `pipeTo` honours its backpressure all the way
 * to the server's socket, so memory stays flat whatever the size of the cluster.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatLsn, PgBackupError, startBackup, type BackupSession } from 'pg-basebackup';
import { compressArchive, compressedArchiveName } from 'pg-basebackup/compress';

const args = process.argv.slice(2);
const [connection, outDir] = args.length >= 2 ? [args[0] || undefined, args[1]] : [undefined, args[0]];
if (!outDir) {
  console.error('usage: stream-tar-to-writable.ts [connection-string] <output-directory>');
  process.exit(2);
}

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

const written: string[] = [];
let created: string | undefined;
let session: BackupSession | undefined;
try {
  created = await mkdir(outDir, { recursive: true });
  session = await startBackup({
    ...(connection !== undefined ? { connection } : {}),
    checkpoint: 'fast',
    // WAL 'fetch': the server appends the WAL segments the backup needs to the end of
    // base.tar, so base.tar.gz alone restores. They must still be on the server at the end of
    // the backup (wal_keep_size or an archive). With the default, wal: 'stream', a second
    // connection streams WAL while the data flows; the session spools it and yields it as a
    // last archive, pg_wal.tar, which this same loop would write as pg_wal.tar.gz.
    wal: 'fetch',
    // As pg_basebackup -Ft: tablespace symlinks are listed in a tablespace_map file.
    tablespaceMap: true,
    signal: controller.signal,
  });
  console.error(`backup started at ${formatLsn(session.startLsn)} (timeline ${session.startTimeline})`);

  // One archive per tablespace, the data directory (base.tar) last. Each must be consumed
  // before the next one arrives: they are read straight off the replication connection.
  for await (const archive of session.archives()) {
    const name = compressedArchiveName(archive.name, 'gzip');
    const file = join(outDir, name);
    written.push(file);
    // compressArchive() gzips on worker threads (independent gzip members, which gunzip reads
    // as one stream) and pulls the archive only as fast as the file takes the compressed bytes.
    // The signal stops the copy at once, even while a stalled destination holds it in backpressure.
    const gzipped = Readable.from(compressArchive(archive.chunks(), 'gzip:1'));
    await pipeline(gzipped, createWriteStream(file, { mode: 0o600 }), { signal: controller.signal });
    console.error(`${name}: ${archive.bytesReceived} bytes of tar`);
  }

  // The manifest comes after the archives; pg_verifybackup (or pgbb verify) checks against it.
  const manifest = await session.manifest();
  if (manifest) {
    const file = join(outDir, 'backup_manifest');
    written.push(file);
    await writeFile(file, manifest, { mode: 0o600 });
  }
  // result() waits for the server's CommandComplete and rejects on page checksum failures.
  const result = await session.result();
  console.log(
    `backup complete in ${outDir}: WAL ${formatLsn(result.startLsn)} to ${formatLsn(result.endLsn)}, ` +
      `${result.stats.totalBytes} bytes of tar`,
  );
} catch (err) {
  // Leave nothing behind that looks like a finished backup.
  await session?.close();
  if (created !== undefined) await rm(created, { recursive: true, force: true });
  else await Promise.all(written.map((f) => rm(f, { force: true })));
  if (controller.signal.aborted) {
    console.error('interrupted: the backup was stopped and its files removed');
    process.exitCode = 130; // 128 + SIGINT, as shells report it
  } else {
    console.error(`backup failed: ${err instanceof PgBackupError ? `${err.code}: ${err.message}` : String(err)}`);
    process.exitCode = 1;
  }
}
