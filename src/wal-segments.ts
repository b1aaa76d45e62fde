/**
 * WAL segment arithmetic and naming (PostgreSQL's `XLByteToSeg`, `XLogFileName`,
 * `XLogFromFileName`, `XLogSegNoOffsetToRecPtr`). Pure.
 *
 * A segment file name is `%08X%08X%08X` of timeline, `segno / segmentsPerXLogId` and
 * `segno % segmentsPerXLogId`, where `segmentsPerXLogId = 2^32 / segmentSize`.
 * @module
 */
import { ConfigError, ProtocolError } from './errors.js';
import { lsn, type Lsn } from './lsn.js';

/** Smallest segment size PostgreSQL accepts (`WalSegMinSize`, 1 MiB). */
export const MIN_WAL_SEGMENT_SIZE = 1024 * 1024;
/** Largest segment size PostgreSQL accepts (`WalSegMaxSize`, 1 GiB). */
export const MAX_WAL_SEGMENT_SIZE = 1024 * 1024 * 1024;
/** PostgreSQL's default segment size (16 MiB). */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

/** Whether `size` is a power of two between 1 MiB and 1 GiB (`IsValidWalSegSize`). */
export function isValidWalSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= MIN_WAL_SEGMENT_SIZE && size <= MAX_WAL_SEGMENT_SIZE && (size & (size - 1)) === 0;
}

function checkSize(size: number): bigint {
  if (!isValidWalSegmentSize(size)) {
    throw new ConfigError(`invalid WAL segment size ${size}: must be a power of two between 1MB and 1GB`);
  }
  return BigInt(size);
}

const UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/**
 * Parse `SHOW wal_segment_size` output (`16MB`, `1GB`, `64MB`, or plain bytes) into bytes.
 * The server prints GUC memory units as `B`/`kB`/`MB`/`GB` (powers of 1024).
 * @throws ProtocolError when the text is not a valid size (it comes from the server).
 * @example
 * ```ts
 * parseWalSegmentSize('16MB') // 16777216
 * ```
 */
export function parseWalSegmentSize(text: string): number {
  const m = /^\s*(\d+)\s*(B|kB|MB|GB)?\s*$/.exec(text);
  const unit = m?.[2] ?? 'B';
  const size = m ? Number(m[1]) * (UNITS[unit] ?? 1) : NaN;
  if (!isValidWalSegmentSize(size)) {
    throw new ProtocolError(
      `the server reported wal_segment_size ${JSON.stringify(text)}, which is not a power of two between 1MB and 1GB`,
    );
  }
  return size;
}

/** Segment number holding `position` (`XLByteToSeg`). */
export function segmentNumber(position: Lsn | bigint, segmentSize: number): bigint {
  return position / checkSize(segmentSize);
}

/** Byte offset of `position` inside its segment (`XLogSegmentOffset`). */
export function segmentOffset(position: Lsn | bigint, segmentSize: number): number {
  return Number(position % checkSize(segmentSize));
}

/** First LSN of segment `segno` (`XLogSegNoOffsetToRecPtr(segno, 0, ...)`). */
export function segmentStartLsn(segno: bigint, segmentSize: number): Lsn {
  return lsn(segno * checkSize(segmentSize));
}

/** `position` rounded down to the start of its segment. */
export function segmentStartOf(position: Lsn | bigint, segmentSize: number): Lsn {
  const size = checkSize(segmentSize);
  return lsn(position - (position % size));
}

function hex8(n: bigint | number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/**
 * The 24-character segment file name (`XLogFileName`).
 * @example
 * ```ts
 * segmentFileName(1, 1n, 16 * 1024 * 1024) // '000000010000000000000001'
 * ```
 */
export function segmentFileName(timeline: number, segno: bigint, segmentSize: number): string {
  const perId = (1n << 32n) / checkSize(segmentSize);
  if (!Number.isInteger(timeline) || timeline < 0 || timeline > 0xffffffff) {
    throw new RangeError(`timeline out of range: ${timeline}`);
  }
  return hex8(timeline) + hex8(segno / perId) + hex8(segno % perId);
}

/** Segment file name for the segment containing `position`. */
export function segmentFileNameForLsn(timeline: number, position: Lsn | bigint, segmentSize: number): string {
  return segmentFileName(timeline, segmentNumber(position, segmentSize), segmentSize);
}

/** What {@link parseSegmentFileName} returns. */
export interface ParsedSegmentName {
  timeline: number;
  segno: bigint;
}

const SEG_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/**
 * Parse a 24-character segment name (no `.partial` suffix; strip it first), checking that the
 * low part is in range for `segmentSize` (with 16MB segments it runs `00000000`–`000000FF`). Returns `null` when `name` is not a segment name.
 */
export function parseSegmentFileName(name: string, segmentSize: number): ParsedSegmentName | null {
  const m = SEG_RE.exec(name);
  if (!m) return null;
  const perId = (1n << 32n) / checkSize(segmentSize);
  const hi = BigInt(`0x${m[2]!}`);
  const lo = BigInt(`0x${m[3]!}`);
  if (lo >= perId) return null;
  return { timeline: Number.parseInt(m[1]!, 16), segno: hi * perId + lo };
}

/** Whether `name` looks like a WAL segment file name (24 upper-case hex digits). */
export function isSegmentFileName(name: string): boolean {
  return SEG_RE.test(name);
}

/** `%08X.history`: the name of a timeline history file. */
export function timelineHistoryFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}
