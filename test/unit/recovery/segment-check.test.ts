import { describe, expect, it } from 'vitest';
import { SegmentPageChecker } from '../../../src/recovery/segment-check.js';
import { splits } from '../helpers/splits.js';

const PAGE = 8192;
const MB = 1024 * 1024;
const MAGIC_15 = 0xd110;

/** A WAL segment of `size` bytes named by `segno` on timeline 1: page headers only, bodies filled with 0x55. */
function segment(segno: bigint, size = MB, { pages = size / PAGE, magic = MAGIC_15, addrShift = 0n } = {}): Buffer {
  const buf = Buffer.alloc(size);
  for (let p = 0; p < pages; p++) {
    const off = p * PAGE;
    buf.fill(0x55, off, off + PAGE);
    buf.writeUInt16LE(magic, off);
    buf.writeUInt16LE(p === 0 ? 0x0002 : 0x0000, off + 2);
    buf.writeUInt32LE(1, off + 4);
    buf.writeBigUInt64LE(segno * BigInt(size) + BigInt(off) + addrShift, off + 8);
    buf.writeUInt32LE(0, off + 16);
    buf.writeUInt32LE(0, off + 20);
    if (p === 0) {
      buf.writeBigUInt64LE(7_000_000_000_000_000_000n, off + 24);
      buf.writeUInt32LE(size, off + 32);
      buf.writeUInt32LE(PAGE, off + 36);
    }
  }
  return buf;
}

// With 1 MB segments there are 4096 per "xlogid": segment 5 is 00000001 00000000 00000005.
const NAME = '000000010000000000000005';

function check(name: string, chunks: Buffer[], partial = false) {
  const c = new SegmentPageChecker(name);
  for (const chunk of chunks) if (c.push(chunk) !== undefined) break;
  return c.finish({ partial });
}

describe('SegmentPageChecker', () => {
  const good = segment(5n);

  it.each(splits(good.subarray(0, 3 * PAGE + 100), { byteByByteMax: 4096 * 8 }))(
    'accepts a partial segment cut mid-page, fed %s',
    (_name, chunks) => {
      const r = check(NAME, chunks, true);
      expect(r).toMatchObject({ segment: { segmentSize: MB, major: 15, bytes: 3 * PAGE + 100, pagesChecked: 4 } });
    },
  );

  it('accepts a complete segment, whole and in odd chunks', () => {
    expect(check(NAME, [good])).toMatchObject({ segment: { segmentSize: MB, pagesChecked: MB / PAGE } });
    const odd: Buffer[] = [];
    for (let i = 0; i < good.length; i += 32_771) odd.push(good.subarray(i, i + 32_771));
    expect(check(NAME, odd)).toMatchObject({ segment: { bytes: MB } });
  });

  it('refuses another segment under this name (page addresses)', () => {
    const r = check('000000010000000000000006', [good]);
    expect(r).toMatchObject({ problem: expect.stringContaining('not segment 000000010000000000000006') });
  });

  it('refuses a complete segment that is too short or too long', () => {
    expect(check(NAME, [good.subarray(0, MB - PAGE)])).toMatchObject({ problem: expect.stringContaining('its segment size is 1048576') });
    expect(check(NAME, [good, Buffer.alloc(10)])).toMatchObject({ problem: expect.stringContaining('longer than its segment size') });
  });

  it('refuses a page whose address is off inside the segment', () => {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(5n * BigInt(MB) + BigInt(7 * PAGE) + 8192n, 7 * PAGE + 8);
    expect(check(NAME, [bad])).toMatchObject({ problem: expect.stringContaining(`offset ${7 * PAGE}`) });
  });

  it('refuses unknown magic, a mixed magic, and no long header', () => {
    expect(check(NAME, [segment(5n, MB, { magic: 0x1234 })])).toMatchObject({
      problem: expect.stringContaining('unknown WAL page magic 0x1234'),
    });
    const mixed = Buffer.from(good);
    mixed.writeUInt16LE(0xd116, 2 * PAGE);
    expect(check(NAME, [mixed])).toMatchObject({ problem: expect.stringContaining('differs from the first page') });
    const short = Buffer.from(good);
    short.writeUInt16LE(0, 2);
    expect(check(NAME, [short])).toMatchObject({ problem: 'the first page has no long header' });
  });

  it('accepts the zero padding of a partial segment but not data after it', () => {
    const padded = segment(5n, MB, { pages: 3 });
    expect(check(NAME, [padded], true)).toMatchObject({ segment: { pagesChecked: 3 } });
    // pg_receivewal pads .partial files to the full size: such a file is complete-sized but zero-tailed.
    expect(check(NAME, [padded], false)).toMatchObject({ segment: { bytes: MB } });
    const after = Buffer.from(padded);
    after[6 * PAGE + 500] = 1;
    expect(check(NAME, [after], true)).toMatchObject({ problem: expect.stringContaining('non-zero bytes after the end of WAL') });
  });

  it('refuses empty and truncated files and non-WAL bytes', () => {
    expect(check(NAME, [], true)).toEqual({ problem: 'empty file' });
    expect(check(NAME, [good.subarray(0, 20)], true)).toMatchObject({ problem: expect.stringContaining('truncated') });
    expect(check(NAME, [Buffer.alloc(PAGE, 0x41)], true)).toMatchObject({ problem: expect.stringContaining('unknown WAL page magic') });
    expect(check(NAME, [Buffer.alloc(PAGE)], true)).toEqual({ problem: 'the first page is empty' });
  });

  it('refuses a name that does not fit the segment size', () => {
    // 1 MB segments: the low part runs 00000000-00000FFF.
    expect(check('000000010000000000001000', [segment(0x1000n)])).toMatchObject({ problem: expect.stringContaining('does not fit') });
    expect(() => new SegmentPageChecker('00000001.history')).toThrow(RangeError);
  });
});
