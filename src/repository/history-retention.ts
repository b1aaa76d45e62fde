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
 * - A record that could not be read goes only when its key alone shows that the rule removes it. A
 *   failure record's key is the id the backup would have had, its start time to the millisecond: exactly
 *   what the rule compares, so one that started before the oldest kept backup goes unread, unless its key
 *   is the newest of all failure records. A rehearsal record goes for the backup it names, which only its
 *   content says (its key dates the rehearsal, and a rehearsal of a backup from outside the repository
 *   stays at any age): an unreadable one stays, and every expire warns of it until someone repairs or
 *   removes it. The readable records are judged as if the unreadable ones were not there.
 * @module
 */
import { backupIdTime } from './backup-id.js';
import type { BackupFailureRecord } from './failure-record.js';
import type { UnreadableHistoryRecord } from './history.js';
import type { BackupRecord } from './record.js';
import type { RehearsalRecord } from './rehearsal-record.js';

/** The history records an expiry removes. */
export interface HistoryExpiry {
  /** Rehearsal records to remove, oldest first. */
  removeRehearsals: RehearsalRecord[];
  /** Failed-run records to remove, oldest first. */
  removeFailures: BackupFailureRecord[];
  /** Records that could not be read and are removed all the same (by their keys), oldest first. */
  removeUnreadable: UnreadableHistoryRecord[];
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The history records to remove when the catalog keeps `keep` (see the module documentation).
 * `rehearsals`, `failures` and `unreadable` may come in any order.
 */
export function planHistoryExpiry(
  keep: readonly BackupRecord[],
  rehearsals: readonly RehearsalRecord[],
  failures: readonly BackupFailureRecord[],
  unreadable: readonly UnreadableHistoryRecord[] = [],
): HistoryExpiry {
  if (keep.length === 0) return { removeRehearsals: [], removeFailures: [], removeUnreadable: [] };
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

  const unreadableFailures = unreadable.filter((u) => u.kind === 'failure').sort(byId);
  let newestFailureId = newestFailure?.id ?? '';
  for (const u of unreadableFailures) if (u.id > newestFailureId) newestFailureId = u.id;
  const removeUnreadable = unreadableFailures.filter((u) => {
    const start = backupIdTime(u.id);
    return u.id !== newestFailureId && start !== undefined && start.getTime() < oldestStart;
  });
  return { removeRehearsals, removeFailures, removeUnreadable };
}
