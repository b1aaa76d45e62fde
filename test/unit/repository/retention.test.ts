// The retention policy of `expire` at its edges: the newest full backup always stays, an incremental is
// never orphaned, WAL goes only below the oldest kept backup's start (per timeline, history files kept),
// and the window after expiry has no hole.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { lsn } from '../../../src/lsn.js';
import type { BackupRecord } from '../../../src/repository/record.js';
import { planExpiry, type RetentionPolicy } from '../../../src/repository/retention.js';
import type { StoredWalKey } from '../../../src/repository/wal-archive.js';
import { parseWalKey, walHistoryKey, walSegmentKey, type ParsedWalKey } from '../../../src/repository/wal-keys.js';
import { segmentFileName } from '../../../src/wal-segments.js';
import { backupRecord } from './fixtures.js';

const SEG = 16 * 1024 * 1024;
const DAY = 86_400_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');

/** A backup started on day `day`, ending an hour later, starting in segment `segno` of `timeline`. */
function backup(day: number, segno: number, opts: { parent?: BackupRecord; timeline?: number } = {}): BackupRecord {
  const start = new Date(T0 + day * DAY);
  const stamp = start.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('Z', '');
  return backupRecord({
    id: `${stamp}${opts.parent ? 'I' : 'F'}`,
    parent: opts.parent?.id ?? null,
    startTime: start,
    endTime: new Date(start.getTime() + 3_600_000),
    startLsn: lsn(BigInt(segno) * BigInt(SEG) + 40n),
    endLsn: lsn(BigInt(segno) * BigInt(SEG) + 4096n),
    timeline: opts.timeline ?? 1,
  });
}

/** When segment `n` was stored: `n` minutes after T0. */
const storedAt = (n: number) => new Date(T0 + n * 60_000);

/** Segment keys `first..last` (inclusive) of `timeline`, each stored at {@link storedAt}. */
function segments(timeline: number, first: number, last: number, compression: 'none' | 'gzip' = 'none'): StoredWalKey[] {
  const out: StoredWalKey[] = [];
  for (let n = first; n <= last; n++) {
    out.push({ ...parseWalKey(walSegmentKey(segmentFileName(timeline, BigInt(n), SEG), compression))!, storedAt: storedAt(n) });
  }
  return out;
}

const history = (timeline: number): StoredWalKey => ({ ...parseWalKey(walHistoryKey(timeline))!, storedAt: new Date(T0) });

function plan(backups: BackupRecord[], policy: RetentionPolicy, walKeys: StoredWalKey[] = [], nowDay = 30) {
  return planExpiry({ backups, walKeys, walSegmentSize: SEG, policy, now: new Date(T0 + nowDay * DAY) });
}

const ids = (records: readonly BackupRecord[]) => records.map((r) => r.id);
const names = (keys: readonly ParsedWalKey[]) => keys.map((k) => k.name);

describe('planExpiry: backups', () => {
  it('--retain-full 1 removes the older full backups and keeps the newest', () => {
    const f1 = backup(0, 2);
    const f2 = backup(1, 5);
    const f3 = backup(2, 9);
    const p = plan([f3, f1, f2], { retainFull: 1 });
    expect(ids(p.keep)).toEqual([f3.id]);
    expect(ids(p.remove)).toEqual([f1.id, f2.id]);
  });

  it('keeps everything when there are no more full backups than asked', () => {
    const f1 = backup(0, 2);
    const i1 = backup(1, 4, { parent: f1 });
    expect(ids(plan([f1, i1], { retainFull: 1 }).remove)).toEqual([]);
    expect(ids(plan([f1, i1], { retainFull: 5 }).remove)).toEqual([]);
    expect(plan([], { retainFull: 1 })).toMatchObject({ keep: [], remove: [], removeWal: [] });
  });

  it('keeps the incrementals taken after the oldest kept full backup, removes those of a removed chain', () => {
    const f1 = backup(0, 2);
    const i1 = backup(1, 3, { parent: f1 });
    const f2 = backup(2, 5);
    const i2 = backup(3, 6, { parent: f2 });
    const i3 = backup(4, 7, { parent: i2 });
    const p = plan([f1, i1, f2, i2, i3], { retainFull: 1 });
    expect(ids(p.keep)).toEqual([f2.id, i2.id, i3.id]);
    expect(ids(p.remove)).toEqual([f1.id, i1.id]);
  });

  it('never orphans an incremental: a kept incremental keeps its whole chain, even an older full backup', () => {
    const f1 = backup(0, 2);
    const i1 = backup(1, 3, { parent: f1 });
    const f2 = backup(2, 5);
    // Taken after f2, but against f1's chain (--incremental-from).
    const i2 = backup(3, 6, { parent: i1 });
    const p = plan([f1, i1, f2, i2], { retainFull: 1 });
    expect(ids(p.keep)).toEqual([f1.id, i1.id, f2.id, i2.id]);
    expect(p.remove).toEqual([]);
    // And whatever is removed takes no kept backup's ancestor with it.
    for (const kept of p.keep) if (kept.parent !== null) expect(ids(p.keep)).toContain(kept.parent);
  });

  it('--retain-window keeps the newest backup that ended before the window and everything after it', () => {
    const f1 = backup(0, 2);
    const f2 = backup(10, 5);
    const i2 = backup(12, 6, { parent: f2 });
    const f3 = backup(25, 9);
    // now = day 30, window 7 days: the edge is day 23; i2 (day 12) is the newest backup that ended before it.
    const p = plan([f1, f2, i2, f3], { retainWindowMs: 7 * DAY });
    expect(ids(p.keep)).toEqual([f2.id, i2.id, f3.id]);
    expect(ids(p.remove)).toEqual([f1.id]);
  });

  it('--retain-window keeps everything when no backup ended before the window', () => {
    const f1 = backup(25, 2);
    const f2 = backup(26, 5);
    expect(plan([f1, f2], { retainWindowMs: 30 * DAY }).remove).toEqual([]);
  });

  it('never removes the newest full backup, whatever the window', () => {
    const f1 = backup(0, 2);
    const f2 = backup(1, 5);
    const i2 = backup(2, 6, { parent: f2 });
    const p = plan([f1, f2, i2], { retainWindowMs: 1000 });
    expect(ids(p.keep)).toEqual([f2.id, i2.id]);
    expect(ids(p.remove)).toEqual([f1.id]);
  });

  it('refuses a policy that keeps nothing', () => {
    expect(() => plan([], { retainFull: 0 })).toThrow(ConfigError);
    expect(() => plan([], { retainFull: 1.5 })).toThrow(ConfigError);
    expect(() => plan([], { retainWindowMs: 0 })).toThrow(ConfigError);
  });
});

describe('planExpiry: WAL', () => {
  it('removes only the segments before the oldest kept backup start segment, whatever their compression', () => {
    const f1 = backup(0, 2);
    const f2 = backup(1, 5);
    const wal = [...segments(1, 1, 3), ...segments(1, 4, 8, 'gzip')];
    const p = plan([f1, f2], { retainFull: 1 }, wal);
    expect(names(p.removeWal)).toEqual([1, 2, 3, 4].map((n) => segmentFileName(1, BigInt(n), SEG)));
    expect(p.removeWal[3]!.key.endsWith('.gz')).toBe(true);
    // The kept backup's start segment and everything after it stay: the window has no hole.
    expect(p.after.walArchive).toEqual([
      {
        timeline: 1,
        firstSegment: segmentFileName(1, 5n, SEG),
        lastSegment: segmentFileName(1, 8n, SEG),
        segments: 4,
        gaps: [],
        history: false,
      },
    ]);
    expect(p.before.pitrWindow.from?.lsn).toBe(f1.endLsn);
    expect(p.after.pitrWindow.from?.lsn).toBe(f2.endLsn);
    // Both windows end where the archive does, as pgbb list says: the newest segment's end, when it was stored.
    const archiveEnd = { lsn: lsn(9n * BigInt(SEG)), timeline: 1, time: storedAt(8) };
    expect(p.before.pitrWindow.to).toEqual(archiveEnd);
    expect(p.after.pitrWindow.to).toEqual(archiveEnd);
  });

  it('removes the WAL below the oldest kept backup even when no backup is removed', () => {
    const f1 = backup(0, 4);
    const p = plan([f1], { retainFull: 1 }, segments(1, 1, 6));
    expect(p.remove).toEqual([]);
    expect(names(p.removeWal)).toEqual([1, 2, 3].map((n) => segmentFileName(1, BigInt(n), SEG)));
  });

  it('keeps history files, and cuts each timeline at the oldest kept backup on it or before it', () => {
    const f1 = backup(0, 2);
    // Promoted at segment 6: timeline 2 starts there; the kept backup is on timeline 2 at segment 8.
    const f2 = backup(1, 8, { timeline: 2 });
    const wal = [...segments(1, 1, 6), history(2), ...segments(2, 6, 9), history(3), ...segments(3, 9, 10)];
    const p = plan([f1, f2], { retainFull: 1 }, wal);
    expect(names(p.removeWal)).toEqual([
      ...[1, 2, 3, 4, 5, 6].map((n) => segmentFileName(1, BigInt(n), SEG)),
      ...[6, 7].map((n) => segmentFileName(2, BigInt(n), SEG)),
    ]);
    expect(p.removeWal.every((k) => k.kind === 'segment')).toBe(true);
    // Timeline 3 branched after the kept backup: its segments at and after segment 8 stay.
    expect(p.after.walArchive.find((e) => e.timeline === 3)).toMatchObject({ segments: 2, history: true });
  });

  it('a kept backup on an earlier timeline protects the later timelines from its own start', () => {
    const f1 = backup(0, 3);
    const i1 = backup(1, 9, { parent: f1, timeline: 2 });
    const wal = [...segments(1, 1, 7), ...segments(2, 7, 10)];
    const p = plan([f1, i1], { retainFull: 1 }, wal);
    // Boundary on timeline 1 and 2 is f1's start (segment 3): timeline 2's segments all stay.
    expect(names(p.removeWal)).toEqual([1, 2].map((n) => segmentFileName(1, BigInt(n), SEG)));
  });

  it('never touches segments at or after every kept backup start (a receiver adds only newer ones)', () => {
    const f1 = backup(0, 2);
    const f2 = backup(1, 40);
    const wal = segments(1, 1, 60);
    const p = plan([f1, f2], { retainFull: 1 }, wal);
    const lowestKept = 40n;
    for (const k of p.removeWal) expect(BigInt(`0x${k.name.slice(16)}`) < lowestKept).toBe(true);
    expect(p.removeWal).toHaveLength(39);
  });

  it('removes no WAL without the segment size, and says why', () => {
    const f1 = backup(0, 2);
    const f2 = backup(1, 5);
    const p = planExpiry({
      backups: [f1, f2],
      walKeys: segments(1, 1, 6),
      walSegmentSize: undefined,
      policy: { retainFull: 1 },
      now: new Date(),
    });
    expect(ids(p.remove)).toEqual([f1.id]);
    expect(p.removeWal).toEqual([]);
    expect(p.walSkipped).toMatch(/segment size/);
    // Without the segment size the archive cannot be read: the window has no WAL end.
    expect(p.before.pitrWindow.to).toBeNull();
    expect(p.after.walArchive).toEqual([]);
  });
});
