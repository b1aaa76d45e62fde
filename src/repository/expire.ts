/**
 * `expire` as one call: read the catalog and the WAL archive, decide with the retention policy
 * (retention.ts), and delete, holding the repository lock so that no backup or other expire runs at the
 * same time. The order is crash-safe: a backup's catalog record goes first (the backup stops existing),
 * then its objects, then the history records (rehearsals, failed runs) the plan drops, and the WAL last.
 * A crash in the middle leaves only objects without a record, which the next backup or expire removes
 * (`removeUncommitted`, with the lock held), or history records and WAL that the next expire removes.
 * History records are never read to restore, so deleting them, in any order, cannot make a backup
 * unrestorable; they go before the WAL only so that the one step left to a crashed run is the WAL's.
 * @module
 */
import { AbortError } from '../errors.js';
import { listBackupFailures, listRehearsals, unreadableRecordWarning, type UnreadableHistoryRecord } from './history.js';
import { catalogKey, failureKey, rehearsalKey } from './layout.js';
import type { RepositoryLock } from './lock.js';
import { planExpiry, type ExpiryPlan, type RetentionPolicy, checkPolicy } from './retention.js';
import type { Repository } from './repository.js';
import { listWalKeys } from './wal-listing.js';

/** Options of {@link expireRepository}. */
export interface ExpireOptions {
  /**
   * Decide and report, delete nothing. A dry run does not take the lock (it only reads), so it also
   * runs while a backup does.
   * @default false
   */
  dryRun?: boolean | undefined;
  /** Cancels the run; deletions already made stay made (each leaves the repository consistent). */
  signal?: AbortSignal | undefined;
  /** The present, for `retainWindowMs`. @default new Date() */
  now?: Date | undefined;
  /**
   * Anomalies that do not stop the run: a history record that could not be read, named by its key, and
   * whether it was kept or removed by its key (history-retention.ts says when). Also in
   * {@link ExpireResult.unreadableHistory}.
   * @default none
   */
  onWarning?: ((message: string) => void) | undefined;
}

/** What {@link expireRepository} removed (or, in a dry run, would remove). */
export interface ExpireResult extends ExpiryPlan {
  /** Whether this was a dry run (nothing was deleted). */
  dryRun: boolean;
  /**
   * Ids whose objects were there without a catalog record (a backup killed before its commit, or an
   * expire interrupted after removing a record) and were removed first. Empty in a dry run.
   */
  removedUncommitted: string[];
  /**
   * The history records that could not be read, skipped, in key order; those in
   * {@link HistoryExpiry.removeUnreadable} were removed (in a dry run, would be), the others kept.
   */
  unreadableHistory: UnreadableHistoryRecord[];
}

/** History and WAL keys are deleted this many at a time, so that a lost lock stops the run between batches. */
const DELETE_BATCH = 1000;

function stopIfLost(lock: RepositoryLock, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('expire was aborted', { cause: signal.reason });
  if (lock.signal.aborted) throw lock.signal.reason instanceof Error ? lock.signal.reason : new AbortError('the repository lock was lost');
}

async function execute(repository: Repository, plan: ExpiryPlan, lock: RepositoryLock, options: ExpireOptions): Promise<void> {
  const call = options.signal ? { signal: options.signal } : {};
  // Newest first: an incremental's record goes before its parent's, so a crash never leaves a
  // committed incremental whose parent no longer exists.
  const doomed = [...plan.remove].reverse();
  for (const backup of doomed) {
    stopIfLost(lock, options.signal);
    await repository.storage.delete(catalogKey(backup.id), call);
  }
  for (const backup of doomed) {
    stopIfLost(lock, options.signal);
    await repository.deleteBackupObjects(backup.id, call);
  }
  const history = [
    ...plan.removeRehearsals.map((r) => rehearsalKey(r.id)),
    ...plan.removeFailures.map((f) => failureKey(f.id)),
    ...plan.removeUnreadable.map((u) => u.key),
  ];
  const wal = plan.removeWal.map((k) => k.key);
  for (const keys of [history, wal]) {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      stopIfLost(lock, options.signal);
      await repository.storage.deleteMany(keys.slice(i, i + DELETE_BATCH), call);
    }
  }
}

/**
 * Remove the backups that `policy` does not keep, the WAL that no kept backup needs and the history
 * records (rehearsals, failed runs) of what is gone (the rules are those of `planExpiry`). Holds the
 * repository lock while it deletes: fails with {@link pg-basebackup/errors!RepositoryLockedError} while
 * a backup or another expire holds it.
 * Throws {@link pg-basebackup/errors!ConfigError} for a policy that keeps nothing.
 *
 * @example
 * ```ts
 * import { expireRepository, openRepository } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('/backups/db1');
 * const result = await expireRepository(repo, { retainFull: 2 });
 * for (const b of result.remove) console.log(`removed ${b.id}`);
 * ```
 */
export async function expireRepository(
  repository: Repository,
  policy: RetentionPolicy,
  options: ExpireOptions = {},
): Promise<ExpireResult> {
  checkPolicy(policy);
  const call = options.signal ? { signal: options.signal } : {};
  const dryRun = options.dryRun ?? false;
  const lock = dryRun ? undefined : await repository.lock('expire', { signal: options.signal });
  try {
    // With the lock held no backup is running: objects without a record are leftovers, as for a backup.
    const removedUncommitted = lock ? await repository.removeUncommitted(call) : [];
    const backups = await repository.listBackups(call);
    const info = await repository.info(call);
    const unreadableHistory: UnreadableHistoryRecord[] = [];
    const history = { ...call, onUnreadable: (u: UnreadableHistoryRecord) => unreadableHistory.push(u) };
    const rehearsals = await listRehearsals(repository, history);
    const failures = await listBackupFailures(repository, history);
    unreadableHistory.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const plan = planExpiry({
      backups,
      walKeys: await listWalKeys(repository.storage, call),
      walSegmentSize: info?.cluster.walSegmentSize,
      policy,
      now: options.now ?? new Date(),
      rehearsals,
      failures,
      unreadableHistory,
    });
    if (lock) await execute(repository, plan, lock, options);
    const removed = new Set(plan.removeUnreadable);
    for (const u of unreadableHistory) {
      const fate = !removed.has(u)
        ? 'kept: repair or delete it'
        : `${dryRun ? 'would be removed' : 'removed'} all the same: its key dates the run before the oldest backup kept`;
      options.onWarning?.(`${unreadableRecordWarning(u)}; ${fate}`);
    }
    return { ...plan, dryRun, removedUncommitted, unreadableHistory };
  } finally {
    await lock?.release().catch(() => undefined);
  }
}
