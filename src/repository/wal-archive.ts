/**
 * The summary of a repository's WAL archive, computed once from the listing of `wal/`: its extent per
 * timeline and its newest segment, which ends the archive. `pgbb list` (`Repository.walArchive()`),
 * `pgbb status`, `pgbb metrics` and `pgbb expire` all report this one summary, and the point-in-time
 * window's end ({@link walArchiveEnd}). Pure: listing the objects is wal-listing.ts's.
 * @module
 */
import type { Lsn } from '../lsn.js';
import { parseSegmentFileName, segmentStartLsn } from '../wal-segments.js';
import type { PitrPoint } from './catalog.js';
import { walArchiveExtent, type ParsedWalKey, type WalTimelineExtent } from './wal-keys.js';

/** An object under `wal/`: what its key names, and when the storage stored it (its last modification). */
export type StoredWalKey = ParsedWalKey & {
  /** When it was stored: the WAL in a segment was written before. */
  storedAt: Date;
};

/** What a repository's WAL archive holds: see `Repository.walArchive`. */
export interface RepositoryWalArchive {
  /** The WAL segment size in bytes (from `repository.json`). */
  segmentSize: number;
  /** The archived segments per timeline, lowest timeline first. */
  timelines: WalTimelineExtent[];
  /** The newest archived segment: the last one of the highest timeline. */
  newest: {
    /** Its 24-character name. */
    segment: string;
    timeline: number;
    /** The end of the segment: the last WAL position the archive reaches. */
    endLsn: Lsn;
    /**
     * When it was stored (the object's last modification): the WAL in it was written before. A restore
     * to a later time replays up to the last record of this segment.
     */
    storedAt: Date;
  };
}

/**
 * The archive that `objects` (the listing of `wal/`) make with segments of `segmentSize` bytes;
 * `undefined` while they hold no segment. A segment stored in two compressions counts once, at the
 * later of its two times.
 */
export function walArchiveOf(objects: Iterable<StoredWalKey>, segmentSize: number): RepositoryWalArchive | undefined {
  const keys: StoredWalKey[] = [];
  const storedAt = new Map<string, Date>();
  for (const key of objects) {
    keys.push(key);
    const earlier = storedAt.get(key.name);
    if (key.kind === 'segment' && (earlier === undefined || key.storedAt > earlier)) storedAt.set(key.name, key.storedAt);
  }
  const timelines = walArchiveExtent(keys, segmentSize);
  const last = timelines.at(-1);
  const parsed = last === undefined ? null : parseSegmentFileName(last.lastSegment, segmentSize);
  if (last === undefined || parsed === null) return undefined;
  return {
    segmentSize,
    timelines,
    newest: {
      segment: last.lastSegment,
      timeline: last.timeline,
      endLsn: segmentStartLsn(parsed.segno + 1n, segmentSize),
      storedAt: storedAt.get(last.lastSegment) ?? new Date(0),
    },
  };
}

/** Where the archive ends, as the end of a point-in-time window: its newest segment's end, when that was stored. */
export function walArchiveEnd(archive: RepositoryWalArchive): PitrPoint {
  return { time: archive.newest.storedAt, lsn: archive.newest.endLsn, timeline: archive.newest.timeline };
}
