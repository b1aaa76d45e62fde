/**
 * File names in a WAL archive written by {@link receiveWal}, as pg_receivewal names them:
 * `SEGMENT[.gz|.lz4|.zst][.partial]` and `%08X.history`. Pure.
 * @module
 */
import { COMPRESSION_SUFFIX, type CompressionAlgorithm } from '../compress/spec.js';
import { parseSegmentFileName } from '../wal/segments.js';

/** Suffix of the segment being written (pg_receivewal's `.partial`). */
export const PARTIAL_SUFFIX = '.partial';

/** What a WAL archive file name says. */
export type ArchiveFileName =
  | {
      kind: 'segment';
      /** The 24-character segment name. */
      segment: string;
      timeline: number;
      segno: bigint;
      compression: CompressionAlgorithm;
      /** Carries `.partial`: incomplete, or the last segment of a timeline that was left. */
      partial: boolean;
    }
  | { kind: 'history'; timeline: number };

const ALGORITHM_BY_SUFFIX: readonly (readonly [string, CompressionAlgorithm])[] = [
  [COMPRESSION_SUFFIX.gzip, 'gzip'],
  [COMPRESSION_SUFFIX.lz4, 'lz4'],
  [COMPRESSION_SUFFIX.zstd, 'zstd'],
];

/**
 * Parse an archive file name; `null` for anything else (temporary files, foreign files).
 * @example
 * ```ts
 * parseArchiveFileName('000000010000000000000003.gz.partial', 16 << 20);
 * // { kind: 'segment', segment: '000000010000000000000003', timeline: 1, segno: 3n, compression: 'gzip', partial: true }
 * ```
 */
export function parseArchiveFileName(name: string, segmentSize: number): ArchiveFileName | null {
  const history = /^([0-9A-F]{8})\.history$/.exec(name);
  if (history) return { kind: 'history', timeline: Number.parseInt(history[1]!, 16) };
  let rest = name;
  const partial = rest.endsWith(PARTIAL_SUFFIX);
  if (partial) rest = rest.slice(0, -PARTIAL_SUFFIX.length);
  let compression: CompressionAlgorithm = 'none';
  for (const [suffix, algorithm] of ALGORITHM_BY_SUFFIX) {
    if (rest.endsWith(suffix)) {
      compression = algorithm;
      rest = rest.slice(0, -suffix.length);
      break;
    }
  }
  const parsed = parseSegmentFileName(rest, segmentSize);
  if (parsed === null) return null;
  return { kind: 'segment', segment: rest, timeline: parsed.timeline, segno: parsed.segno, compression, partial };
}

/** The file name of a segment stored with `compression`, complete or `.partial`. */
export function archiveSegmentFileName(segment: string, compression: CompressionAlgorithm, partial: boolean): string {
  return segment + COMPRESSION_SUFFIX[compression] + (partial ? PARTIAL_SUFFIX : '');
}

/** Every name a `.partial` of `segment` can have, whatever its compression. */
export function partialFileNames(segment: string): string[] {
  return (['none', 'gzip', 'lz4', 'zstd'] as const).map((c) => archiveSegmentFileName(segment, c, true));
}
