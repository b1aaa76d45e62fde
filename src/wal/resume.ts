/**
 * Where a pg_receivewal-like archiver resumes streaming, from what its directory already holds
 * (pg_receivewal.c's FindStreamingStart). Pure: the caller lists the directory.
 * @module
 */
import type { Lsn } from '../lsn.js';
import { parseSegmentFileName, segmentStartLsn } from './segments.js';

/** One directory entry, as `readdir` + `stat` give it. */
export interface WalDirectoryEntry {
  name: string;
  /** Size in bytes. */
  size: number;
}

/** Where to resume, and why. */
export interface StreamingStart {
  /** Segment start to pass as `startLsn`. */
  startLsn: Lsn;
  /** Timeline of the newest segment found. */
  timeline: number;
  /** The file the decision is based on. */
  basedOn: string;
  /** `true` when that file is a `.partial`: it is streamed again from its start. */
  partial: boolean;
}

/** Options of {@link findStreamingStart}. */
export interface FindStreamingStartOptions {
  /** WAL segment size in bytes. */
  segmentSize: number;
  /** Suffix of incomplete segments. @default '.partial' */
  partialSuffix?: string;
  /** Called for a complete-looking segment whose size is wrong (it is skipped, as pg_receivewal does). */
  onSkip?: (entry: WalDirectoryEntry, reason: string) => void;
}

/**
 * The highest segment in `entries` decides: a complete one means "start at the next segment", a
 * `.partial` one means "stream that segment again from its start" (the sink reuses the full-size
 * file). Among equal segment numbers the higher timeline wins. `undefined` when the directory has
 * no segment: then start from the slot's restart_lsn (READ_REPLICATION_SLOT, 15+) or the server's
 * current position (IDENTIFY_SYSTEM), rounded down to a segment start.
 *
 * @example
 * ```ts
 * const entries = readdirSync(dir).map((name) => ({ name, size: statSync(join(dir, name)).size }));
 * const start = findStreamingStart(entries, { segmentSize });
 * ```
 */
export function findStreamingStart(entries: Iterable<WalDirectoryEntry>, options: FindStreamingStartOptions): StreamingStart | undefined {
  const suffix = options.partialSuffix ?? '.partial';
  let best: { segno: bigint; timeline: number; partial: boolean; name: string } | undefined;
  for (const entry of entries) {
    const partial = suffix !== '' && entry.name.endsWith(suffix);
    const base = partial ? entry.name.slice(0, -suffix.length) : entry.name;
    const parsed = parseSegmentFileName(base, options.segmentSize);
    if (parsed === null) continue;
    if (!partial && entry.size !== options.segmentSize) {
      options.onSkip?.(entry, `segment file has ${entry.size} bytes, expected ${options.segmentSize}`);
      continue;
    }
    if (
      best === undefined ||
      parsed.segno > best.segno ||
      (parsed.segno === best.segno && parsed.timeline > best.timeline) ||
      // The same segment both complete and partial: the complete file wins.
      (parsed.segno === best.segno && parsed.timeline === best.timeline && best.partial && !partial)
    ) {
      best = { segno: parsed.segno, timeline: parsed.timeline, partial, name: entry.name };
    }
  }
  if (best === undefined) return undefined;
  const segno = best.partial ? best.segno : best.segno + 1n;
  return { startLsn: segmentStartLsn(segno, options.segmentSize), timeline: best.timeline, basedOn: best.name, partial: best.partial };
}
