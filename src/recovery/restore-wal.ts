/**
 * PostgreSQL's `restore_command` contract over a WAL archive directory (what `pg_receivewal` or
 * `pgbb receive-wal` writes): find the file recovery asks for under any of its archived names
 * (plain, `.gz`, `.lz4`, `.zst`, and the `.partial` of the last segment), decompress it, check that it
 * is the segment that was asked for, and write it to the destination atomically (temporary name,
 * fsync, rename). "Not in the archive" and "in the archive but unusable" are kept apart, because
 * recovery treats the first as the end of the archive and promotes: a damaged segment must stop it.
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PARTIAL_SUFFIX } from '../archive/names.js';
import { decompressorFor } from '../compress/decompress.js';
import { COMPRESSION_SUFFIX } from '../compress/spec.js';
import { IoError, PgBackupError, WalArchiveError } from '../errors.js';
import { fsyncDirectory } from '../sinks/fsync.js';
import { SegmentPageChecker, type CheckedSegment } from './segment-check.js';

/** Compression suffixes an archived WAL file may carry, in the order they are looked for. */
export const ARCHIVE_SUFFIXES = [
  COMPRESSION_SUFFIX.none,
  COMPRESSION_SUFFIX.gzip,
  COMPRESSION_SUFFIX.lz4,
  COMPRESSION_SUFFIX.zstd,
] as const;

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
  /** The WAL archive directory. */
  archiveDir: string;
  /** Skip the fsync of the file and its directory (tests, or a rehearsal that is thrown away). @default false */
  noSync?: boolean;
}

/** What {@link restoreWalFile} did. */
export type RestoreWalResult =
  | { found: false }
  | {
      found: true;
      /** The archived file it read. */
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
 * The archived file that serves `fileName`, if any: a complete copy first (uncompressed, then by
 * suffix), else, for a segment, its `.partial`.
 */
export async function findArchivedWal(archiveDir: string, fileName: string): Promise<{ path: string; partial: boolean } | undefined> {
  let names: Set<string>;
  try {
    names = new Set(await readdir(archiveDir));
  } catch (err) {
    throw new WalArchiveError(`cannot read the WAL archive ${archiveDir}: ${(err as Error).message}`, { cause: err, path: archiveDir });
  }
  for (const suffix of ARCHIVE_SUFFIXES) {
    if (names.has(fileName + suffix)) return { path: join(archiveDir, fileName + suffix), partial: false };
  }
  if (walFileKind(fileName) === 'segment') {
    for (const suffix of ARCHIVE_SUFFIXES) {
      const name = fileName + suffix + PARTIAL_SUFFIX;
      if (names.has(name)) return { path: join(archiveDir, name), partial: true };
    }
  }
  return undefined;
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
  const { fileName, archiveDir } = options;
  const kind = walFileKind(fileName);
  if (kind === undefined) {
    throw new WalArchiveError(`${JSON.stringify(fileName)} is not a WAL file name (a segment, a .history or a .backup file)`);
  }
  const found = await findArchivedWal(archiveDir, fileName);
  if (!found) return { found: false };
  const destination = resolve(options.destination);
  const temporary = join(dirname(destination), `.${basename(destination)}.pgbb-${process.pid}.tmp`);
  const checker = kind === 'segment' ? new SegmentPageChecker(fileName) : undefined;
  let bytes = 0;
  const handle = await open(temporary, 'w', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new IoError(`cannot create ${temporary}: ${err.message}`, { cause: err, path: temporary, syscallCode: err.code });
  });
  try {
    const check = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        bytes += chunk.length;
        const problem = checker?.push(chunk);
        done(problem === undefined ? null : new WalArchiveError(`${found.path}: ${problem}`, { path: found.path }), chunk);
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        handle.write(chunk).then(() => done(), done);
      },
    });
    try {
      await pipeline(createReadStream(found.path), decompressorForArchived(found.path), check, sink);
    } catch (err) {
      if (err instanceof PgBackupError) throw toArchiveError(err, found.path);
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        // Removed (expired) between the listing and the read.
        await handle.close().catch(() => undefined);
        await unlink(temporary).catch(() => undefined);
        return { found: false };
      }
      throw new IoError(`restoring ${fileName} from ${found.path}: ${e.message}`, { cause: err, path: found.path, syscallCode: e.code });
    }
    let segment: CheckedSegment | undefined;
    if (checker) {
      const end = checker.finish({ partial: found.partial });
      if ('problem' in end) throw new WalArchiveError(`${found.path}: ${end.problem}`, { path: found.path });
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
    return { found: true, source: found.path, bytes, partial: found.partial, ...(segment ? { segment } : {}) };
  } catch (err) {
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
