/**
 * Checks an archived WAL segment as it is restored, before PostgreSQL reads it: the page headers of
 * every page (the format magic, the long header of the first page with its segment size, and each
 * page's own address, which must match the segment named by the file). A file that PostgreSQL asked
 * for by name but that holds another segment, a truncated or padded file, or bytes that are not WAL
 * would otherwise make recovery stop early at "invalid record" and promote with missing data.
 * Pure: the caller feeds the decompressed bytes in order.
 * @module
 */
import { formatLsn } from '../lsn.js';
import { majorForPageMagic } from '../verify/wal-check.js';
import { isValidWalSegmentSize, parseSegmentFileName } from '../wal/segments.js';

/** `XLOG_BLCKSZ` of standard builds: WAL pages are this long. */
const WAL_PAGE_SIZE = 8192;
const SHORT_HEADER = 24; // sizeof(XLogPageHeaderData) before MAXALIGN padding matters here
const XLP_LONG_HEADER = 0x0002;
// XLogLongPageHeaderData: the short header (24), then xlp_sysid (8), xlp_seg_size (4), xlp_xlog_blcksz (4).
const SEG_SIZE_OFFSET = 32;
const BLCKSZ_OFFSET = 36;
const LONG_HEADER_READ = 40;

/** What a checked segment turned out to be. */
export interface CheckedSegment {
  /** `xlp_seg_size` of the first page. */
  segmentSize: number;
  /** The WAL format magic, and the major it belongs to. */
  pageMagic: number;
  major: number;
  /** Bytes fed. */
  bytes: number;
  /** Pages whose header was checked (the all-zero tail of a partial segment is not). */
  pagesChecked: number;
}

/**
 * Feed a segment's bytes with {@link SegmentPageChecker.push}, then call
 * {@link SegmentPageChecker.finish}. Each returns a description of the first problem, or `undefined`.
 */
export class SegmentPageChecker {
  readonly #name: string;
  readonly #header = Buffer.alloc(LONG_HEADER_READ);
  #headerFill = 0;
  #pos = 0;
  #segmentSize = 0;
  #magic = 0;
  #pages = 0;
  /** Once a page starts with zeros the rest of a partial segment must be zeros too (pg_receivewal pads). */
  #zeroTail = false;
  /** LSN of the segment's first byte, from its name once the segment size is known. */
  #expectedStart = 0n;
  #problem: string | undefined;

  /** @param name the 24-character segment name PostgreSQL asked for. */
  constructor(name: string) {
    if (!/^[0-9A-F]{24}$/.test(name)) throw new RangeError(`not a WAL segment name: ${name}`);
    this.#name = name;
  }

  /** The first problem found so far. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Check the next bytes. */
  push(chunk: Buffer): string | undefined {
    let i = 0;
    while (i < chunk.length && this.#problem === undefined) {
      if (this.#segmentSize > 0 && this.#pos >= this.#segmentSize) {
        this.#fail(`longer than its segment size (${this.#segmentSize} bytes)`);
        break;
      }
      const inPage = this.#pos % WAL_PAGE_SIZE;
      const want = this.#pos < WAL_PAGE_SIZE ? LONG_HEADER_READ : SHORT_HEADER;
      if (inPage < want) {
        const n = Math.min(want - inPage, chunk.length - i);
        chunk.copy(this.#header, this.#headerFill, i, i + n);
        this.#headerFill += n;
        i += n;
        this.#pos += n;
        if (this.#headerFill === want) {
          this.#checkHeader(want);
          this.#headerFill = 0;
        }
        continue;
      }
      // Page body: only a zero tail is looked at (a non-zero byte after a zero page is damage).
      const n = Math.min(WAL_PAGE_SIZE - inPage, chunk.length - i);
      if (this.#zeroTail && !isZero(chunk, i, i + n)) this.#fail(`non-zero bytes after the end of WAL at offset ${this.#pos}`);
      i += n;
      this.#pos += n;
    }
    return this.#problem;
  }

  /**
   * The end of the bytes. A complete segment must be exactly its segment size; a `partial` one (the
   * last, unfinished segment of an archive) may be shorter, and is padded with zeros by the caller.
   */
  finish(options: { partial: boolean }): { problem: string } | { segment: CheckedSegment } {
    if (this.#problem === undefined && this.#pos === 0) this.#fail('empty file');
    if (this.#problem === undefined && this.#headerFill > 0 && this.#pos < LONG_HEADER_READ) this.#fail(`truncated at ${this.#pos} bytes`);
    if (this.#problem === undefined && !options.partial && this.#pos !== this.#segmentSize) {
      this.#fail(`${this.#pos} bytes, but its segment size is ${this.#segmentSize}`);
    }
    if (this.#problem !== undefined) return { problem: this.#problem };
    return {
      segment: {
        segmentSize: this.#segmentSize,
        pageMagic: this.#magic,
        major: majorForPageMagic(this.#magic) ?? 0,
        bytes: this.#pos,
        pagesChecked: this.#pages,
      },
    };
  }

  #checkHeader(length: number): void {
    const h = this.#header;
    const pageStart = this.#pos - length;
    if (isZero(h, 0, length)) {
      if (pageStart === 0) this.#fail('the first page is empty');
      this.#zeroTail = true;
      return;
    }
    if (this.#zeroTail) return this.#fail(`a page header at offset ${pageStart} after the end of WAL`);
    const magic = h.readUInt16LE(0);
    const info = h.readUInt16LE(2);
    const pageAddr = h.readBigUInt64LE(8);
    if (pageStart === 0) {
      if (majorForPageMagic(magic) === undefined) return this.#fail(`unknown WAL page magic 0x${magic.toString(16).toUpperCase()}`);
      if ((info & XLP_LONG_HEADER) === 0) return this.#fail('the first page has no long header');
      const segSize = h.readUInt32LE(SEG_SIZE_OFFSET);
      const blcksz = h.readUInt32LE(BLCKSZ_OFFSET);
      if (!isValidWalSegmentSize(segSize)) return this.#fail(`invalid segment size ${segSize} in the long page header`);
      if (blcksz !== WAL_PAGE_SIZE) return this.#fail(`WAL block size ${blcksz} (only ${WAL_PAGE_SIZE} is supported)`);
      const parsed = parseSegmentFileName(this.#name, segSize);
      if (!parsed) return this.#fail(`the name does not fit its segment size ${segSize}`);
      this.#segmentSize = segSize;
      this.#magic = magic;
      this.#expectedStart = parsed.segno * BigInt(segSize);
    } else if (magic !== this.#magic) {
      return this.#fail(`page magic 0x${magic.toString(16).toUpperCase()} at offset ${pageStart} differs from the first page's`);
    }
    const expected = this.#expectedStart + BigInt(pageStart);
    if (pageAddr !== expected) {
      return this.#fail(
        `page at offset ${pageStart} has address ${formatLsn(pageAddr)}, expected ${formatLsn(expected)}: this is not segment ${this.#name}`,
      );
    }
    this.#pages += 1;
  }

  #fail(what: string): void {
    this.#problem ??= what;
  }
}

function isZero(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}
