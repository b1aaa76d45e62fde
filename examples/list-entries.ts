/**
 * List what a base backup contains, like `tar -tv` over pg_basebackup's archives, without
 * writing anything: each tar entry is read in lock step and its body skipped, so the server
 * sends at the pace of the listing and nothing is kept in memory.
 *
 *   npx tsx examples/list-entries.ts [connection-string]
 *
 * Connection: a libpq connection string, or the PG* environment. The listing goes to stdout,
 * progress to stderr. Ctrl-C stops the backup.
 */
import { PgBackupError, startBackup, type BackupSession, type TarHeader } from 'pg-basebackup';
import { parseManifest } from 'pg-basebackup/manifest';

const connection = process.argv[2] || undefined;

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

const TYPE_CHAR: Partial<Record<TarHeader['type'], string>> = {
  file: '-',
  directory: 'd',
  symlink: 'l',
  hardlink: 'h',
  fifo: 'p',
  'character-device': 'c',
  'block-device': 'b',
};

const WAL_SEGMENT = /^pg_wal\/[0-9A-F]{24}$/;

/** `-rw-------`, as ls and tar print modes. */
function modeString(h: TarHeader): string {
  let s = TYPE_CHAR[h.type] ?? '?';
  for (const shift of [6, 3, 0]) {
    const bits = (h.mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}

/** `2026-11-25 05:28` in UTC (tar -tv prints local time; UTC keeps the listing reproducible). */
function timeString(mtime: number): string {
  return new Date(mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

let session: BackupSession | undefined;
try {
  session = await startBackup({
    ...(connection !== undefined ? { connection } : {}),
    checkpoint: 'fast',
    // 'fetch' puts the WAL the backup needs at the end of base.tar (under pg_wal/), so the
    // listing shows it; 'stream' would add a spooled pg_wal.tar as a last archive.
    wal: 'fetch',
    progressIntervalMs: 250,
    signal: controller.signal,
  });
  session.on('progress', (p) => {
    const pct = p.totalBytes ? ` (${Math.floor((100 * p.bytesDone) / p.totalBytes)}%)` : '';
    process.stderr.write(`progress: ${p.bytesDone} bytes${pct}, ${p.archivesDone}/${p.archivesTotal} archives\n`);
  });

  let files = 0;
  for await (const archive of session.archives()) {
    console.log(`# ${archive.name}`);
    // entries() parses the next header only after the current body was read or skipped.
    for await (const entry of archive.entries()) {
      const h = entry.header;
      const owner = `${h.uname || h.uid}/${h.gname || h.gid}`;
      const name = h.type === 'symlink' ? `${h.name} -> ${h.linkname}` : h.name;
      console.log(`${modeString(h)} ${owner} ${String(h.size).padStart(10)} ${timeString(h.mtime)} ${name}`);
      // The fetched WAL segments are the only files the manifest does not list (its
      // WAL-Ranges stand for them); their archive_status/*.done markers are listed.
      if (h.type === 'file' && !WAL_SEGMENT.test(h.name)) files++;
      await entry.body.skip();
    }
  }

  const manifest = await session.manifest();
  await session.result();
  console.log(`${files} data files in the archives`);
  if (manifest) console.log(`manifest: ${parseManifest(manifest).files.size} files`);
} catch (err) {
  await session?.close();
  if (controller.signal.aborted) {
    console.error('interrupted: the backup was stopped');
    process.exitCode = 130; // 128 + SIGINT, as shells report it
  } else {
    console.error(`listing failed: ${err instanceof PgBackupError ? `${err.code}: ${err.message}` : String(err)}`);
    process.exitCode = 1;
  }
}
