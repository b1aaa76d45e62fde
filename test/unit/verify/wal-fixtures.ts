/** Builds WAL segments byte for byte as a server lays them out, for WalRangeChecker tests. */
import { crc32c, crc32cFinal, crc32cUpdate, CRC32C_INIT } from '../../../src/manifest/crc32c.js';
import { segmentFileName } from '../../../src/wal/segments.js';

export interface WalFixtureOptions {
  segmentSize?: number;
  blockSize?: number;
  timeline?: number;
  systemIdentifier?: bigint;
  magic?: number;
  /** Segment the WAL starts in. */
  firstSegno?: bigint;
  /** Bytes of filler before the first record (after the long header). */
  lead?: number;
}

export class WalFixture {
  readonly segmentSize: number;
  readonly blockSize: number;
  readonly timeline: number;
  readonly systemIdentifier: bigint;
  readonly magic: number;
  readonly segments = new Map<bigint, Buffer>();
  readonly records: { lsn: bigint; end: bigint; size: number }[] = [];
  pos: bigint;
  private prev = 0n;

  constructor(o: WalFixtureOptions = {}) {
    this.segmentSize = o.segmentSize ?? 1024 * 1024;
    this.blockSize = o.blockSize ?? 8192;
    this.timeline = o.timeline ?? 1;
    this.systemIdentifier = o.systemIdentifier ?? 7301234567890123456n;
    this.magic = o.magic ?? 0xd110;
    this.pos = (o.firstSegno ?? 1n) * BigInt(this.segmentSize);
    this.prev = this.pos - 0x100n;
    this.writePageHeaderIfNeeded(0, 0);
    this.pos += BigInt(o.lead ?? 0);
    this.pos = (this.pos + 7n) & ~7n;
  }

  private seg(lsn: bigint): { buf: Buffer; off: number } {
    const segno = lsn / BigInt(this.segmentSize);
    let buf = this.segments.get(segno);
    if (!buf) {
      buf = Buffer.alloc(this.segmentSize);
      this.segments.set(segno, buf);
    }
    return { buf, off: Number(lsn % BigInt(this.segmentSize)) };
  }

  /** At a page boundary, write the header (long at a segment start) with the continuation length. */
  private writePageHeaderIfNeeded(remLen: number, flags: number): void {
    if (this.pos % BigInt(this.blockSize) !== 0n) return;
    const { buf, off } = this.seg(this.pos);
    const long = off === 0;
    buf.writeUInt16LE(this.magic, off);
    buf.writeUInt16LE((long ? 0x0002 : 0) | (remLen > 0 ? 0x0001 : 0) | flags | 0x0004, off + 2);
    buf.writeUInt32LE(this.timeline, off + 4);
    buf.writeBigUInt64LE(this.pos, off + 8);
    buf.writeUInt32LE(remLen, off + 16);
    if (long) {
      buf.writeBigUInt64LE(this.systemIdentifier, off + 24);
      buf.writeUInt32LE(this.segmentSize, off + 32);
      buf.writeUInt32LE(this.blockSize, off + 36);
    }
    this.pos += BigInt(long ? 40 : 24);
  }

  private writeBytes(bytes: Buffer, totalLeftAfter: (written: number) => number): void {
    let i = 0;
    while (i < bytes.length) {
      this.writePageHeaderIfNeeded(totalLeftAfter(i), 0);
      const { buf, off } = this.seg(this.pos);
      const room = this.blockSize - (off % this.blockSize);
      const n = Math.min(room, bytes.length - i);
      bytes.copy(buf, off, i, i + n);
      i += n;
      this.pos += BigInt(n);
    }
  }

  /** Append one record with `payloadSize` bytes of data; returns its LSN. */
  append(payloadSize: number, o: { rmid?: number; info?: number } = {}): bigint {
    // A record starting at a page boundary starts after the page header.
    this.writePageHeaderIfNeeded(0, 0);
    const lsn = this.pos;
    const total = 24 + payloadSize;
    const rec = Buffer.alloc(total);
    rec.writeUInt32LE(total, 0);
    rec.writeUInt32LE(1000, 4);
    rec.writeBigUInt64LE(this.prev, 8);
    rec[16] = o.info ?? 0x10;
    rec[17] = o.rmid ?? 10;
    for (let k = 24; k < total; k++) rec[k] = (k * 31 + Number(lsn & 0xffn)) & 0xff;
    const crc = crc32cFinal(crc32cUpdate(crc32cUpdate(CRC32C_INIT, rec, 24), rec, 0, 20));
    rec.writeUInt32LE(crc, 20);
    this.writeBytes(rec, (written) => total - written);
    const end = this.pos;
    this.records.push({ lsn, end, size: total });
    this.prev = lsn;
    this.pos = (this.pos + 7n) & ~7n;
    return lsn;
  }

  /** An XLOG_SWITCH record: the rest of the segment stays unused. */
  switchSegment(): bigint {
    const lsn = this.append(0, { rmid: 0, info: 0x40 });
    const seg = BigInt(this.segmentSize);
    this.pos = ((this.pos + seg - 1n) / seg) * seg;
    this.seg(this.pos);
    return lsn;
  }

  fileName(segno: bigint): string {
    return segmentFileName(this.timeline, segno, this.segmentSize);
  }
}

export { crc32c };
