// RecoveryTargetFinder over records built by hand: where recovery stops for each kind of target, with
// the boundary cases of xlogrecovery.c (inclusive/exclusive, targets before the backup's end, targets
// the WAL never reaches).
import { describe, expect, it } from 'vitest';
import type { Lsn } from '../../../src/lsn.js';
import {
  mainData,
  pgTimestampToDate,
  RecoveryTargetFinder,
  targetWantsBody,
  type RecoveryTarget,
} from '../../../src/recovery/wal-targets.js';
import type { WalRecord } from '../../../src/verify/wal-check.js';

const PG_EPOCH_MS = 946_684_800_000;
const L = (n: number) => BigInt(n) as Lsn;
const pgTime = (d: Date) => BigInt(d.getTime() - PG_EPOCH_MS) * 1000n;

/** A body with only main data (XLR_BLOCK_ID_DATA_SHORT). */
function shortData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([255, data.length]), data]);
}

function commit(start: number, xid: number, at: Date, op = 0x00): WalRecord {
  const d = Buffer.alloc(8);
  d.writeBigInt64LE(pgTime(at));
  const body = shortData(d);
  return { startLsn: BigInt(start) as Lsn, endLsn: BigInt(start + 48) as Lsn, xid, rmid: 1, info: op, totalLength: 24 + body.length, body };
}

function restorePoint(start: number, name: string, at: Date): WalRecord {
  const d = Buffer.alloc(8 + 64);
  d.writeBigInt64LE(pgTime(at));
  d.write(name, 8, 'utf8');
  const body = shortData(d);
  return {
    startLsn: BigInt(start) as Lsn,
    endLsn: BigInt(start + 104) as Lsn,
    xid: 0,
    rmid: 0,
    info: 0x70,
    totalLength: 24 + body.length,
    body,
  };
}

function other(start: number): WalRecord {
  return {
    startLsn: BigInt(start) as Lsn,
    endLsn: BigInt(start + 64) as Lsn,
    xid: 700,
    rmid: 10,
    info: 0,
    totalLength: 60,
    body: undefined,
  };
}

const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s));
const END = L(0x1000);

/** Records after the backup's end: three commits, a restore point between the second and third. */
const WAL: WalRecord[] = [
  commit(0x800, 500, t(0)), // during the backup
  other(0x1100),
  commit(0x2000, 501, t(10)),
  commit(0x3000, 502, t(20)),
  restorePoint(0x3800, 'before-third', t(25)),
  commit(0x4000, 503, t(30), 0x20), // an abort
  commit(0x5000, 504, t(40)),
];

function run(target: RecoveryTarget, inclusive = true, wal = WAL) {
  const f = new RecoveryTargetFinder(target, { consistentAt: END, inclusive, major: 17 });
  for (const r of wal) {
    f.record(r);
    if (f.found) break;
  }
  return { finder: f, result: f.resolve({ lsn: L(0x6000) }) };
}

describe('record bodies', () => {
  it('finds the main data after block references', () => {
    const main = Buffer.from([1, 2, 3, 4]);
    // Block 0: fork_flags 0 (not SAME_REL) -> RelFileLocator (12) + BlockNumber (4); data_length 0.
    const block = Buffer.concat([Buffer.from([0, 0x00, 0, 0]), Buffer.alloc(16)]);
    const body = Buffer.concat([block, Buffer.from([255, main.length]), main]);
    expect(mainData(body, 17)).toEqual(main);
    const long = Buffer.alloc(5);
    long[0] = 254;
    long.writeUInt32LE(main.length, 1);
    expect(mainData(Buffer.concat([long, main]), 15)).toEqual(main);
  });

  it('returns undefined for a malformed body and an empty buffer for none', () => {
    expect(mainData(Buffer.from([100]), 17)).toBeUndefined();
    expect(mainData(Buffer.from([255, 9, 1]), 17)).toBeUndefined();
    expect(mainData(Buffer.alloc(0), 17)).toEqual(Buffer.alloc(0));
  });

  it('asks for commit, abort and restore point bodies only', () => {
    expect(targetWantsBody(1, 0x00)).toBe(true);
    expect(targetWantsBody(1, 0x20)).toBe(true);
    expect(targetWantsBody(1, 0x10)).toBe(false); // XLOG_XACT_PREPARE
    expect(targetWantsBody(0, 0x70)).toBe(true);
    expect(targetWantsBody(0, 0x40)).toBe(false); // XLOG_SWITCH
    expect(targetWantsBody(10, 0x00)).toBe(false);
  });

  it('converts PostgreSQL timestamps', () => {
    expect(pgTimestampToDate(0n).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(pgTimestampToDate(pgTime(t(7))).getTime()).toBe(t(7).getTime());
  });
});

describe('RecoveryTargetFinder', () => {
  it('LSN: inclusive stops after the record that ends past it, exclusive before the one starting at it', () => {
    expect(run({ kind: 'lsn', lsn: L(0x3010) }).result).toMatchObject({ reached: true, lsn: 0x3010n });
    const f = new RecoveryTargetFinder({ kind: 'lsn', lsn: L(0x3000) }, { consistentAt: END, inclusive: false, major: 17 });
    f.record(WAL[2]!);
    expect(f.found).toBe(false);
    f.record(WAL[3]!);
    expect(f.found).toBe(true);
  });

  it('LSN before the backup end is refused at once', () => {
    const { finder, result } = run({ kind: 'lsn', lsn: L(0x900) });
    expect(finder.found).toBe(true);
    expect(result).toMatchObject({ reached: false });
    if (!result.reached) expect(result.why).toMatch(/before the end of the backup \(0\/1000\)/);
  });

  it('LSN beyond the WAL names where it ends', () => {
    const r = new RecoveryTargetFinder({ kind: 'lsn', lsn: L(0x9000) }, { consistentAt: END, major: 17 });
    for (const rec of WAL) r.record(rec);
    const res = r.resolve({ lsn: L(0x6000), missing: '000000010000000000000002' });
    expect(res).toMatchObject({ reached: false });
    if (!res.reached)
      expect(res.why).toMatch(/0\/9000 is beyond the WAL: the archive ends at 0\/6000 \(000000010000000000000002 is missing\)/);
  });

  it('name: stops after the restore point record, inclusive or not', () => {
    for (const inclusive of [true, false]) {
      const { result } = run({ kind: 'name', name: 'before-third' }, inclusive);
      expect(result).toMatchObject({ reached: true, lsn: BigInt(0x3800 + 104) });
    }
    const { result } = run({ kind: 'name', name: 'nope' });
    expect(result).toMatchObject({ reached: false });
    if (!result.reached) expect(result.why).toMatch(/no restore point named "nope"/);
  });

  it('name: a restore point before the backup end is refused', () => {
    const { result } = run({ kind: 'name', name: 'early' }, true, [restorePoint(0x400, 'early', t(0)), ...WAL]);
    expect(result).toMatchObject({ reached: false });
    if (!result.reached) expect(result.why).toMatch(/before the end of the backup/);
  });

  it('xid: after its commit (inclusive) or before it (exclusive); aborts count; earlier ones refused', () => {
    expect(run({ kind: 'xid', xid: 502 }).result).toMatchObject({ reached: true, lsn: BigInt(0x3000 + 48) });
    expect(run({ kind: 'xid', xid: 502 }, false).result).toMatchObject({ reached: true, lsn: 0x3000n });
    const aborted = run({ kind: 'xid', xid: 503 }).result;
    expect(aborted).toMatchObject({ reached: true });
    if (aborted.reached) expect(aborted.detail).toMatch(/abort of transaction 503/);
    const early = run({ kind: 'xid', xid: 500 }).result;
    expect(early).toMatchObject({ reached: false });
    const missing = run({ kind: 'xid', xid: 999 }).result;
    expect(missing).toMatchObject({ reached: false });
    if (!missing.reached) expect(missing.why).toMatch(/newest reachable commit is transaction 504 at 2026-01-01T12:00:40.000Z/);
  });

  it('time: stops before the first transaction ending after it, naming the last commit replayed', () => {
    const r = run({ kind: 'time', time: t(15) }).result;
    expect(r).toMatchObject({ reached: true, lsn: 0x3000n, commitTime: t(10) });
    if (r.reached) expect(r.detail).toMatch(/transaction 501/);
    // Exclusive: a commit exactly at the target time stops recovery before it.
    expect(run({ kind: 'time', time: t(20) }, false).result).toMatchObject({ reached: true, lsn: 0x3000n });
    expect(run({ kind: 'time', time: t(20) }, true).result).toMatchObject({ reached: true, lsn: 0x4000n });
  });

  it('time: before the backup end, or after the newest commit, is refused', () => {
    const early = run({ kind: 'time', time: new Date(t(0).getTime() - 1000) }).result;
    expect(early).toMatchObject({ reached: false });
    if (!early.reached) expect(early.why).toMatch(/before the end of the backup/);
    const late = run({ kind: 'time', time: t(50) }).result;
    expect(late).toMatchObject({ reached: false });
    if (!late.reached) expect(late.why).toMatch(/newest reachable commit is transaction 504/);
  });

  it('immediate: the end of the backup once a record reaches it', () => {
    expect(run({ kind: 'immediate' }).result).toMatchObject({ reached: true, lsn: END });
    const f = new RecoveryTargetFinder({ kind: 'immediate' }, { consistentAt: END, major: 17 });
    f.record(WAL[0]!);
    expect(f.resolve({ lsn: L(0x900) })).toMatchObject({ reached: false });
  });
});
