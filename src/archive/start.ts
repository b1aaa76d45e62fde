/**
 * Where a WAL archive resumes, from what it already holds (pg_receivewal.c's FindStreamingStart,
 * compressed files included). No I/O of its own: the store lists its files and tells the
 * uncompressed size of a compressed one.
 * @module
 */
import type { Lsn } from '../lsn.js';
import { segmentStartLsn } from '../wal/segments.js';
import { parseArchiveFileName } from './names.js';

/** One stored file: its name and stored (possibly compressed) size. */
export interface ArchiveFile {
  name: string;
  /** Bytes stored. */
  bytes: number;
}

/** Where to resume in an archive, and why. */
export interface ArchiveStart {
  /** A segment start: the one after the newest complete segment, or the newest `.partial`'s own start. */
  startLsn: Lsn;
  /** Timeline of the file the decision is based on. */
  timeline: number;
  /** That file's name. */
  basedOn: string;
  /** Whether that file is a `.partial` (its segment is streamed again from its start). */
  partial: boolean;
}

/** Options of {@link findArchiveStart}. */
export interface FindArchiveStartOptions {
  /** WAL segment size in bytes. */
  segmentSize: number;
  /** Uncompressed size of a compressed complete segment (the store decompresses it); a rejection skips the file. */
  uncompressedBytes: (file: ArchiveFile) => Promise<number>;
  /** Told about a complete-looking segment of the wrong size; it is skipped, as pg_receivewal does. */
  onSkip?: (file: ArchiveFile, reason: string) => void;
}

/**
 * The newest segment decides: a complete one means "start at the next segment", a `.partial`
 * one "stream that segment again from its start". Among equal segment numbers the higher
 * timeline wins, and a complete file wins over a `.partial` of the same segment. A complete
 * segment whose (uncompressed) size is not the segment size is skipped and the next candidate
 * considered; only the candidates down to the first good one are decompressed. `undefined`
 * when the archive holds no usable segment.
 * @example
 * ```ts
 * const start = await findArchiveStart(await store.list(), {
 *   segmentSize, uncompressedBytes: (f) => store.uncompressedBytes(f),
 * });
 * ```
 */
export async function findArchiveStart(files: Iterable<ArchiveFile>, options: FindArchiveStartOptions): Promise<ArchiveStart | undefined> {
  const candidates = [];
  for (const file of files) {
    const parsed = parseArchiveFileName(file.name, options.segmentSize);
    if (parsed?.kind === 'segment') candidates.push({ file, ...parsed });
  }
  candidates.sort((a, b) =>
    a.segno !== b.segno
      ? a.segno > b.segno
        ? -1
        : 1
      : a.timeline !== b.timeline
        ? b.timeline - a.timeline
        : Number(a.partial) - Number(b.partial),
  );
  for (const c of candidates) {
    if (c.partial) {
      return { startLsn: segmentStartLsn(c.segno, options.segmentSize), timeline: c.timeline, basedOn: c.file.name, partial: true };
    }
    let size: number;
    try {
      size = c.compression === 'none' ? c.file.bytes : await options.uncompressedBytes(c.file);
    } catch (err) {
      options.onSkip?.(c.file, `segment file cannot be decompressed: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    if (size !== options.segmentSize) {
      options.onSkip?.(c.file, `segment file holds ${size} bytes of WAL, expected ${options.segmentSize}`);
      continue;
    }
    return { startLsn: segmentStartLsn(c.segno + 1n, options.segmentSize), timeline: c.timeline, basedOn: c.file.name, partial: false };
  }
  return undefined;
}
