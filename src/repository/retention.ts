/**
 * The retention policy of `expire`: from the catalog's records, the archived WAL's keys and the segment
 * size, which backups and which WAL objects go, and the point-in-time window before and after. Pure: the
 * executor (expire.ts) reads the repository and deletes.
 *
 * Which backups stay:
 * 1. the policy's own choice: with `retainFull: N`, every backup that started at or after the N-th newest
 *    full backup; with `retainWindowMs: D`, every backup that started at or after the newest backup that
 *    ended at or before `now − D` (that one is needed to restore to the first moment of the window), or
 *    every backup when none ended that early;
 * 2. the newest full backup, always;
 * 3. the whole chain of every kept incremental backup (its parent, the parent's parent, ... up to a full
 *    backup). This is the safe one of the two ways not to orphan an incremental: an incremental that the
 *    policy keeps keeps its parent, even an older full backup that the count alone would remove, rather
 *    than losing a backup the policy asked to keep. So a removed backup's descendants are removed too.
 *
 * Which WAL goes: on timeline `t`, the segments before `boundary(t)`, the start segment of the oldest kept
 * backup among those on timeline `t` or an earlier one (a backup on timeline T never reads segments of a
 * timeline before T, and reads those of a later timeline only past their branch point, which lies after
 * its own start). A timeline before every kept backup's timeline takes the oldest kept backup's start
 * segment. Timeline history files are always kept, and so is every segment of a timeline with no boundary.
 * WAL at or after every kept backup's start is never touched, so a receiver that stores newer segments
 * without the lock (receive-wal --repo) cannot race with expire. Nothing goes without the segment size.
 *
 * Which history records go (rehearsals of backups no longer kept, failures older than every kept backup):
 * history-retention.ts.
 * @module
 */
import { ConfigError } from '../errors.js';
import { parseSegmentFileName, segmentNumber } from '../wal-segments.js';
import { newestFullBackup, pitrWindow, sortBackups, type PitrWindow } from './catalog.js';
import type { BackupFailureRecord } from './failure-record.js';
import { planHistoryExpiry, type HistoryExpiry } from './history-retention.js';
import type { UnreadableHistoryRecord } from './history.js';
import type { BackupRecord } from './record.js';
import type { RehearsalRecord } from './rehearsal-record.js';
import { walArchiveEnd, walArchiveOf, type StoredWalKey } from './wal-archive.js';
import type { ParsedWalKey, WalTimelineExtent } from './wal-keys.js';

/** What to keep: the newest `retainFull` full backups, or the backups that cover the last `retainWindowMs`. */
export type RetentionPolicy =
  | {
      /** Full backups to keep (at least 1), with every backup taken after the oldest of them. */
      retainFull: number;
    }
  | {
      /**
       * Milliseconds back from `now` that a restore must still reach: the backups that started at or after
       * the newest one that ended before that moment are kept (`--retain-window 7d`).
       */
      retainWindowMs: number;
    };

/** The input of {@link planExpiry}. */
export interface ExpiryInput {
  /** The committed backups (any order). */
  backups: readonly BackupRecord[];
  /**
   * The objects under `wal/`, parsed, with when each was stored (`listWalKeys`; keys this version does not
   * know are left out by the caller).
   */
  walKeys: readonly StoredWalKey[];
  /** `repository.json`'s `walSegmentSize`; without it no WAL is removed. */
  walSegmentSize: number | undefined;
  policy: RetentionPolicy;
  /** The present, for `retainWindowMs`. */
  now: Date;
  /** The rehearsal records (`listRehearsals`, any order); none removed when absent. */
  rehearsals?: readonly RehearsalRecord[] | undefined;
  /** The failed-run records (`listBackupFailures`, any order); none removed when absent. */
  failures?: readonly BackupFailureRecord[] | undefined;
  /** The history records that could not be read (`onUnreadable` of those calls, any order); none removed when absent. */
  unreadableHistory?: readonly UnreadableHistoryRecord[] | undefined;
}

/** The point-in-time window and the WAL archive at one moment of an expiry. */
export interface ExpiryState {
  pitrWindow: PitrWindow;
  /** The archived WAL per timeline (empty without an archive or without a recorded segment size). */
  walArchive: WalTimelineExtent[];
}

/** What {@link planExpiry} decides (with {@link HistoryExpiry}'s history records to remove). */
export interface ExpiryPlan extends HistoryExpiry {
  /** Backups kept, oldest first. */
  keep: BackupRecord[];
  /** Backups to remove, oldest first. */
  remove: BackupRecord[];
  /** WAL objects to remove (segments only), in key order. */
  removeWal: ParsedWalKey[];
  /**
   * The point-in-time window and WAL archive before and after: the window as `pgbb list` computes it, its
   * `to` the end of the archive's newest segment (`null` without archived WAL or a recorded segment size).
   */
  before: ExpiryState;
  after: ExpiryState;
  /** The WAL segment size the plan named segments with (`undefined`: not recorded, no WAL considered). */
  segmentSize: number | undefined;
  /** Why WAL was not considered, when it was not (no segment size recorded). */
  walSkipped?: string | undefined;
}

/** Throws {@link ConfigError} for a policy that would keep nothing or is not a number. */
export function checkPolicy(policy: RetentionPolicy): void {
  if ('retainFull' in policy) {
    if (!Number.isSafeInteger(policy.retainFull) || policy.retainFull < 1) {
      throw new ConfigError(`invalid number of full backups to retain "${policy.retainFull}": it must be a whole number, 1 or more`);
    }
  } else if (!Number.isSafeInteger(policy.retainWindowMs) || policy.retainWindowMs <= 0) {
    throw new ConfigError(`invalid retention window of ${policy.retainWindowMs} ms: it must be more than zero`);
  }
}

/** Where the policy's own choice starts: the id from which every backup is kept (`undefined`: keep all). */
function policyStart(sorted: readonly BackupRecord[], policy: RetentionPolicy, now: Date): string | undefined {
  if ('retainFull' in policy) {
    const fulls = sorted.filter((b) => b.type === 'full');
    return fulls.length <= policy.retainFull ? undefined : fulls[fulls.length - policy.retainFull]!.id;
  }
  const edge = now.getTime() - policy.retainWindowMs;
  let start: BackupRecord | undefined;
  for (const b of sorted) if (b.endTime.getTime() <= edge && (start === undefined || b.endTime > start.endTime)) start = b;
  return start?.id;
}

/** The backups to keep under `policy`, closed under "an incremental keeps its parent". */
function keptIds(sorted: readonly BackupRecord[], policy: RetentionPolicy, now: Date): Set<string> {
  const start = policyStart(sorted, policy, now);
  const keep = new Set(sorted.filter((b) => start === undefined || b.id >= start).map((b) => b.id));
  const newestFull = newestFullBackup(sorted);
  if (newestFull) keep.add(newestFull.id);
  const byId = new Map(sorted.map((b) => [b.id, b]));
  for (const id of [...keep]) {
    for (let b = byId.get(id); b?.parent != null; b = byId.get(b.parent)) keep.add(b.parent);
  }
  return keep;
}

/** `boundary(t)` of the module documentation, per timeline present in the archive. */
function walBoundaries(kept: readonly BackupRecord[], timelines: Iterable<number>, segmentSize: number): Map<number, bigint> {
  const out = new Map<number, bigint>();
  if (kept.length === 0) return out;
  const starts = kept.map((b) => ({ timeline: b.timeline, segno: segmentNumber(b.startLsn, segmentSize) }));
  const lowestTimeline = Math.min(...starts.map((s) => s.timeline));
  for (const t of timelines) {
    const relevant = t < lowestTimeline ? starts : starts.filter((s) => s.timeline <= t);
    if (relevant.length === 0) continue;
    let min = relevant[0]!.segno;
    for (const s of relevant) if (s.segno < min) min = s.segno;
    out.set(t, min);
  }
  return out;
}

/** The WAL segments no kept backup needs (see the module documentation). */
function expiredWal(kept: readonly BackupRecord[], walKeys: readonly ParsedWalKey[], segmentSize: number): ParsedWalKey[] {
  const segments = walKeys.flatMap((k) => {
    const parsed = k.kind === 'segment' ? parseSegmentFileName(k.name, segmentSize) : null;
    return parsed ? [{ key: k, parsed }] : [];
  });
  const boundaries = walBoundaries(kept, new Set(segments.map((s) => s.parsed.timeline)), segmentSize);
  return segments
    .filter((s) => {
      const boundary = boundaries.get(s.parsed.timeline);
      return boundary !== undefined && s.parsed.segno < boundary;
    })
    .map((s) => s.key)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Decide what `expire` removes (see the module documentation for the rules).
 *
 * @example
 * ```ts
 * const plan = planExpiry({ backups, walKeys, walSegmentSize: 16 * 1024 * 1024, policy: { retainFull: 2 }, now: new Date() });
 * for (const b of plan.remove) console.log(`remove ${b.id}`);
 * ```
 */
export function planExpiry(input: ExpiryInput): ExpiryPlan {
  checkPolicy(input.policy);
  const sorted = sortBackups(input.backups);
  const keepIds = keptIds(sorted, input.policy, input.now);
  const keep = sorted.filter((b) => keepIds.has(b.id));
  const remove = sorted.filter((b) => !keepIds.has(b.id));
  const segmentSize = input.walSegmentSize;
  const removeWal = segmentSize === undefined || keep.length === 0 ? [] : expiredWal(keep, input.walKeys, segmentSize);
  const gone = new Set(removeWal.map((k) => k.key));
  const state = (backups: readonly BackupRecord[], keys: readonly StoredWalKey[]): ExpiryState => {
    const wal = segmentSize === undefined ? undefined : walArchiveOf(keys, segmentSize);
    return { pitrWindow: pitrWindow(backups, wal === undefined ? undefined : walArchiveEnd(wal)), walArchive: wal?.timelines ?? [] };
  };
  return {
    keep,
    remove,
    removeWal,
    before: state(sorted, input.walKeys),
    after: state(
      keep,
      input.walKeys.filter((k) => !gone.has(k.key)),
    ),
    segmentSize,
    ...planHistoryExpiry(keep, input.rehearsals ?? [], input.failures ?? [], input.unreadableHistory ?? []),
    ...(segmentSize === undefined ? { walSkipped: 'repository.json records no WAL segment size yet' } : {}),
  };
}
