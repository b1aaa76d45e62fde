/**
 * PostgreSQL's `restore_command` contract over a WAL archive directory (what `pg_receivewal` or
 * `pgbb receive-wal` writes): find the file recovery asks for under any of its archived names
 * (plain, `.gz`, `.lz4`, `.zst`, and the `.partial` of the last segment), decompress it, check that it
 * is the segment that was asked for, and write it to the destination atomically (temporary name,
 * fsync, rename). "Not in the archive" and "in the archive but unusable" are kept apart, because
 * recovery treats the first as the end of the archive and promotes: a damaged segment must stop it.
 * @module
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PARTIAL_SUFFIX } from '../archive/names.js';
import { decompressorFor } from '../compress/decompress.js';
import { ConfigError, IoError, PgBackupError, WalArchiveError } from '../errors.js';
import { fsyncDirectory } from '../sinks/fsync.js';
import { SegmentPageChecker, type CheckedSegment } from './segment-check.js';
import { directoryWalArchive, findInArchive, isVanished, type WalArchiveSource } from './wal-source.js';

export { ARCHIVE_SUFFIXES } from './wal-source.js';

/** The decompressor an archived WAL file needs, by its name (`NAME.gz.partial` is gzip). */
export function decompressorForArchived(path: string): ReturnType<typeof decompressorFor> {
  const name = basename(path);
  return decompressorFor(name.endsWith(PARTIAL_SUFFIX) ? name.slice(0, -PARTIAL_SUFFIX.length) : name);
}

const SEGMENT_RE = /^[0-9A-F]{24}$/;
const HISTORY_RE = /^[0-9A-F]{8}\.history$/;
const BACKUP_HISTORY_RE = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;

/** Options of {@link restoreWalFile}. */
export interface RestoreWalOptions {
  /** The file recovery asks for (`%f`): a segment name, a `.history` or a `.backup` file. */
  fileName: string;
  /** Where to write it (`%p`, relative to the working directory, which PostgreSQL sets to the data directory). */
  destination: string;
  /** The WAL archive directory. Give this or {@link source}. */
  archiveDir?: string | undefined;
  /**
   * Where the archive is, when not a directory (a repository's `wal/`: `repositoryWalArchive` of
   * `pg-basebackup/repository`). Give this or {@link archiveDir}.
   */
  source?: WalArchiveSource | undefined;
  /** Skip the fsync of the file and its directory (tests, or a rehearsal that is thrown away). @default false */
  noSync?: boolean;
}

/** What {@link restoreWalFile} did. */
export type RestoreWalResult =
  | { found: false }
  | {
      found: true;
      /** The archived file it read (a path, or `REPO/wal/<name>`). */
      source: string;
      /** Bytes written to the destination. */
      bytes: number;
      /** Served from the `.partial` of an unfinished segment, padded with zeros to the segment size. */
      partial: boolean;
      /** For segments, what the page check found. */
      segment?: CheckedSegment;
    };

/** The kinds of file recovery asks for. */
export function walFileKind(name: string): 'segment' | 'history' | 'backup-history' | undefined {
  if (SEGMENT_RE.test(name)) return 'segment';
  if (HISTORY_RE.test(name)) return 'history';
  if (BACKUP_HISTORY_RE.test(name)) return 'backup-history';
  return undefined;
}

/**
 * The archived file in the directory `archiveDir` that serves `fileName`, if any: a complete copy first
 * (uncompressed, then by suffix), else, for a segment, its `.partial`.
 */
export async function findArchivedWal(archiveDir: string, fileName: string): Promise<{ path: string; partial: boolean } | undefined> {
  const found = await findInArchive(directoryWalArchive(archiveDir), fileName);
  return found === undefined ? undefined : { path: found.location, partial: found.partial };
}

/** The source {@link RestoreWalOptions} name: a directory or a given source. */
export function walSourceOf(o: { archiveDir?: string | undefined; source?: WalArchiveSource | undefined }): WalArchiveSource {
  if (o.source !== undefined) return o.source;
  if (o.archiveDir === undefined) throw new ConfigError('no WAL archive given: pass archiveDir or source');
  return directoryWalArchive(o.archiveDir);
}

/**
 * Restore one WAL file from an archive directory for PostgreSQL's `restore_command`.
 * @returns `{ found: false }` when the archive does not have it (recovery then ends, or tries the next source).
 * @throws WalArchiveError when the file is there but unusable (bad compression, wrong size, another
 *   segment's pages, not WAL), or the request is not a WAL file name: recovery must stop rather than
 *   end early. IoError when the destination cannot be written.
 * @example
 * ```ts
 * const r = await restoreWalFile({ fileName: '000000010000000000000003', destination: 'pg_wal/RECOVERYXLOG', archiveDir: '/archive' });
 * if (!r.found) process.exitCode = 1;
 * ```
 */
export async function restoreWalFile(options: RestoreWalOptions): Promise<RestoreWalResult> {
  const { fileName } = options;
  const source = walSourceOf(options);
  const kind = walFileKind(fileName);
  if (kind === undefined) {
    throw new WalArchiveError(`${JSON.stringify(fileName)} is not a WAL file name (a segment, a .history or a .backup file)`);
  }
  const found = await findInArchive(source, fileName);
  if (!found) return { found: false };
  let stored: Readable;
  try {
    stored = await source.open(found.name);
  } catch (err) {
    // Removed (expired) between the listing and the read.
    if (isVanished(err)) return { found: false };
    throw err;
  }
  const destination = resolve(options.destination);
  const temporary = join(dirname(destination), `.${basename(destination)}.pgbb-${process.pid}.tmp`);
  const checker = kind === 'segment' ? new SegmentPageChecker(fileName) : undefined;
  let bytes = 0;
  const handle = await open(temporary, 'w', 0o600).catch((err: NodeJS.ErrnoException) => {
    stored.destroy();
    throw new IoError(`cannot create ${temporary}: ${err.message}`, { cause: err, path: temporary, syscallCode: err.code });
  });
  try {
    const check = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        bytes += chunk.length;
        const problem = checker?.push(chunk);
        done(problem === undefined ? null : new WalArchiveError(`${found.location}: ${problem}`, { path: found.location }), chunk);
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        handle.write(chunk).then(() => done(), done);
      },
    });
    try {
      await pipeline(stored, decompressorForArchived(found.name), check, sink);
    } catch (err) {
      if (err instanceof PgBackupError && err.code !== 'ERR_PGBB_STORAGE') throw toArchiveError(err, found.location);
      if (err instanceof PgBackupError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new IoError(`restoring ${fileName} from ${found.location}: ${e.message}`, {
        cause: err,
        path: found.location,
        syscallCode: e.code,
      });
    }
    let segment: CheckedSegment | undefined;
    if (checker) {
      const end = checker.finish({ partial: found.partial });
      if ('problem' in end) throw new WalArchiveError(`${found.location}: ${end.problem}`, { path: found.location });
      segment = end.segment;
      if (found.partial && bytes < segment.segmentSize) {
        // Recovery reads whole segments; the zeros after the last record read as the end of WAL.
        await handle.truncate(segment.segmentSize);
        bytes = segment.segmentSize;
      }
    }
    if (!options.noSync) await handle.sync();
    await handle.close();
    await rename(temporary, destination);
    if (!options.noSync) await fsyncDirectory(dirname(destination));
    return { found: true, source: found.location, bytes, partial: found.partial, ...(segment ? { segment } : {}) };
  } catch (err) {
    stored.destroy();
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    if (err instanceof PgBackupError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new IoError(`restoring ${fileName} to ${destination}: ${e.message}`, { cause: err, path: destination, syscallCode: e.code });
  }
}

/** Decompression errors of an archived file are damage in the archive. */
function toArchiveError(err: PgBackupError, path: string): PgBackupError {
  if (err instanceof WalArchiveError) return err;
  if (err.code === 'ERR_PGBB_COMPRESSION') return new WalArchiveError(`${path}: ${err.message}`, { cause: err, path });
  return err;
}
