/**
 * What `pgbb list --json` and `pgbb show --json` print, built from the catalog: the documented, stable
 * JSON (docs/repository.md, "Listing"). Pure.
 * @module
 */
import { formatLsn } from '../lsn.js';
import { parseSegmentFileName, segmentStartLsn } from '../wal-segments.js';
import { pitrWindow, type PitrPoint } from './catalog.js';
import type { ClusterIdentity } from './identity.js';
import { backupRecordJson, type BackupRecord, type BackupRecordJson } from './record.js';
import { rehearsalRecordJson, type RehearsalRecord, type RehearsalRecordJson } from './rehearsal-record.js';
import { walArchiveEnd, type RepositoryWalArchive } from './wal-archive.js';
import type { WalGap } from './wal-keys.js';

/** A backup as the listing shows it: its record without the list of objects. */
export type BackupSummaryJson = Omit<BackupRecordJson, 'objects'>;

/** A rehearsal as the listing shows it: its record without the steps. */
export type RehearsalSummaryJson = Omit<RehearsalRecordJson, 'steps'>;

/** One end of the point-in-time window, as JSON. */
export interface PitrPointJson {
  /** ISO 8601, UTC. */
  time: string;
  /** `X/X`. */
  lsn: string;
  timeline: number;
}

/** The archived WAL of one timeline, as JSON. */
export interface WalTimelineJson {
  timeline: number;
  /** The lowest and highest segment stored (24-character names). */
  firstSegment: string;
  lastSegment: string;
  /** The start of `firstSegment` and the end of `lastSegment`, `X/X`. */
  startLsn: string;
  endLsn: string;
  /** Segments stored. */
  segments: number;
  /** Missing runs between the first and the last segment, oldest first (`first` to `last`, inclusive). */
  gaps: WalGap[];
  /** Whether the timeline's history file (`<timeline>.history`) is stored; timeline 1 has none. */
  history: boolean;
}

/** The WAL archive, as JSON. */
export interface WalArchiveJson {
  /** The WAL segment size in bytes. */
  segmentSize: number;
  /** Lowest timeline first. */
  timelines: WalTimelineJson[];
}

/** The listing of a repository. Keys may be added later; none is removed or changes meaning. */
export interface RepositoryListingJson {
  /** Where the repository is (a path or `s3://bucket/prefix`; never credentials). */
  repository: string;
  /** The cluster it serves; `null` before the first backup. */
  cluster: ClusterIdentity | null;
  /** Every committed backup, oldest first. */
  backups: BackupSummaryJson[];
  /**
   * The span a restore can reach: `from` the end of the oldest backup, `to` the end of the newest
   * archived WAL segment (`null` while the repository holds no WAL archive), its `time` being when that
   * segment was stored (the WAL in it was written before).
   */
  pitrWindow: { from: PitrPointJson | null; to: PitrPointJson | null };
  /** The WAL archive per timeline; `null` while the repository holds none. */
  walArchive: WalArchiveJson | null;
  /** Every recorded restore rehearsal, oldest first. */
  rehearsals: RehearsalSummaryJson[];
}

/** One end of a window as JSON. */
export function pointJson(point: PitrPoint | null): PitrPointJson | null {
  return point === null ? null : { time: point.time.toISOString(), lsn: formatLsn(point.lsn), timeline: point.timeline };
}

function walArchiveJson(wal: RepositoryWalArchive): WalArchiveJson {
  const { segmentSize } = wal;
  const segno = (name: string): bigint => parseSegmentFileName(name, segmentSize)?.segno ?? 0n;
  return {
    segmentSize,
    timelines: wal.timelines.map((t) => ({
      timeline: t.timeline,
      firstSegment: t.firstSegment,
      lastSegment: t.lastSegment,
      startLsn: formatLsn(segmentStartLsn(segno(t.firstSegment), segmentSize)),
      endLsn: formatLsn(segmentStartLsn(segno(t.lastSegment) + 1n, segmentSize)),
      segments: t.segments,
      gaps: t.gaps,
      history: t.history,
    })),
  };
}

/**
 * The listing of a repository at `location` serving `cluster` and holding `records`, the WAL
 * archive `wal` (`Repository.walArchive()`) when it holds one, and the recorded `rehearsals`.
 */
export function repositoryListing(
  location: string,
  cluster: ClusterIdentity | null,
  records: readonly BackupRecord[],
  wal?: RepositoryWalArchive,
  rehearsals: readonly RehearsalRecord[] = [],
): RepositoryListingJson {
  const window = pitrWindow(records, wal === undefined ? undefined : walArchiveEnd(wal));
  return {
    repository: location,
    cluster,
    backups: records.map((r) => {
      const { objects: _objects, ...summary } = backupRecordJson(r);
      return summary;
    }),
    pitrWindow: { from: pointJson(window.from), to: pointJson(window.to) },
    walArchive: wal === undefined ? null : walArchiveJson(wal),
    rehearsals: rehearsals.map((r) => {
      const { steps: _steps, ...summary } = rehearsalRecordJson(r);
      return summary;
    }),
  };
}
