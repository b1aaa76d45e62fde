/**
 * What the archived WAL of a repository means for recovery, derived from a {@link RepositoryState}:
 * its extent, the gaps that matter (after the newest backup a restore cannot pass them), how far it is
 * behind the server, and the point-in-time window it gives. Pure.
 * @module
 */
import { lsn } from '../lsn.js';
import { pitrWindow, type PitrPoint } from '../repository/catalog.js';
import type { BackupRecord } from '../repository/record.js';
import { walArchiveEnd, walArchiveOf, type RepositoryWalArchive } from '../repository/wal-archive.js';
import { walSegmentKey } from '../repository/wal-keys.js';
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

/** The archived WAL, summarised for monitoring. */
export interface WalArchiveSummary {
  /**
   * The archive as the repository summarises it (`Repository.walArchive()`, what `pgbb list` shows): per
   * timeline its first and last segment, count and gaps; its newest segment, where it ends and when that
   * segment was stored.
   */
  wal: RepositoryWalArchive;
  /**
   * Missing runs: inside the archive, and between the newest backup's end and the archive's first
   * segment. Oldest first.
   */
  holes: WalArchiveHole[];
  /** The archive ends before the newest backup does: nothing after that backup was archived. */
  endsBeforeNewestBackup: boolean;
  /** The server's position minus the archive's end (`wal.newest.endLsn`), bytes; `undefined` without the server's position. */
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
  if (segmentSize === undefined) return undefined;
  const wal = walArchiveOf(
    state.walSegments.map((s) => ({
      kind: 'segment' as const,
      key: walSegmentKey(s.name),
      name: s.name,
      compression: 'none' as const,
      storedAt: s.storedAt,
    })),
    segmentSize,
  );
  if (wal === undefined) return undefined;
  const extent = wal.timelines;
  const lastSegno = parseSegmentFileName(wal.newest.segment, segmentSize)!.segno;

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
    wal,
    holes,
    endsBeforeNewestBackup: neededFrom !== undefined && lastSegno < neededFrom,
    lagBytes: server === undefined ? undefined : Math.max(0, Number(server.lsn - wal.newest.endLsn)),
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

/**
 * The window `state` gives, with its archive summarised by {@link summarizeWalArchive}: the repository's
 * window (`pitrWindow`, as `pgbb list` reports it), its end bounded by the first hole after the newest
 * backup, and by that backup's end when no archived WAL follows it.
 */
export function statusWindow(state: RepositoryState, archive: WalArchiveSummary | undefined): StatusWindow {
  const window = (to: PitrPoint | undefined, toSource: StatusWindow['toSource']): StatusWindow => ({
    ...pitrWindow(state.backups, to),
    toSource,
  });
  const newest = newestBackup(state.backups);
  if (newest === undefined) return { from: null, to: null, toSource: null };
  const backupEnd = window({ time: newest.endTime, lsn: newest.endLsn, timeline: newest.endTimeline }, 'backup');
  if (archive === undefined || archive.endsBeforeNewestBackup) return backupEnd;
  const blocking = archive.holes.find((h) => h.blocksNewest);
  if (blocking === undefined) {
    const end = walArchiveEnd(archive.wal);
    return end.lsn <= newest.endLsn ? backupEnd : window(end, 'archive');
  }
  // A hole after the newest backup: the end of the segment before it, when that segment was stored.
  const { segmentSize } = archive.wal;
  const endSegno = parseSegmentFileName(blocking.first, segmentSize)!.segno - 1n;
  const endName = segmentFileName(blocking.timeline, endSegno, segmentSize);
  const stored = state.walSegments.filter((s) => s.name === endName).map((s) => s.storedAt.getTime());
  const endLsn = segmentStartLsn(endSegno + 1n, segmentSize);
  if (stored.length === 0 || endLsn <= newest.endLsn) return backupEnd;
  return window({ time: new Date(Math.max(...stored)), lsn: lsn(endLsn), timeline: blocking.timeline }, 'archive');
}
