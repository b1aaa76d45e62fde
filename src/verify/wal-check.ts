/**
 * Checks that the WAL a backup needs is there and intact, from a WAL range's start LSN to its end LSN,
 * the way PostgreSQL's WAL reader (`xlogreader.c`) checks what it reads: every page header (magic of the
 * server's major, flag bits, `xlp_pageaddr` continuity, timeline order, the long header at each segment
 * start with system identifier, segment size and block size), every record header (length, prev-link),
 * the continuation pages of records that cross pages (`XLP_FIRST_IS_CONTRECORD`, `xlp_rem_len`), and each
 * record's CRC-32C (over the data after the header, then the header up to `xl_crc`). Records that end past
 * the end LSN are not read, as with `pg_waldump --end`. Memory stays at one page plus a record header:
 * record CRCs are computed as the bytes stream by. Pure: the caller feeds segment bytes in order.
 * @module
 */
import { formatLsn, type Lsn } from '../lsn.js';
import { CRC32C_INIT, crc32cFinal, crc32cUpdate } from '../manifest/crc32c.js';
import { segmentFileName, segmentNumber } from '../wal/segments.js';

/** `XLOG_PAGE_MAGIC` of each supported major (the WAL format version; `xlog_internal.h`). */
export const XLOG_PAGE_MAGIC: Readonly<Record<number, number>> = {
  13: 0xd106,
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
};

/** The major whose WAL carries `magic`, or `undefined`. */
export function majorForPageMagic(magic: number): number | undefined {
  for (const [major, m] of Object.entries(XLOG_PAGE_MAGIC)) if (m === magic) return Number(major);
  return undefined;
}

/** `XLOG_BLCKSZ` of standard builds. */
export const DEFAULT_WAL_BLOCK_SIZE = 8192;
const SHORT_HEADER = 24; // MAXALIGN(sizeof(XLogPageHeaderData))
const LONG_HEADER = 40; // MAXALIGN(sizeof(XLogLongPageHeaderData))
const RECORD_HEADER = 24; // SizeOfXLogRecord
const XL_CRC_OFFSET = 20; // offsetof(XLogRecord, xl_crc)
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
// 13–18 keep XLP_BKP_REMOVABLE (0x0004), so the overwrite flag is 0x0008 and the valid bits 0x000F
// (PostgreSQL 19 drops BKP_REMOVABLE and renumbers).
const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
const XLP_ALL_FLAGS = 0x000f;
/** `XLogRecordMaxSize` (1020 MB): a longer xl_tot_len is garbage. */
const MAX_RECORD_SIZE = 1020 * 1024 * 1024;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

const maxAlign = (v: bigint) => (v + 7n) & ~7n;

/** What one {@link WalRangeChecker} was asked to check. */
export interface WalRangeCheckOptions {
  timeline: number;
  startLsn: Lsn;
  endLsn: Lsn;
  /** WAL segment size in bytes (from the first segment's long header or its file size). */
  segmentSize: number;
  /** Expected `xlp_sysid` in long page headers; unchecked when absent. */
  systemIdentifier?: bigint | undefined;
  /** Expected `xlp_magic`; when absent the first page's magic must be a known one and all pages must agree. */
  pageMagic?: number | undefined;
  /** @default 8192 */
  blockSize?: number;
  /**
   * Called for every record whose CRC checked out, in WAL order. Records that {@link wantBody} picks carry
   * their bytes after the 24-byte header (at most {@link MAX_RECORD_BODY} of them); the others none.
   */
  onRecord?: ((record: WalRecord) => void) | undefined;
  /** Which records' bodies {@link onRecord} needs, by resource manager and info byte. @default none */
  wantBody?: ((rmid: number, info: number) => boolean) | undefined;
}

/** A WAL record as the `onRecord` option of the WAL range checker sees it. */
export interface WalRecord {
  /** Where the record starts, and where the next one starts (its MAXALIGNed end). */
  startLsn: Lsn;
  endLsn: Lsn;
  /** `xl_xid`: the top-level transaction id, 0 for records outside a transaction. */
  xid: number;
  /** `xl_rmid` and `xl_info`. */
  rmid: number;
  info: number;
  /** `xl_tot_len`. */
  totalLength: number;
  /** The bytes after the record header (block references, block data, main data), when asked for. */
  body: Buffer | undefined;
}

/** Record bodies longer than this are not collected (commit and restore-point records are far smaller). */
export const MAX_RECORD_BODY = 1024 * 1024;

/** The outcome of a WAL range check. */
export interface WalRangeCheckResult {
  ok: boolean;
  /** What is wrong, in pg_waldump's words, when not ok. */
  error?: string;
  /** Records whose CRC was verified. */
  records: number;
  /** The page magic seen, and the major it belongs to. */
  pageMagic?: number;
  major?: number;
  /** Where checking stopped: the end LSN when ok, else the position of the problem. */
  reachedLsn: Lsn;
}

/**
 * Feed the segments of {@link WalRangeChecker.segments} in order, each with
 * {@link WalRangeChecker.beginSegment} and its bytes through {@link WalRangeChecker.push}; stop early
 * once {@link WalRangeChecker.finished} is true; then read {@link WalRangeChecker.result}.
 */
export class WalRangeChecker {
  private readonly o: Required<Omit<WalRangeCheckOptions, 'systemIdentifier' | 'pageMagic' | 'onRecord' | 'wantBody'>> &
    Pick<WalRangeCheckOptions, 'systemIdentifier' | 'pageMagic' | 'onRecord' | 'wantBody'>;
  private readonly bs: number;
  private readonly page: Buffer;
  private pageFill = 0;
  /** LSN of the next byte pushed. */
  private pos: bigint;
  private segName = '';
  private magic: number | undefined;
  private lastPageTli = 0;
  private error: string | undefined;
  private done = false;
  private records = 0;

  // Record assembly.
  private inRecord = false;
  private next: bigint;
  private firstRecord = true;
  private prevRecPtr = 0n;
  private recStart = 0n;
  private recGot = 0;
  private totLen = 0;
  private readonly header = Buffer.alloc(RECORD_HEADER);
  private crc = CRC32C_INIT;
  /** The body of the record being assembled, when onRecord wants it. */
  private body: Buffer | undefined;

  constructor(options: WalRangeCheckOptions) {
    this.o = { blockSize: DEFAULT_WAL_BLOCK_SIZE, ...options };
    this.bs = this.o.blockSize;
    this.page = Buffer.alloc(this.bs);
    this.magic = options.pageMagic;
    const segSize = BigInt(options.segmentSize);
    this.pos = options.startLsn - (options.startLsn % segSize);
    this.next = options.startLsn;
    if (options.endLsn <= options.startLsn) this.done = true;
  }

  /** Segment numbers to feed, in order: from the one holding the start LSN to the one holding the byte before the end LSN. */
  segments(): bigint[] {
    const { startLsn, endLsn, segmentSize } = this.o;
    if (endLsn <= startLsn) return [];
    const first = segmentNumber(startLsn, segmentSize);
    const last = segmentNumber(endLsn - 1n, segmentSize);
    const out: bigint[] = [];
    for (let s = first; s <= last; s++) out.push(s);
    return out;
  }

  /** File name of a segment on this range's timeline. */
  fileName(segno: bigint): string {
    return segmentFileName(this.o.timeline, segno, this.o.segmentSize);
  }

  /** True once the end LSN was reached or a problem found: no more bytes are needed. */
  get finished(): boolean {
    return this.done || this.error !== undefined;
  }

  /** Announce the segment whose bytes come next (its first byte must be the next expected LSN). */
  beginSegment(segno: bigint): void {
    const start = segno * BigInt(this.o.segmentSize);
    if (start !== this.pos || this.pageFill !== 0) {
      this.fail(`segment ${this.fileName(segno)} fed out of order (expected data at ${formatLsn(this.pos)})`);
    }
    this.segName = this.fileName(segno);
  }

  /** Feed segment bytes. */
  push(chunk: Uint8Array): void {
    let i = 0;
    const bs = this.bs;
    while (i < chunk.length && !this.finished) {
      if (this.pageFill === 0 && chunk.length - i >= bs) {
        // A whole page in the chunk (reads are page-aligned, so nearly every page): checked in place.
        const pageLsn = this.pos;
        this.pos += BigInt(bs);
        this.processPage(pageLsn, Buffer.from(chunk.buffer, chunk.byteOffset + i, bs));
        i += bs;
        continue;
      }
      const n = Math.min(bs - this.pageFill, chunk.length - i);
      this.page.set(chunk.subarray(i, i + n), this.pageFill);
      this.pageFill += n;
      i += n;
      if (this.pageFill === bs) {
        const pageLsn = this.pos;
        this.pos += BigInt(bs);
        this.pageFill = 0;
        this.processPage(pageLsn, this.page);
      }
    }
  }

  /** The outcome; call after the last segment (or once finished). */
  result(): WalRangeCheckResult {
    if (!this.finished) {
      const at = this.inRecord ? this.recStart : this.next;
      this.fail(
        `WAL ends at ${formatLsn(this.pos)} before the end of the range at ${formatLsn(this.o.endLsn)} ` +
          `(last complete record ends before ${formatLsn(at)})`,
      );
    }
    const r: WalRangeCheckResult = {
      ok: this.error === undefined,
      records: this.records,
      reachedLsn: (this.error === undefined ? this.o.endLsn : this.inRecord ? this.recStart : this.next) as Lsn,
    };
    if (this.error !== undefined) r.error = this.error;
    if (this.magic !== undefined) {
      r.pageMagic = this.magic;
      const major = majorForPageMagic(this.magic);
      if (major !== undefined) r.major = major;
    }
    return r;
  }

  private fail(msg: string): void {
    this.error ??= msg;
  }

  private where(pageLsn: bigint): string {
    const off = Number(pageLsn % BigInt(this.o.segmentSize));
    return `in WAL segment ${this.segName}, LSN ${formatLsn(pageLsn)}, offset ${off}`;
  }

  /** Check the page at `pageLsn`, whose bytes `p` are only looked at during this call. */
  private processPage(pageLsn: bigint, p: Buffer): void {
    const segOffset = Number(pageLsn % BigInt(this.o.segmentSize));
    const startPage = this.o.startLsn - (this.o.startLsn % BigInt(this.bs));
    // Only the segment's first page (long header) and the pages from the start to the end matter.
    if (pageLsn < startPage && segOffset !== 0) return;
    if (pageLsn >= this.o.endLsn) {
      this.done = true;
      return;
    }
    // After an XLOG_SWITCH the rest of the segment holds no records and the reader never looks at it.
    if (!this.inRecord && this.next >= pageLsn + BigInt(this.bs) && segOffset !== 0) return;
    const magic = p.readUInt16LE(0);
    const info = p.readUInt16LE(2);
    const tli = p.readUInt32LE(4);
    const pageaddr = p.readBigUInt64LE(8);
    const remLen = p.readUInt32LE(16);
    if (this.magic === undefined) {
      if (majorForPageMagic(magic) === undefined) return this.fail(`invalid magic number ${hex4(magic)} ${this.where(pageLsn)}`);
      this.magic = magic;
    } else if (magic !== this.magic) {
      return this.fail(
        `invalid magic number ${hex4(magic)} ${this.where(pageLsn)}` +
          (majorForPageMagic(this.magic)
            ? ` (expected ${hex4(this.magic)}, the WAL format of PostgreSQL ${majorForPageMagic(this.magic)})`
            : ''),
      );
    }
    if ((info & ~XLP_ALL_FLAGS) !== 0) return this.fail(`invalid info bits ${hex4(info)} ${this.where(pageLsn)}`);
    let hdrSize = SHORT_HEADER;
    if (info & XLP_LONG_HEADER) {
      hdrSize = LONG_HEADER;
      const sysid = p.readBigUInt64LE(24);
      const segSize = p.readUInt32LE(32);
      const blcksz = p.readUInt32LE(36);
      if (this.o.systemIdentifier !== undefined && sysid !== this.o.systemIdentifier) {
        return this.fail(
          `WAL file is from different database system: WAL file database system identifier is ${sysid}, ` +
            `pg_control database system identifier is ${this.o.systemIdentifier} (${this.segName})`,
        );
      }
      if (segSize !== this.o.segmentSize)
        return this.fail(`WAL file is from different database system: incorrect segment size in page header (${segSize}, ${this.segName})`);
      if (blcksz !== this.bs)
        return this.fail(`WAL file is from different database system: incorrect XLOG_BLCKSZ in page header (${blcksz}, ${this.segName})`);
    } else if (segOffset === 0) {
      return this.fail(`invalid info bits ${hex4(info)} ${this.where(pageLsn)} (a segment's first page needs a long header)`);
    }
    if (pageaddr !== pageLsn) return this.fail(`unexpected pageaddr ${formatLsn(pageaddr)} ${this.where(pageLsn)}`);
    if (pageLsn < startPage) return; // a segment's first page, before the range: header checked, no records read
    if (tli > this.o.timeline)
      return this.fail(`timeline ${tli} in page header is newer than the range's timeline ${this.o.timeline} ${this.where(pageLsn)}`);
    if (tli < this.lastPageTli) return this.fail(`out-of-sequence timeline ID ${tli} (after ${this.lastPageTli}) ${this.where(pageLsn)}`);
    this.lastPageTli = tli;
    this.readRecords(p, pageLsn, hdrSize, info, remLen);
  }

  private readRecords(p: Buffer, pageLsn: bigint, hdrSize: number, info: number, remLen: number): void {
    const bs = BigInt(this.bs);
    const pageEnd = pageLsn + bs;
    const payloadStart = pageLsn + BigInt(hdrSize);
    let off: number;
    if (this.inRecord) {
      if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
        // The rest of this record was never written; the server wrote a new record in its place (xlogreader.c restarts here).
        this.inRecord = false;
        this.next = payloadStart;
        this.firstRecord = true;
      } else {
        if (!(info & XLP_FIRST_IS_CONTRECORD)) return this.fail(`there is no contrecord flag at ${formatLsn(payloadStart)}`);
        const want = this.totLen - this.recGot;
        if (remLen === 0 || remLen !== want) {
          return this.fail(`invalid contrecord length ${remLen} (expected ${want}) at ${formatLsn(payloadStart)}`);
        }
      }
      off = hdrSize;
    } else {
      if (this.next >= pageEnd) return; // after an XLOG_SWITCH, the rest of the segment is unused
      if (this.next === pageLsn) this.next = payloadStart;
      if (this.next < payloadStart) {
        return this.fail(
          `invalid record offset at ${formatLsn(this.next)}: expected at least ${hdrSize}, got ${Number(this.next - pageLsn)}`,
        );
      }
      if (this.next === payloadStart && info & XLP_FIRST_IS_CONTRECORD) {
        if (!this.firstRecord) return this.fail(`contrecord is requested by ${formatLsn(this.next)}`);
        // Starting in the middle of the WAL, as pg_waldump's XLogFindNextRecord does: skip the tail of a record begun earlier.
        this.next = payloadStart + maxAlign(BigInt(remLen));
        if (this.next >= pageEnd) return;
      }
      off = Number(this.next - pageLsn);
    }
    this.consume(p, pageLsn, off);
  }

  /**
   * Consume record bytes of the page `p` from `off`. Positions within the page are plain numbers
   * (offsets from `pageLsn`); LSNs are made only once per record, for its start and the next one.
   */
  private consume(p: Buffer, pageLsn: bigint, off: number): void {
    const bs = this.bs;
    const endRel = this.o.endLsn - pageLsn;
    // Offset of the end LSN in this page; past the page when the range goes on (processPage saw endLsn > pageLsn).
    const endOff = endRel > BigInt(bs) ? bs + 1 : Number(endRel);
    // Offset of this.next (only looked at between records, when readRecords has put it in this page).
    let nextOff = off;
    while (off < bs && !this.finished) {
      if (!this.inRecord) {
        if (off < nextOff) {
          off = nextOff;
          continue;
        }
        if (off >= endOff) {
          this.done = true;
          return;
        }
        this.inRecord = true;
        this.recStart = pageLsn + BigInt(off);
        this.recGot = 0;
        this.totLen = 0;
        this.crc = CRC32C_INIT;
        // xl_tot_len is always on the record's first page (records are MAXALIGNed).
        this.totLen = p.readUInt32LE(off);
        if (this.totLen < RECORD_HEADER) {
          return this.fail(`invalid record length at ${formatLsn(this.recStart)}: expected at least ${RECORD_HEADER}, got ${this.totLen}`);
        }
        if (this.totLen > MAX_RECORD_SIZE) return this.fail(`record length ${this.totLen} at ${formatLsn(this.recStart)} too long`);
      }
      const want = this.totLen - this.recGot;
      const n = Math.min(want, bs - off);
      // A record that runs past the end LSN is not needed (pg_waldump --end never reads it).
      if (off + n > endOff) {
        this.done = true;
        return;
      }
      if (this.recGot < RECORD_HEADER) {
        const h = Math.min(RECORD_HEADER - this.recGot, n);
        p.copy(this.header, this.recGot, off, off + h);
        if (h < n) this.crc = crc32cUpdate(this.crc, p, off + h, off + n);
        if (this.recGot + h === RECORD_HEADER) {
          if (!this.checkHeader()) return;
          this.body =
            this.o.onRecord && this.o.wantBody?.(this.header[17]!, this.header[16]!) && this.totLen - RECORD_HEADER <= MAX_RECORD_BODY
              ? Buffer.allocUnsafe(this.totLen - RECORD_HEADER)
              : undefined;
        }
        if (this.body && h < n) p.copy(this.body, 0, off + h, off + n);
      } else {
        this.crc = crc32cUpdate(this.crc, p, off, off + n);
        if (this.body) p.copy(this.body, this.recGot - RECORD_HEADER, off, off + n);
      }
      this.recGot += n;
      off += n;
      if (this.recGot === this.totLen) {
        if (!this.finishRecord()) return;
        // MAXALIGN of the record's end: a plain number while it stays in this page.
        const aligned = (off + 7) & ~7;
        if (this.o.onRecord) this.reportRecord(pageLsn + BigInt(aligned));
        if (this.isSwitch()) {
          // A segment switch: the rest of the segment is unused, the next record is at the next segment's start.
          const seg = BigInt(this.o.segmentSize);
          const endLsn = pageLsn + BigInt(aligned);
          this.next = ((endLsn + seg - 1n) / seg) * seg;
          nextOff = bs;
        } else {
          this.next = pageLsn + BigInt(aligned);
          nextOff = aligned;
        }
      }
    }
  }

  private checkHeader(): boolean {
    const prev = this.header.readBigUInt64LE(8);
    if (this.firstRecord ? prev >= this.recStart : prev !== this.prevRecPtr) {
      this.fail(`record with incorrect prev-link ${formatLsn(prev)} at ${formatLsn(this.recStart)}`);
      return false;
    }
    return true;
  }

  /** Checks the finished record's CRC and makes it the previous record; the caller sets `next`. */
  private finishRecord(): boolean {
    const h = this.header;
    const crc = crc32cFinal(crc32cUpdate(this.crc, h, 0, XL_CRC_OFFSET));
    if (crc !== h.readUInt32LE(XL_CRC_OFFSET)) {
      this.fail(`incorrect resource manager data checksum in record at ${formatLsn(this.recStart)}`);
      return false;
    }
    this.records++;
    this.firstRecord = false;
    this.prevRecPtr = this.recStart;
    this.inRecord = false;
    return true;
  }

  private reportRecord(endLsn: bigint): void {
    const h = this.header;
    const body = this.body;
    this.body = undefined;
    this.o.onRecord?.({
      startLsn: this.recStart as Lsn,
      endLsn: endLsn as Lsn,
      xid: h.readUInt32LE(4),
      rmid: h[17]!,
      info: h[16]!,
      totalLength: this.totLen,
      body,
    });
  }

  /** Whether the record just finished is an XLOG_SWITCH. */
  private isSwitch(): boolean {
    return this.header[17] === RM_XLOG_ID && (this.header[16]! & 0xf0) === XLOG_SWITCH;
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
