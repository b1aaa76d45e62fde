/**
 * Which history records (`rehearsals/`, `failures/`) `expire` removes with the backups, chosen so that
 * `pgbb status` and `pgbb metrics` report the same afterwards. Pure: the executor (expire.ts) deletes.
 *
 * - A rehearsal record goes when it names a backup the catalog no longer holds after the expiry (removed
 *   now, or by an earlier expire), except the newest rehearsal record (status's "last rehearsal" and the
 *   metrics of the last rehearsal) and the newest passed one (the metrics' last successful rehearsal),
 *   whatever backup they name. A record of a backup from outside the repository (`backupId: null`) stays.
 * - A failure record goes when its run started before the oldest kept backup did, except the newest
 *   failure record. Status counts only the failures after the newest backup's start, which every kept
 *   backup precedes or is; keeping the newest one is for the operator who asks what failed last.
 * - Without a kept backup nothing goes.
 * @module
 */
import type { BackupFailureRecord } from './failure-record.js';
import type { BackupRecord } from './record.js';
import type { RehearsalRecord } from './rehearsal-record.js';

/** The history records an expiry removes. */
export interface HistoryExpiry {
  /** Rehearsal records to remove, oldest first. */
  removeRehearsals: RehearsalRecord[];
  /** Failed-run records to remove, oldest first. */
  removeFailures: BackupFailureRecord[];
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The history records to remove when the catalog keeps `keep` (see the module documentation).
 * `rehearsals` and `failures` may come in any order.
 */
export function planHistoryExpiry(
  keep: readonly BackupRecord[],
  rehearsals: readonly RehearsalRecord[],
  failures: readonly BackupFailureRecord[],
): HistoryExpiry {
  if (keep.length === 0) return { removeRehearsals: [], removeFailures: [] };
  const kept = new Set(keep.map((b) => b.id));
  const sortedRehearsals = [...rehearsals].sort(byId);
  const protectedRehearsals = new Set<string>();
  const newest = sortedRehearsals.at(-1);
  if (newest) protectedRehearsals.add(newest.id);
  const newestPassed = sortedRehearsals.findLast((r) => r.result === 'pass');
  if (newestPassed) protectedRehearsals.add(newestPassed.id);
  const removeRehearsals = sortedRehearsals.filter((r) => r.backupId !== null && !kept.has(r.backupId) && !protectedRehearsals.has(r.id));

  let oldestStart = keep[0]!.startTime.getTime();
  for (const b of keep) oldestStart = Math.min(oldestStart, b.startTime.getTime());
  const sortedFailures = [...failures].sort(byId);
  const newestFailure = sortedFailures.at(-1);
  const removeFailures = sortedFailures.filter((f) => f !== newestFailure && f.startTime.getTime() < oldestStart);
  return { removeRehearsals, removeFailures };
}
