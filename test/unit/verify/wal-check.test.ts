import { describe, expect, it } from 'vitest';
import { lsn } from '../../../src/lsn.js';
import { majorForPageMagic, WalRangeChecker, XLOG_PAGE_MAGIC, type WalRangeCheckResult } from '../../../src/verify/wal-check.js';
import { splitters } from '../helpers/splits.js';
import { WalFixture } from './wal-fixtures.js';

function check(
  w: WalFixture,
  start: bigint,
  end: bigint,
  o: { split?: (segment: Buffer) => Buffer[]; sysid?: bigint; magic?: number; drop?: bigint } = {},
): WalRangeCheckResult {
  const c = new WalRangeChecker({
    timeline: w.timeline,
    startLsn: lsn(start),
    endLsn: lsn(end),
    segmentSize: w.segmentSize,
    systemIdentifier: o.sysid,
    pageMagic: o.magic,
  });
  for (const segno of c.segments()) {
    if (segno === o.drop) break;
    const buf = w.segments.get(segno)!;
    c.beginSegment(segno);
    for (const chunk of o.split ? o.split(buf) : [buf]) {
      if (c.finished) break;
      c.push(chunk);
    }
    if (c.finished) break;
  }
  return c.result();
}

/** Records of every size class: tiny, page-crossing, multi-page, header split across pages. */
function fixture(): WalFixture {
  const w = new WalFixture({ lead: 1000 });
  const sizes = [26, 90, 8000, 50, 20000, 8150, 3, 500, 70000, 0, 16, 7000];
  for (let k = 0; k < 12; k++) for (const s of sizes) w.append(s);
  return w;
}

describe('WalRangeChecker', () => {
  const w = fixture();
  const start = w.records[0]!.lsn;
  const end = w.records[w.records.length - 1]!.end;

  it('knows the page magic of each major', () => {
    expect(XLOG_PAGE_MAGIC[15]).toBe(0xd110);
    expect(XLOG_PAGE_MAGIC[18]).toBe(0xd118);
    expect(majorForPageMagic(0xd116)).toBe(17);
    expect(majorForPageMagic(0x1234)).toBeUndefined();
  });

  it('verifies every record CRC across pages and segments, fed whole, in 321-byte chunks and at random splits', () => {
    expect(w.segments.size).toBeGreaterThan(1);
    const whole = check(w, start, end, { sysid: w.systemIdentifier });
    expect(whole).toMatchObject({ ok: true, records: w.records.length, major: 15 });
    // Byte by byte over these segments is slow: the next test does it over a few pages.
    for (const [how, split] of splitters({ byteByByteMax: 0, maxChunk: 5000 })) expect(check(w, start, end, { split }), how).toEqual(whole);
  });

  it('gives the same result fed byte by byte (a few pages, a page-crossing record, a header split over pages)', () => {
    const small = new WalFixture({ lead: 8100 });
    for (const size of [10, 9000, 8130, 40]) small.append(size);
    const a = small.records[0]!.lsn;
    const b = small.records.at(-1)!.end;
    const whole = check(small, a, b);
    expect(whole).toMatchObject({ ok: true, records: 4 });
    for (const [how, split] of splitters()) expect(check(small, a, b, { split }), how).toEqual(whole);
  });

  it('starts mid-WAL and stops at the end LSN like pg_waldump --start/--end', () => {
    const mid = w.records[10]!;
    const last = w.records[40]!;
    expect(check(w, mid.lsn, last.end)).toMatchObject({ ok: true, records: 31 });
    // An end inside a record: that record is not needed.
    expect(check(w, mid.lsn, last.end - 1n)).toMatchObject({ ok: true, records: 30 });
    // A start at a page boundary skips the page header.
    const onBoundary = w.records.find((r) => r.lsn % 8192n === 24n || r.lsn % 8192n === 40n);
    if (onBoundary) expect(check(w, onBoundary.lsn - (onBoundary.lsn % 8192n), end).ok).toBe(true);
  });

  it('reports a damaged record by its LSN', () => {
    const copy = fixture();
    const r = copy.records[20]!;
    const segno = r.lsn / BigInt(copy.segmentSize);
    const buf = copy.segments.get(segno)!;
    const off = Number(r.lsn % BigInt(copy.segmentSize)) + 24;
    buf[off] = buf[off]! ^ 1;
    const res = check(copy, start, end);
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(/incorrect resource manager data checksum in record at 0\/[0-9A-F]+/);
    expect(res.records).toBe(20);
  });

  it('reports page header damage: magic, pageaddr, long header, system identifier', () => {
    const bad = (mutate: (seg: Buffer) => void, o: { sysid?: bigint; magic?: number } = {}) => {
      const copy = fixture();
      mutate(copy.segments.get(1n)!);
      return check(copy, start, end, o);
    };
    expect(bad((s) => s.writeUInt16LE(0xd106, 8192)).error).toMatch(
      /invalid magic number D106 in WAL segment 000000010000000000000001, LSN 0\/0*102000, offset 8192/,
    );
    expect(bad((s) => s.writeBigUInt64LE(0n, 16384 + 8)).error).toMatch(/unexpected pageaddr 0\/0+ /);
    expect(bad((s) => s.writeUInt16LE(s.readUInt16LE(2) & ~2, 2)).error).toMatch(/invalid info bits/);
    expect(check(w, start, end, { sysid: 42n }).error).toMatch(/WAL file is from different database system/);
    expect(check(w, start, end, { magic: 0xd116 }).error).toMatch(
      /invalid magic number D110 .*expected D116, the WAL format of PostgreSQL 17/,
    );
    expect(bad((s) => s.writeUInt32LE(s.readUInt32LE(8192 + 16) + 1, 8192 + 16)).error).toMatch(
      /invalid contrecord length|there is no contrecord flag/,
    );
  });

  it('reports a broken prev-link and WAL that ends before the end LSN', () => {
    const copy = fixture();
    const r = copy.records[5]!;
    const buf = copy.segments.get(1n)!;
    buf.writeBigUInt64LE(12345n, Number(r.lsn % BigInt(copy.segmentSize)) + 8);
    expect(check(copy, start, end).error).toMatch(/record with incorrect prev-link 0\/0*3039 at/);
    const res = check(w, start, end, { drop: 2n });
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(/WAL ends at .* before the end of the range/);
  });

  it('follows an XLOG_SWITCH to the next segment', () => {
    const s = new WalFixture();
    s.append(100);
    s.switchSegment();
    s.append(200);
    const first = s.records[0]!;
    const last = s.records[2]!;
    expect(last.lsn % BigInt(s.segmentSize)).toBe(40n);
    expect(check(s, first.lsn, last.end)).toMatchObject({ ok: true, records: 3 });
  });
});
