/**
 * What `pgbb list --json` and `pgbb show --json` print, built from the catalog: the documented, stable
 * JSON (docs/repository.md, "Listing"). Pure.
 * @module
 */
import { formatLsn } from '../lsn.js';
import { pitrWindow, type PitrPoint } from './catalog.js';
import type { ClusterIdentity } from './identity.js';
import { backupRecordJson, type BackupRecord, type BackupRecordJson } from './record.js';
import { rehearsalRecordJson, type RehearsalRecord, type RehearsalRecordJson } from './rehearsal-record.js';

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
   * archived WAL (`null` while the repository holds no WAL archive).
   */
  pitrWindow: { from: PitrPointJson | null; to: PitrPointJson | null };
  /** The WAL archive per timeline; `null` while the repository holds none. */
  walArchive: null;
  /** Every recorded restore rehearsal, oldest first. */
  rehearsals: RehearsalSummaryJson[];
}

/** One end of a window as JSON. */
export function pointJson(point: PitrPoint | null): PitrPointJson | null {
  return point === null ? null : { time: point.time.toISOString(), lsn: formatLsn(point.lsn), timeline: point.timeline };
}

/** The listing of a repository at `location` serving `cluster` and holding `records` and `rehearsals`. */
export function repositoryListing(
  location: string,
  cluster: ClusterIdentity | null,
  records: readonly BackupRecord[],
  rehearsals: readonly RehearsalRecord[] = [],
): RepositoryListingJson {
  const window = pitrWindow(records);
  return {
    repository: location,
    cluster,
    backups: records.map((r) => {
      const { objects: _objects, ...summary } = backupRecordJson(r);
      return summary;
    }),
    pitrWindow: { from: pointJson(window.from), to: pointJson(window.to) },
    walArchive: null,
    rehearsals: rehearsals.map((r) => {
      const { steps: _steps, ...summary } = rehearsalRecordJson(r);
      return summary;
    }),
  };
}
