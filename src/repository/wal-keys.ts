/**
 * Where archived WAL lives in a repository, and what a listing of it says: the one place that names WAL
 * keys and computes the archive's extent per timeline. Pure.
 *
 * ```
 * wal/<24 hex segment name>[.gz|.lz4|.zst]   a complete segment, compressed as receive-wal was asked
 * wal/<8 hex timeline>.history               a timeline history file (never compressed)
 * ```
 *
 * The names are PostgreSQL's own (plus the compression suffix), so that in a local-directory
 * repository an operator, a script or `pg_waldump` finds the segments under `REPO/wal/`. Only complete
 * segments are stored: the segment in progress lives in receive-wal's local spool.
 * @module
 */
import { COMPRESSION_SUFFIX } from '../compress/spec.js';
import { parseSegmentFileName, segmentFileName } from '../wal-segments.js';

/** Prefix of every archived WAL object. */
export const WAL_PREFIX = 'wal/';

/** The compressions an archived segment may carry, by key suffix (`''` is uncompressed). */
export type WalKeyCompression = 'none' | 'gzip' | 'lz4' | 'zstd';

const SEGMENT_KEY_RE = /^wal\/([0-9A-F]{24})(\.gz|\.lz4|\.zst)?$/;
const HISTORY_KEY_RE = /^wal\/([0-9A-F]{8})\.history$/;

/** Key of a complete archived segment (`wal/000000010000000000000003.gz`). */
export function walSegmentKey(segmentName: string, compression: WalKeyCompression = 'none'): string {
  return `${WAL_PREFIX}${segmentName}${COMPRESSION_SUFFIX[compression]}`;
}

/** Key of a timeline history file (`wal/00000002.history`). */
export function walHistoryKey(timeline: number): string {
  return `${WAL_PREFIX}${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
}

/** What a WAL key names; `undefined` for keys under `wal/` this version does not know (skipped). */
export type ParsedWalKey =
  | { kind: 'segment'; key: string; name: string; compression: WalKeyCompression }
  | { kind: 'history'; key: string; name: string; timeline: number };

/** Parse a key under `wal/`. */
export function parseWalKey(key: string): ParsedWalKey | undefined {
  const seg = SEGMENT_KEY_RE.exec(key);
  if (seg) {
    const suffix = seg[2] ?? '';
    const compression = (Object.keys(COMPRESSION_SUFFIX) as WalKeyCompression[]).find((c) => COMPRESSION_SUFFIX[c] === suffix) ?? 'none';
    return { kind: 'segment', key, name: seg[1]!, compression };
  }
  const hist = HISTORY_KEY_RE.exec(key);
  if (hist) return { kind: 'history', key, name: `${hist[1]!}.history`, timeline: Number.parseInt(hist[1]!, 16) };
  return undefined;
}

/** A run of missing segments on one timeline: `first` to `last`, inclusive. */
export interface WalGap {
  first: string;
  last: string;
}

/** The archived WAL of one timeline. */
export interface WalTimelineExtent {
  timeline: number;
  /** The lowest and highest segment stored. */
  firstSegment: string;
  lastSegment: string;
  /** Segments stored. */
  segments: number;
  /** Missing runs between `firstSegment` and `lastSegment`, oldest first. */
  gaps: WalGap[];
  /** Whether `<timeline>.history` is stored (timeline 1 has none). */
  history: boolean;
}

/**
 * The extent of the archive per timeline, lowest timeline first, from the names of its objects.
 * A segment stored twice (two compressions) counts once. Names that are not segments of
 * `segmentSize` are ignored.
 */
export function walArchiveExtent(keys: Iterable<ParsedWalKey>, segmentSize: number): WalTimelineExtent[] {
  const byTimeline = new Map<number, Set<bigint>>();
  const histories = new Set<number>();
  for (const k of keys) {
    if (k.kind === 'history') {
      histories.add(k.timeline);
      continue;
    }
    const parsed = parseSegmentFileName(k.name, segmentSize);
    if (!parsed) continue;
    let set = byTimeline.get(parsed.timeline);
    if (!set) byTimeline.set(parsed.timeline, (set = new Set()));
    set.add(parsed.segno);
  }
  const out: WalTimelineExtent[] = [];
  for (const timeline of [...byTimeline.keys()].sort((a, b) => a - b)) {
    const segnos = [...byTimeline.get(timeline)!].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const gaps: WalGap[] = [];
    for (let i = 1; i < segnos.length; i++) {
      const prev = segnos[i - 1]!;
      const cur = segnos[i]!;
      if (cur - prev > 1n) {
        gaps.push({ first: segmentFileName(timeline, prev + 1n, segmentSize), last: segmentFileName(timeline, cur - 1n, segmentSize) });
      }
    }
    out.push({
      timeline,
      firstSegment: segmentFileName(timeline, segnos[0]!, segmentSize),
      lastSegment: segmentFileName(timeline, segnos.at(-1)!, segmentSize),
      segments: segnos.length,
      gaps,
      history: histories.has(timeline),
    });
  }
  return out;
}
