/**
 * Which backup of a catalog serves a recovery target: the newest one that ended before it, and the chain
 * of backups a restore of it needs (an incremental backup needs its parents down to a full one). Pure:
 * targets that only the WAL can place (a restore point, a transaction) are first turned into an LSN by
 * the caller's walk of the archive.
 * @module
 */
import { NoBackupForTargetError, RepositoryError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import type { BackupRecord } from './record.js';

/** What a backup must have ended before. */
export type BackupBound =
  /** The newest backup (no target, or `--target-immediate`). */
  | { kind: 'latest' }
  /** Ended (its record's `endTime`) at or before this time. */
  | { kind: 'time'; time: Date }
  /** Consistent (its `endLsn`) at or before this LSN. */
  | { kind: 'lsn'; lsn: Lsn }
  /** Consistent strictly before this LSN: the end of a restore point or transaction record found in the WAL. */
  | { kind: 'record'; lsn: Lsn; what: string };

function oldestOf(records: readonly BackupRecord[]): BackupRecord | undefined {
  return [...records].sort((a, b) => a.endTime.getTime() - b.endTime.getTime())[0];
}

/**
 * The newest backup that ended before `bound` (by `endTime` for a time, by `endLsn` otherwise).
 * @throws NoBackupForTargetError when none did (the target is before the oldest backup, or there is no backup).
 */
export function newestBackupBefore(records: readonly BackupRecord[], bound: BackupBound): BackupRecord {
  const fits = (r: BackupRecord): boolean => {
    switch (bound.kind) {
      case 'latest':
        return true;
      case 'time':
        return r.endTime.getTime() <= bound.time.getTime();
      case 'lsn':
        return r.endLsn <= bound.lsn;
      case 'record':
        return r.endLsn < bound.lsn;
    }
  };
  const byTime = bound.kind === 'latest' || bound.kind === 'time';
  let best: BackupRecord | undefined;
  for (const r of records) {
    if (!fits(r)) continue;
    if (best === undefined || (byTime ? r.endTime.getTime() > best.endTime.getTime() : r.endLsn > best.endLsn)) best = r;
  }
  if (best !== undefined) return best;
  const oldest = oldestOf(records);
  if (oldest === undefined) {
    throw new NoBackupForTargetError('the repository holds no backup to restore', { advice: 'take one with "pgbb backup --repo REPO"' });
  }
  const target =
    bound.kind === 'time'
      ? `the target time ${bound.time.toISOString()}`
      : bound.kind === 'lsn'
        ? `the target LSN ${formatLsn(bound.lsn)}`
        : bound.kind === 'record'
          ? `the target (${bound.what}, ${formatLsn(bound.lsn)})`
          : 'the target';
  throw new NoBackupForTargetError(
    `${target} is before the end of the oldest backup in the repository, ${oldest.id} (ended ${oldest.endTime.toISOString()} at ${formatLsn(oldest.endLsn)})`,
    {
      oldest: { id: oldest.id, endTime: oldest.endTime, endLsn: formatLsn(oldest.endLsn) },
      advice: 'choose a later target: a restore can reach only points after the end of a backup it holds',
    },
  );
}

/** The oldest backup (by `endTime`): where a walk of the WAL for a restore point or transaction starts. */
export function oldestBackup(records: readonly BackupRecord[]): BackupRecord {
  const oldest = oldestOf(records);
  if (oldest === undefined) {
    throw new NoBackupForTargetError('the repository holds no backup to restore', { advice: 'take one with "pgbb backup --repo REPO"' });
  }
  return oldest;
}

/**
 * The backups a restore of `chosen` needs, oldest first: the full backup, then each incremental one
 * down to `chosen` (just `[chosen]` for a full backup).
 * @throws RepositoryError when a parent is missing from the catalog.
 */
export function backupChain(records: readonly BackupRecord[], chosen: BackupRecord): BackupRecord[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const chain = [chosen];
  for (let r = chosen; r.parent !== null; ) {
    const parent = byId.get(r.parent);
    if (parent === undefined) {
      throw new RepositoryError(`backup ${r.id} is incremental to ${r.parent}, which the repository no longer holds`, {
        advice: 'restore another backup (pgbb list --repo REPO shows them)',
      });
    }
    if (chain.includes(parent)) throw new RepositoryError(`the catalog's parent links of backup ${chosen.id} form a loop`);
    chain.unshift(parent);
    r = parent;
  }
  return chain;
}
