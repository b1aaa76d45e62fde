/**
 * Whether the archived WAL is continuous where a restore needs it: on the timeline of the oldest backup
 * from that backup's start segment, on every timeline up to its newest segment. Pure.
 * @module
 */
import { parseSegmentFileName, segmentFileName } from '../wal-segments.js';
import { walArchiveExtent, type ParsedWalKey } from './wal-keys.js';

/** A run of segments the archive lacks: `first` to `last` inclusive, on `timeline`. */
export interface WalHole {
  timeline: number;
  first: string;
  last: string;
  /** `gap`: between two stored segments; `start`: between the oldest backup's start segment and the first stored one. */
  kind: 'gap' | 'start';
}

/** Where the archive must be continuous from: the oldest backup's timeline and start segment number. */
export interface WalContinuityStart {
  timeline: number;
  segno: bigint;
}

/**
 * The holes of the archive (see the module documentation), oldest timeline first. Segments before
 * `from` on its timeline do not count: a hole there harms no restore. An empty archive has no holes.
 */
export function walHoles(keys: readonly ParsedWalKey[], segmentSize: number, from: WalContinuityStart | undefined): WalHole[] {
  const relevant = keys.filter((k) => {
    if (from === undefined || k.kind !== 'segment') return true;
    const parsed = parseSegmentFileName(k.name, segmentSize);
    return !parsed || parsed.timeline !== from.timeline || parsed.segno >= from.segno;
  });
  const holes: WalHole[] = [];
  for (const extent of walArchiveExtent(relevant, segmentSize)) {
    if (from !== undefined && extent.timeline === from.timeline) {
      const first = parseSegmentFileName(extent.firstSegment, segmentSize)!.segno;
      if (first > from.segno) {
        holes.push({
          timeline: extent.timeline,
          first: segmentFileName(extent.timeline, from.segno, segmentSize),
          last: segmentFileName(extent.timeline, first - 1n, segmentSize),
          kind: 'start',
        });
      }
    }
    for (const gap of extent.gaps) holes.push({ timeline: extent.timeline, first: gap.first, last: gap.last, kind: 'gap' });
  }
  return holes;
}
