/**
 * What `pgbb expire --json` prints, built from an expiry's result: the documented, stable JSON
 * (docs/repository.md, "Expiry"). Pure.
 * @module
 */
import type { ExpireResult } from './expire.js';
import { pointJson, type BackupSummaryJson, type PitrPointJson } from './listing.js';
import { backupRecordJson } from './record.js';
import type { RetentionPolicy } from './retention.js';
import { walArchiveExtent, type WalTimelineExtent } from './wal-keys.js';

/** The window and the WAL archive at one moment of an expiry. */
export interface ExpiryStateJson {
  pitrWindow: { from: PitrPointJson | null; to: PitrPointJson | null };
  /** The archived WAL per timeline (empty without an archive or without a recorded segment size). */
  walArchive: WalTimelineExtent[];
}

/** The report of an expiry. Keys may be added later; none is removed or changes meaning. */
export interface ExpiryJson {
  repository: string;
  /** True when nothing was deleted (`--dry-run`). */
  dryRun: boolean;
  /** The policy applied: `{ "retainFull": N }` or `{ "retainWindowMs": MS }`. */
  policy: RetentionPolicy;
  /** The backups removed (or that a dry run would remove), oldest first, as `pgbb list` shows them. */
  removedBackups: BackupSummaryJson[];
  /** The ids of the backups kept, oldest first. */
  keptBackups: string[];
  /** Ids whose objects had no catalog record (left by a killed backup or an interrupted expire) and were removed. */
  removedUncommitted: string[];
  /** The WAL segments removed, per timeline (first and last segment, count, and the runs not removed in between). */
  removedWal: WalTimelineExtent[];
  /** Why no WAL was considered, when none was; absent otherwise. */
  walSkipped?: string;
  /** The rehearsal records removed (`rehearsals/<id>.json`), oldest first: the rehearsal and the backup it named. */
  removedRehearsals: { id: string; backupId: string | null }[];
  /** The ids of the failed-run records removed (`failures/<id>.json`), oldest first. */
  removedFailures: string[];
  /**
   * The history records that could not be read, skipped, in key order: the key, why, and whether it was
   * removed (or a dry run would remove it) by what its key encodes; the others were kept.
   */
  unreadableHistory: { key: string; reason: string; removed: boolean }[];
  before: ExpiryStateJson;
  after: ExpiryStateJson;
}

/** The JSON report of `result`, an expiry of the repository at `location` under `policy`. */
export function expiryJson(location: string, policy: RetentionPolicy, result: ExpireResult): ExpiryJson {
  const state = (s: ExpireResult['before']): ExpiryStateJson => ({
    pitrWindow: { from: pointJson(s.pitrWindow.from), to: pointJson(s.pitrWindow.to) },
    walArchive: s.walArchive,
  });
  const segmentSize = result.segmentSize;
  return {
    repository: location,
    dryRun: result.dryRun,
    policy,
    removedBackups: result.remove.map((r) => {
      const { objects: _objects, ...summary } = backupRecordJson(r);
      return summary;
    }),
    keptBackups: result.keep.map((r) => r.id),
    removedUncommitted: result.removedUncommitted,
    removedWal: segmentSize === undefined ? [] : walArchiveExtent(result.removeWal, segmentSize),
    ...(result.walSkipped === undefined ? {} : { walSkipped: result.walSkipped }),
    removedRehearsals: result.removeRehearsals.map((r) => ({ id: r.id, backupId: r.backupId })),
    removedFailures: result.removeFailures.map((f) => f.id),
    unreadableHistory: result.unreadableHistory.map((u) => ({
      key: u.key,
      reason: u.reason,
      removed: result.removeUnreadable.includes(u),
    })),
    before: state(result.before),
    after: state(result.after),
  };
}
