import { describe, expect, it } from 'vitest';
import { compareLsn, formatLsn, lsn, lsnAdd, lsnDiff, lsnSubtract, parseLsn } from '../../src/lsn.js';
import {
  isValidWalSegmentSize,
  parseSegmentFileName,
  parseWalSegmentSize,
  segmentFileName,
  segmentFileNameForLsn,
  segmentNumber,
  segmentOffset,
  segmentStartLsn,
  segmentStartOf,
  timelineHistoryFileName,
} from '../../src/wal/segments.js';

describe('Lsn', () => {
  it('parses padded and unpadded forms', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n);
    expect(parseLsn('0/016B3748')).toBe(0x16b3748n);
    expect(parseLsn('A/0')).toBe(0xa00000000n);
    expect(parseLsn('ffffffff/ffffffff')).toBe((1n << 64n) - 1n);
  });
  it('rejects garbage with ConfigError or ProtocolError', () => {
    for (const bad of ['', '0', '0/', '/0', '0/123456789', 'g/0', '0/0/0', ' 0/0', '-1/0']) {
      expect(() => parseLsn(bad)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    }
    expect(() => parseLsn('x', 'server')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
  });
  it('formats like PostgreSQL 13–18 by default, zero-padded on request', () => {
    expect(formatLsn(lsn(0x16b3748n))).toBe('0/16B3748');
    expect(formatLsn(lsn(0x16b3748n), { padded: true })).toBe('0/016B3748');
    expect(formatLsn(lsn(0x1_0000_0000n))).toBe('1/0');
    expect(formatLsn(lsn(0x1_0000_0000n), { padded: true })).toBe('1/00000000');
    expect(formatLsn(parseLsn('FF/ABCDEF01'))).toBe('FF/ABCDEF01');
  });
  it('compares and does arithmetic', () => {
    const a = parseLsn('1/0');
    const b = parseLsn('0/FFFFFFFF');
    expect(compareLsn(a, b)).toBe(1);
    expect(compareLsn(b, a)).toBe(-1);
    expect(compareLsn(a, a)).toBe(0);
    expect(lsnAdd(b, 1)).toBe(a);
    expect(lsnSubtract(a, 1n)).toBe(b);
    expect(lsnDiff(a, b)).toBe(1n);
    expect(() => lsnSubtract(lsn(0), 1)).toThrow(RangeError);
    expect(() => lsn(1n << 64n)).toThrow(RangeError);
  });
});

describe('WAL segments', () => {
  const MB = 1024 * 1024;
  it('validates sizes', () => {
    expect(isValidWalSegmentSize(16 * MB)).toBe(true);
    expect(isValidWalSegmentSize(MB)).toBe(true);
    expect(isValidWalSegmentSize(1024 * MB)).toBe(true);
    expect(isValidWalSegmentSize(2048 * MB)).toBe(false);
    expect(isValidWalSegmentSize(MB / 2)).toBe(false);
    expect(isValidWalSegmentSize(3 * MB)).toBe(false);
  });
  it('parses SHOW wal_segment_size output', () => {
    expect(parseWalSegmentSize('16MB')).toBe(16 * MB);
    expect(parseWalSegmentSize('1GB')).toBe(1024 * MB);
    expect(parseWalSegmentSize('1024kB')).toBe(MB);
    expect(parseWalSegmentSize('16777216')).toBe(16 * MB);
    expect(() => parseWalSegmentSize('3MB')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
    expect(() => parseWalSegmentSize('16 XB')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
  });
  it('names segments as XLogFileName does, for every size', () => {
    expect(segmentFileName(1, 1n, 16 * MB)).toBe('000000010000000000000001');
    expect(segmentFileNameForLsn(1, parseLsn('0/16B3748'), 16 * MB)).toBe('000000010000000000000001');
    expect(segmentFileNameForLsn(2, parseLsn('1/FF000000'), 16 * MB)).toBe('0000000200000001000000FF');
    expect(segmentFileNameForLsn(0x1a, parseLsn('3/40000000'), 1024 * MB)).toBe('0000001A0000000300000001');
    expect(segmentFileNameForLsn(1, parseLsn('0/FFF00000'), MB)).toBe('000000010000000000000FFF');
    for (let size = MB; size <= 1024 * MB; size *= 2) {
      for (const pos of [0n, 123456789n, 0x5_1234_5678n, (1n << 40n) + 17n]) {
        const segno = segmentNumber(pos, size);
        const name = segmentFileName(7, segno, size);
        expect(parseSegmentFileName(name, size)).toEqual({ timeline: 7, segno });
        expect(segmentStartLsn(segno, size) + BigInt(segmentOffset(pos, size))).toBe(pos);
        expect(segmentStartOf(pos, size)).toBe(segmentStartLsn(segno, size));
      }
    }
  });
  it('rejects names that are not segments', () => {
    expect(parseSegmentFileName('00000001000000000000000', 16 * MB)).toBeNull();
    expect(parseSegmentFileName('000000010000000000000100', 16 * MB)).toBeNull(); // low part > FF
    expect(parseSegmentFileName('00000001000000000000000g', 16 * MB)).toBeNull();
    expect(() => segmentNumber(0n, 3 * MB)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
  });
  it('names history files', () => {
    expect(timelineHistoryFileName(2)).toBe('00000002.history');
  });
});
