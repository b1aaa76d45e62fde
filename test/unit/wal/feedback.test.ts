import { describe, expect, it } from 'vitest';
import { lsn } from '../../../src/lsn.js';
import { FeedbackTracker } from '../../../src/wal/feedback.js';

const start = lsn(0x3000000n);

describe('FeedbackTracker', () => {
  it('reports write = received, flush only once a flush resolved, apply = 0', () => {
    const f = new FeedbackTracker({ startLsn: start, statusIntervalMs: 10_000 });
    f.onReceived(lsn(0x3000100n));
    expect(f.take(0)).toEqual({ write: 0x3000100n, flush: 0n, apply: 0n, replyRequested: false });
    f.onFlushed(lsn(0x3000080n));
    const v = f.take(1);
    expect(v.write).toBe(0x3000100n);
    expect(v.flush).toBe(0x3000080n);
    expect(v.apply).toBe(0n);
  });

  it('never reports flush when reportFlush is off (pg_receivewal without a slot)', () => {
    const f = new FeedbackTracker({ startLsn: start, reportFlush: false });
    f.onReceived(lsn(0x3000100n));
    f.onFlushed(lsn(0x3000100n));
    expect(f.take(0).flush).toBe(0n);
    expect(f.take(0).write).toBe(0x3000100n);
  });

  it('positions never move backwards, and a timeline restart keeps the flush position', () => {
    const f = new FeedbackTracker({ startLsn: start });
    f.onReceived(lsn(0x3000200n));
    f.onReceived(lsn(0x3000100n));
    f.onFlushed(lsn(0x3000200n));
    f.onFlushed(lsn(0x3000000n));
    expect(f.received).toBe(0x3000200n);
    expect(f.flushed).toBe(0x3000200n);
    f.restart(lsn(0x3000000n));
    const v = f.take(0);
    expect(v.write).toBe(0x3000000n);
    expect(v.flush).toBe(0x3000200n);
  });

  it('is due every statusIntervalMs after the last update', () => {
    const f = new FeedbackTracker({ startLsn: start, statusIntervalMs: 1000 });
    expect(f.isDue(0)).toBe(true);
    expect(f.msUntilDue(0)).toBe(0);
    f.take(0);
    expect(f.isDue(999)).toBe(false);
    expect(f.msUntilDue(400)).toBe(600);
    expect(f.isDue(1000)).toBe(true);
    expect(f.msUntilDue(1500)).toBe(0);
  });

  it('statusIntervalMs 0 disables the timer, but a requested reply is still due at once', () => {
    const f = new FeedbackTracker({ startLsn: start, statusIntervalMs: 0 });
    expect(f.isDue(0)).toBe(false);
    expect(f.msUntilDue(0)).toBeUndefined();
    expect(f.onKeepalive(false)).toBe(false);
    expect(f.onKeepalive(true)).toBe(true);
    expect(f.replyOwed).toBe(true);
    expect(f.isDue(5)).toBe(true);
    expect(f.msUntilDue(5)).toBe(0);
    f.take(5);
    expect(f.replyOwed).toBe(false);
    expect(f.isDue(6)).toBe(false);
  });

  it('a requested reply makes an update due before the interval elapsed', () => {
    const f = new FeedbackTracker({ startLsn: start, statusIntervalMs: 10_000 });
    f.take(0);
    expect(f.isDue(10)).toBe(false);
    f.onKeepalive(true);
    expect(f.isDue(10)).toBe(true);
  });

  it('rejects a negative interval', () => {
    expect(() => new FeedbackTracker({ startLsn: start, statusIntervalMs: -1 })).toThrow(RangeError);
  });
});
