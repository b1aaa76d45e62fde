/**
 * What the archived WAL of a repository means for recovery, derived from a {@link RepositoryState}:
 * its extent, the gaps that matter (after the newest backup a restore cannot pass them), how far it is
 * behind the server, and the point-in-time window it gives. Pure.
 * @module
 */
import { lsn, type Lsn } from '../lsn.js';
import { pitrWindow, type PitrPoint } from '../repository/catalog.js';
import type { BackupRecord } from '../repository/record.js';
import { walArchiveExtent, type WalTimelineExtent } from '../repository/wal-keys.js';
import { parseSegmentFileName, segmentFileName, segmentNumber, segmentStartLsn } from '../wal-segments.js';
import type { RepositoryState } from './state.js';

/** A run of missing segments, with what it costs. */
export interface WalArchiveHole {
  timeline: number;
  /** First and last missing segment, inclusive. */
  first: string;
  last: string;
  /**
   * `true` when it lies after the end of the newest backup: no restore can replay past it to the
   * archive's end. `false` when it only limits older backups.
   */
  blocksNewest: boolean;
}

/** The archived WAL, summarised. */
export interface WalArchiveSummary {
  /** Per timeline: first and last segment, count, gaps. */
  extent: WalTimelineExtent[];
  /** The highest segment (highest timeline, then position). */
  newestSegment: string;
  /** The end of the highest segment: everything before it is archived (holes aside). */
  endLsn: Lsn;
  /** Its timeline. */
  endTimeline: number;
  /** When the most recent segment was stored. */
  lastStoredAt: Date;
  /**
   * Missing runs: inside the archive, and between the newest backup's end and the archive's first
   * segment. Oldest first.
   */
  holes: WalArchiveHole[];
  /** The archive ends before the newest backup does: nothing after that backup was archived. */
  endsBeforeNewestBackup: boolean;
  /** The server's position minus {@link endLsn}, bytes; `undefined` without the server's position. */
  lagBytes: number | undefined;
}

function newestBackup(backups: readonly BackupRecord[]): BackupRecord | undefined {
  let newest: BackupRecord | undefined;
  for (const b of backups) if (newest === undefined || b.endLsn > newest.endLsn) newest = b;
  return newest;
}

/**
 * The archive of `state` summarised, or `undefined` when it holds no segment. Needs the segment size
 * (`repository.json` `walSegmentSize`): `undefined` is also returned when it is not recorded.
 */
export function summarizeWalArchive(state: RepositoryState): WalArchiveSummary | undefined {
  const segmentSize = state.info?.cluster.walSegmentSize;
  if (segmentSize === undefined || state.walSegments.length === 0) return undefined;
  const extent = walArchiveExtent(
    state.walSegments.map((s) => ({ kind: 'segment' as const, key: s.name, name: s.name, compression: 'none' as const })),
    segmentSize,
  );
  const last = extent.at(-1);
  if (last === undefined) return undefined;
  const lastSegno = parseSegmentFileName(last.lastSegment, segmentSize)!.segno;
  const endLsn = segmentStartLsn(lastSegno + 1n, segmentSize);
  let lastStoredAt = state.walSegments[0]!.storedAt;
  for (const s of state.walSegments) if (s.storedAt > lastStoredAt) lastStoredAt = s.storedAt;

  const newest = newestBackup(state.backups);
  // The first segment a restore of the newest backup reads from the archive: the one holding its end.
  const neededFrom = newest === undefined ? undefined : segmentNumber(newest.endLsn, segmentSize);
  const holes: WalArchiveHole[] = [];
  if (newest !== undefined && neededFrom !== undefined) {
    const own = extent.find((e) => e.timeline === newest.endTimeline);
    const first = own === undefined ? undefined : parseSegmentFileName(own.firstSegment, segmentSize)!.segno;
    if (first !== undefined && first > neededFrom) {
      holes.push({
        timeline: newest.endTimeline,
        first: segmentFileName(newest.endTimeline, neededFrom, segmentSize),
        last: segmentFileName(newest.endTimeline, first - 1n, segmentSize),
        blocksNewest: true,
      });
    }
  }
  for (const e of extent) {
    for (const gap of e.gaps) {
      const gapLast = parseSegmentFileName(gap.last, segmentSize)!.segno;
      holes.push({
        timeline: e.timeline,
        first: gap.first,
        last: gap.last,
        blocksNewest: neededFrom !== undefined && gapLast >= neededFrom,
      });
    }
  }
  const server = state.server !== undefined && 'lsn' in state.server ? state.server : undefined;
  return {
    extent,
    newestSegment: last.lastSegment,
    endLsn,
    endTimeline: last.timeline,
    lastStoredAt,
    holes,
    endsBeforeNewestBackup: neededFrom !== undefined && lastSegno < neededFrom,
    lagBytes: server === undefined ? undefined : Math.max(0, Number(server.lsn - endLsn)),
  };
}

/** The point-in-time window as monitoring reports it. */
export interface StatusWindow {
  /** The earliest reachable point: the end of the oldest backup. `null` without backups. */
  from: PitrPoint | null;
  /**
   * The latest reachable point: the end of the archived WAL that follows the newest backup without a
   * hole (its time: when that segment was stored), or the newest backup's end without such WAL.
   */
  to: PitrPoint | null;
  /** Where `to` comes from. */
  toSource: 'archive' | 'backup' | null;
}

/** The window `state` gives, with its archive summarised by {@link summarizeWalArchive}. */
export function statusWindow(state: RepositoryState, archive: WalArchiveSummary | undefined): StatusWindow {
  const from = pitrWindow(state.backups).from;
  const newest = newestBackup(state.backups);
  if (newest === undefined) return { from, to: null, toSource: null };
  const segmentSize = state.info?.cluster.walSegmentSize;
  const backupEnd: StatusWindow = {
    from,
    to: { time: newest.endTime, lsn: newest.endLsn, timeline: newest.endTimeline },
    toSource: 'backup',
  };
  if (archive === undefined || segmentSize === undefined || archive.endsBeforeNewestBackup) return backupEnd;
  const blocking = archive.holes.find((h) => h.blocksNewest);
  // Without a blocking hole, the archive's end; with one, the end of the segment before it.
  const endSegno = blocking
    ? parseSegmentFileName(blocking.first, segmentSize)!.segno - 1n
    : parseSegmentFileName(archive.newestSegment, segmentSize)!.segno;
  const timeline = blocking ? blocking.timeline : archive.endTimeline;
  const endName = segmentFileName(timeline, endSegno, segmentSize);
  const stored = state.walSegments.filter((s) => s.name === endName).map((s) => s.storedAt.getTime());
  const endLsn = segmentStartLsn(endSegno + 1n, segmentSize);
  if (stored.length === 0 || endLsn <= newest.endLsn) return backupEnd;
  return { from, to: { time: new Date(Math.max(...stored)), lsn: lsn(endLsn), timeline }, toSource: 'archive' };
}
