/**
 * Recovery targets resolved against the WAL itself, the way the startup process will meet them
 * (`recoveryStopsBefore` / `recoveryStopsAfter` in xlogrecovery.c): the restore point record of a
 * `--target-name`, the commit or abort record of a `--target-xid`, the first commit after a
 * `--target-time`. Knowing the LSN before any file is written lets a restore refuse a target the archive
 * cannot reach, instead of a recovery that ends early and promotes with less data.
 * Pure: records come from {@link WalRangeChecker}'s `onRecord`.
 * @module
 */
import { formatLsn, type Lsn } from '../lsn.js';
import type { WalRecord } from '../verify/wal-check.js';

/** A recovery target, as `recovery_target_*` names them. */
export type RecoveryTarget =
  | { kind: 'lsn'; lsn: Lsn }
  | { kind: 'name'; name: string }
  /**
   * `time` to the millisecond, `microsecond` (0..999) the rest: commit timestamps are microseconds, and
   * a target taken from `clock_timestamp()` must compare with them as PostgreSQL does.
   */
  | { kind: 'time'; time: Date; microsecond?: number }
  | { kind: 'xid'; xid: number }
  | { kind: 'immediate' };

// Resource managers and record kinds (rmgrlist.h, pg_control.h, xact.h).
const RM_XLOG_ID = 0;
const RM_XACT_ID = 1;
const XLOG_RESTORE_POINT = 0x70;
const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
/** MAXFNAMELEN: the size of `xl_restore_point.rp_name`. */
const RESTORE_POINT_NAME_BYTES = 64;
/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC). */
const PG_EPOCH_US = 946_684_800_000_000n;

// Block reference headers of a record body (xlogrecord.h).
const XLR_MAX_BLOCK_ID = 32;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const XLR_BLOCK_ID_DATA_LONG = 254;
const XLR_BLOCK_ID_ORIGIN = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID = 252;
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_SAME_REL = 0x80;
const BKPIMAGE_HAS_HOLE = 0x01;

/** Whether the finder needs a record's body. */
export function targetWantsBody(rmid: number, info: number): boolean {
  if (rmid === RM_XLOG_ID) return (info & 0xf0) === XLOG_RESTORE_POINT;
  return rmid === RM_XACT_ID && isEnd(info);
}

function isEnd(info: number): boolean {
  const op = info & XLOG_XACT_OPMASK;
  return op === XLOG_XACT_COMMIT || op === XLOG_XACT_ABORT || op === XLOG_XACT_COMMIT_PREPARED || op === XLOG_XACT_ABORT_PREPARED;
}

/**
 * The main data of a record body: the last `main_data_len` bytes, after the block references, which are
 * walked only to find that length. `undefined` when the body is malformed.
 */
export function mainData(body: Buffer, major: number): Buffer | undefined {
  let pos = 0;
  while (pos < body.length) {
    const id = body[pos]!;
    if (id === XLR_BLOCK_ID_DATA_SHORT) {
      const len = body[pos + 1];
      return len === undefined || len > body.length ? undefined : body.subarray(body.length - len);
    }
    if (id === XLR_BLOCK_ID_DATA_LONG) {
      if (pos + 5 > body.length) return undefined;
      const len = body.readUInt32LE(pos + 1);
      return len > body.length ? undefined : body.subarray(body.length - len);
    }
    if (id === XLR_BLOCK_ID_ORIGIN) pos += 3;
    else if (id === XLR_BLOCK_ID_TOPLEVEL_XID) pos += 5;
    else if (id <= XLR_MAX_BLOCK_ID) {
      if (pos + 4 > body.length) return undefined;
      const forkFlags = body[pos + 1]!;
      pos += 4; // id, fork_flags, data_length
      if (forkFlags & BKPBLOCK_HAS_IMAGE) {
        if (pos + 5 > body.length) return undefined;
        const bimgInfo = body[pos + 4]!;
        pos += 5; // length, hole_offset, bimg_info
        // 13/14 flag a compressed image with 0x02; 15+ with one bit per method (pglz 0x04, lz4 0x08, zstd 0x10).
        const compressed = major >= 15 ? (bimgInfo & 0x1c) !== 0 : (bimgInfo & 0x02) !== 0;
        if (bimgInfo & BKPIMAGE_HAS_HOLE && compressed) pos += 2;
      }
      if (!(forkFlags & BKPBLOCK_SAME_REL)) pos += 12; // RelFileNode / RelFileLocator
      pos += 4; // BlockNumber
    } else return undefined;
  }
  return Buffer.alloc(0); // no main data
}

/** A target time as PostgreSQL's timestamp (microseconds since 2000-01-01). */
export function targetTimestamp(t: { time: Date; microsecond?: number }): bigint {
  return BigInt(t.time.getTime()) * 1000n + BigInt(t.microsecond ?? 0) - PG_EPOCH_US;
}

/** A timestamp of PostgreSQL's (microseconds since 2000-01-01) as a Date (millisecond precision). */
export function pgTimestampToDate(us: bigint): Date {
  return new Date(Number((us + PG_EPOCH_US) / 1000n));
}

/** What the scan found for a target. */
export type TargetResolution =
  | {
      reached: true;
      /** The LSN recovery will stop at: the end of the record it stops after, or the start of the one it stops before. */
      lsn: Lsn;
      /** The record that decides it, in words (for the report). */
      detail: string;
      /** The commit time of the deciding transaction, when there is one. */
      commitTime?: Date;
    }
  | { reached: false; why: string };

/**
 * Watches records in WAL order (from the backup's start) and decides where recovery will stop for one
 * target. Feed {@link RecoveryTargetFinder.record} until {@link RecoveryTargetFinder.found}, then read
 * {@link RecoveryTargetFinder.resolve} with where the readable WAL ended.
 */
export class RecoveryTargetFinder {
  readonly #target: RecoveryTarget;
  readonly #inclusive: boolean;
  readonly #consistentAt: Lsn;
  readonly #major: number;
  #found: TargetResolution | undefined;
  /** The newest commit seen (for "the newest reachable commit time" when a time target is not reached). */
  #lastCommit: { lsn: Lsn; time: Date; xid: number } | undefined;
  #lastEnd: Lsn | undefined;

  /**
   * @param options `consistentAt`: the backup's end LSN (recovery is not consistent before it, and a
   *   target there or earlier cannot be met); `inclusive`: `recovery_target_inclusive` (default true);
   *   `major`: the server major (record layouts differ a little).
   */
  constructor(target: RecoveryTarget, options: { consistentAt: Lsn; inclusive?: boolean; major: number }) {
    this.#target = target;
    this.#inclusive = options.inclusive ?? true;
    this.#consistentAt = options.consistentAt;
    this.#major = options.major;
    if (target.kind === 'lsn' && target.lsn < options.consistentAt) {
      this.#found = {
        reached: false,
        why: `the target LSN ${formatLsn(target.lsn)} is before the end of the backup (${formatLsn(options.consistentAt)})`,
      };
    }
  }

  /** True once the target's record was found (or the target shown impossible): no more WAL is needed. */
  get found(): boolean {
    return this.#found !== undefined;
  }

  /** The newest commit seen so far. */
  get lastCommit(): { lsn: Lsn; time: Date; xid: number } | undefined {
    return this.#lastCommit;
  }

  /** Look at the next record. */
  record(r: WalRecord): void {
    if (this.#found) return;
    this.#lastEnd = r.endLsn;
    const t = this.#target;
    if (t.kind === 'immediate') {
      if (r.endLsn >= this.#consistentAt)
        this.#found = { reached: true, lsn: this.#consistentAt, detail: 'the end of the backup (consistency)' };
      return;
    }
    if (t.kind === 'lsn') {
      // recoveryStopsBefore: exclusive stops before a record starting at or past the target;
      // recoveryStopsAfter: inclusive stops after the record that ends past it.
      if (this.#inclusive ? r.endLsn > t.lsn : r.startLsn >= t.lsn)
        this.#found = { reached: true, lsn: t.lsn, detail: `LSN ${formatLsn(t.lsn)}` };
      return;
    }
    if (r.rmid === RM_XLOG_ID && (r.info & 0xf0) === XLOG_RESTORE_POINT) {
      if (t.kind !== 'name' || !r.body) return;
      const data = mainData(r.body, this.#major);
      if (!data || data.length < 8 + 1) return;
      const nameBytes = data.subarray(8, 8 + RESTORE_POINT_NAME_BYTES);
      const nul = nameBytes.indexOf(0);
      const name = nameBytes.subarray(0, nul < 0 ? nameBytes.length : nul).toString('utf8');
      if (name !== t.name) return;
      const time = pgTimestampToDate(data.readBigInt64LE(0));
      if (r.endLsn <= this.#consistentAt) {
        this.#found = {
          reached: false,
          why: `the restore point "${t.name}" (${formatLsn(r.startLsn)}, ${time.toISOString()}) is before the end of the backup (${formatLsn(this.#consistentAt)})`,
        };
        return;
      }
      // Restore points stop after the record, inclusive or not.
      this.#found = { reached: true, lsn: r.endLsn, detail: `restore point "${t.name}" created at ${time.toISOString()}` };
      return;
    }
    if (r.rmid !== RM_XACT_ID || !isEnd(r.info) || !r.body) return;
    const data = mainData(r.body, this.#major);
    if (!data || data.length < 8) return;
    const timestamp = data.readBigInt64LE(0);
    const time = pgTimestampToDate(timestamp);
    const op = r.info & XLOG_XACT_OPMASK;
    const commit = op === XLOG_XACT_COMMIT || op === XLOG_XACT_COMMIT_PREPARED;
    if (t.kind === 'xid') {
      if (r.xid !== t.xid) {
        if (commit) this.#lastCommit = { lsn: r.endLsn, time, xid: r.xid };
        return;
      }
      const what = `${commit ? 'commit' : 'abort'} of transaction ${t.xid} at ${time.toISOString()}`;
      if (r.endLsn <= this.#consistentAt) {
        this.#found = { reached: false, why: `the ${what} is before the end of the backup (${formatLsn(this.#consistentAt)})` };
      } else {
        this.#found = { reached: true, lsn: this.#inclusive ? r.endLsn : r.startLsn, detail: what, commitTime: time };
      }
      return;
    }
    if (t.kind === 'time') {
      const target = targetTimestamp(t);
      const past = this.#inclusive ? timestamp > target : timestamp >= target;
      if (past) {
        if (r.startLsn < this.#consistentAt) {
          this.#found = {
            reached: false,
            why: `the target time ${t.time.toISOString()} is before the end of the backup: a transaction ended after it at ${time.toISOString()} while the backup was taken`,
          };
          return;
        }
        const before = this.#lastCommit;
        this.#found = {
          reached: true,
          lsn: r.startLsn,
          detail: before
            ? `before the ${commit ? 'commit' : 'abort'} at ${time.toISOString()}; the last commit replayed is transaction ${before.xid} at ${before.time.toISOString()}`
            : `before the ${commit ? 'commit' : 'abort'} at ${time.toISOString()}`,
          ...(before ? { commitTime: before.time } : {}),
        };
        return;
      }
      if (commit) this.#lastCommit = { lsn: r.endLsn, time, xid: r.xid };
    }
  }

  /**
   * The answer, once the WAL was read as far as it goes. `endOfWal` is where readable WAL ended and
   * `missing` names what stopped it (a segment not in the archive), for the refusal.
   */
  resolve(endOfWal: { lsn: Lsn; missing?: string | undefined }): TargetResolution {
    if (this.#found) return this.#found;
    const t = this.#target;
    const where = endOfWal.missing
      ? `the archive ends at ${formatLsn(endOfWal.lsn)} (${endOfWal.missing} is missing)`
      : `the WAL ends at ${formatLsn(endOfWal.lsn)}`;
    const newest = this.#lastCommit
      ? `; the newest reachable commit is transaction ${this.#lastCommit.xid} at ${this.#lastCommit.time.toISOString()}`
      : '; no commit is reachable';
    switch (t.kind) {
      case 'immediate':
        return { reached: false, why: `${where}, before the end of the backup (${formatLsn(this.#consistentAt)})` };
      case 'lsn':
        return { reached: false, why: `the target LSN ${formatLsn(t.lsn)} is beyond the WAL: ${where}` };
      case 'name':
        return { reached: false, why: `no restore point named "${t.name}" in the WAL after the backup: ${where}` };
      case 'xid':
        return { reached: false, why: `transaction ${t.xid} does not end in the WAL after the backup: ${where}${newest}` };
      case 'time':
        return {
          reached: false,
          why: `no transaction ends after ${t.time.toISOString()} in the WAL, so recovery could not tell it reached the target: ${where}${newest}`,
        };
    }
  }

  /** The end of the last record seen. */
  get lastRecordEnd(): Lsn | undefined {
    return this.#lastEnd;
  }
}
