/**
 * An incremental decoder of the LZ4 frame format (what the `lz4` tool, LZ4F and PostgreSQL's server-side
 * lz4 write), in plain JavaScript so that reading `.tar.lz4` needs no native package. Pure: bytes in,
 * bytes out, no I/O.
 *
 * Frame format (lz4's doc/lz4_Frame_format.md): magic `0x184D2204` (little-endian); FLG (version 01,
 * block independence, block checksum, content size, content checksum, dictionary ID); BD (block max
 * size 64 KiB..4 MiB); optional 8-byte content size and 4-byte dictionary ID; HC = second byte of XXH32
 * of the descriptor; then blocks (4-byte size, high bit = stored uncompressed, 0 = end mark), each
 * optionally followed by its XXH32; then an optional XXH32 of the content. Skippable frames
 * (`0x184D2A50`..`0x184D2A5F`) are skipped. Several frames may follow each other: the result is their
 * concatenation, which is how our parallel compressor's output is read.
 * @module
 */
import { CompressionError } from '../errors.js';
import { XxHash32, xxhash32 } from './xxhash32.js';

/** LZ4 frame magic number. */
export const LZ4_FRAME_MAGIC = 0x184d2204;
/** The legacy format (`lz4 -l`), not supported. */
const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Linked blocks may refer back this far into earlier output. */
const WINDOW = 64 * 1024;
const BLOCK_MAX: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

/** Options of {@link Lz4FrameDecoder}. */
export interface Lz4FrameDecoderOptions {
  /** Check block and content checksums when the frame carries them. @default true */
  verifyChecksums?: boolean;
}

type Stage =
  | { kind: 'magic' }
  | { kind: 'skip'; remaining: number }
  | { kind: 'skip-size' }
  | { kind: 'descriptor' }
  | { kind: 'block-size' }
  | { kind: 'block'; size: number; stored: boolean }
  | { kind: 'content-checksum' };

/**
 * Decodes a stream of LZ4 frames fed in chunks of any size. `push()` returns the decoded bytes that
 * became available; `end()` checks that the input stopped at a frame boundary.
 *
 * @example
 * ```ts
 * const decoder = new Lz4FrameDecoder();
 * for (const chunk of compressedChunks) for (const out of decoder.push(chunk)) write(out);
 * decoder.end(); // throws CompressionError if the input was truncated
 * ```
 */
export class Lz4FrameDecoder {
  private readonly verify: boolean;
  private stage: Stage = { kind: 'magic' };
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Compressed bytes consumed so far, for error offsets. */
  private offset = 0;
  private frames = 0;
  // Current frame's settings.
  private independent = true;
  private blockChecksum = false;
  private contentChecksum = false;
  private blockMax = 0;
  private contentSize: bigint | undefined;
  private produced = 0n;
  private hash: XxHash32 | undefined;
  /** The last (up to) 64 KiB of output, for linked blocks. */
  private history: Buffer = Buffer.alloc(0);

  constructor(options: Lz4FrameDecoderOptions = {}) {
    this.verify = options.verifyChecksums ?? true;
  }

  /** Feeds compressed bytes; returns decoded bytes (views the caller may keep). */
  push(chunk: Uint8Array): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.buffered += chunk.length;
    }
    const out: Buffer[] = [];
    for (;;) {
      const st = this.stage;
      if (st.kind === 'skip') {
        const n = Math.min(st.remaining, this.buffered);
        this.discard(n);
        st.remaining -= n;
        if (st.remaining > 0) return out;
        this.stage = { kind: 'magic' };
        continue;
      }
      const need = this.needed(st);
      if (need === undefined || this.buffered < need) return out;
      const unit = this.take(need);
      this.step(st, unit, out);
    }
  }

  /**
   * Declares the end of the input.
   * @throws CompressionError when the input stops inside a frame, or held no frame at all.
   */
  end(): void {
    if (this.stage.kind !== 'magic' || this.buffered !== 0) {
      throw this.error(`truncated lz4 data: the input ends inside a frame (${this.stage.kind})`);
    }
    if (this.frames === 0) throw this.error('no lz4 frame found: the input is empty');
  }

  private needed(st: Stage): number | undefined {
    switch (st.kind) {
      case 'magic':
        return 4;
      case 'skip-size':
        return 4;
      case 'descriptor': {
        if (this.buffered < 2) return 2;
        const flg = this.peek(0);
        return 3 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
      }
      case 'block-size':
        return 4;
      case 'block':
        return st.size + (this.blockChecksum ? 4 : 0);
      case 'content-checksum':
        return 4;
      case 'skip':
        return undefined;
    }
  }

  private step(st: Stage, unit: Buffer, out: Buffer[]): void {
    const at = this.offset - unit.length;
    switch (st.kind) {
      case 'magic': {
        const magic = unit.readUInt32LE(0);
        if (magic === LZ4_FRAME_MAGIC) {
          this.stage = { kind: 'descriptor' };
        } else if ((magic & 0xfffffff0) === 0x184d2a50) {
          this.stage = { kind: 'skip-size' };
        } else if (magic === LZ4_LEGACY_MAGIC) {
          throw this.error('the legacy lz4 format (lz4 -l) is not supported: recompress with the frame format', at);
        } else {
          throw this.error(`not lz4 frame data: bad magic number 0x${magic.toString(16).padStart(8, '0')}`, at);
        }
        return;
      }
      case 'skip-size':
        this.stage = { kind: 'skip', remaining: unit.readUInt32LE(0) };
        return;
      case 'descriptor': {
        const flg = unit[0]!;
        const bd = unit[1]!;
        if (flg >> 6 !== 1) throw this.error(`unsupported lz4 frame version ${flg >> 6}`, at);
        if (flg & 0x02 || bd & 0x8f) throw this.error('corrupt lz4 frame descriptor: reserved bits are set', at);
        const max = BLOCK_MAX[(bd >> 4) & 7];
        if (max === undefined) throw this.error(`corrupt lz4 frame descriptor: block size code ${(bd >> 4) & 7}`, at);
        const hc = unit[unit.length - 1]!;
        if (((xxhash32(unit.subarray(0, unit.length - 1)) >>> 8) & 0xff) !== hc) {
          throw this.error('corrupt lz4 frame: header checksum mismatch', at);
        }
        if (flg & 0x01) throw this.error('lz4 frames that need a dictionary are not supported', at);
        this.independent = (flg & 0x20) !== 0;
        this.blockChecksum = (flg & 0x10) !== 0;
        this.contentChecksum = (flg & 0x04) !== 0;
        this.contentSize = flg & 0x08 ? unit.readBigUInt64LE(2) : undefined;
        this.blockMax = max;
        this.produced = 0n;
        this.hash = this.contentChecksum && this.verify ? new XxHash32() : undefined;
        this.history = Buffer.alloc(0);
        this.stage = { kind: 'block-size' };
        return;
      }
      case 'block-size': {
        const word = unit.readUInt32LE(0);
        if (word === 0) {
          if (this.contentSize !== undefined && this.contentSize !== this.produced) {
            throw this.error(`corrupt lz4 frame: content size is ${this.contentSize} but ${this.produced} bytes were decoded`, at);
          }
          if (this.contentChecksum) {
            this.stage = { kind: 'content-checksum' };
          } else {
            this.frames++;
            this.stage = { kind: 'magic' };
          }
          return;
        }
        const size = word & 0x7fffffff;
        if (size > this.blockMax) throw this.error(`corrupt lz4 frame: block of ${size} bytes exceeds the frame's ${this.blockMax}`, at);
        this.stage = { kind: 'block', size, stored: (word & 0x80000000) !== 0 };
        return;
      }
      case 'block': {
        const data = unit.subarray(0, st.size);
        if (this.blockChecksum && this.verify && xxhash32(data) !== unit.readUInt32LE(st.size)) {
          throw this.error('corrupt lz4 data: block checksum mismatch', at);
        }
        const decoded = st.stored ? data : this.decodeBlock(data, at);
        if (decoded.length > 0) {
          this.hash?.update(decoded);
          this.produced += BigInt(decoded.length);
          out.push(decoded);
        }
        this.stage = { kind: 'block-size' };
        return;
      }
      case 'content-checksum': {
        if (this.hash && this.hash.digest() !== unit.readUInt32LE(0)) {
          throw this.error('corrupt lz4 data: content checksum mismatch', at);
        }
        this.frames++;
        this.stage = { kind: 'magic' };
        return;
      }
      case 'skip':
        return;
    }
  }

  /** Decodes one compressed block, with the previous 64 KiB as prefix for linked blocks. */
  private decodeBlock(src: Buffer, at: number): Buffer {
    const prefix = this.independent ? 0 : this.history.length;
    const dst = Buffer.allocUnsafe(prefix + this.blockMax);
    if (prefix > 0) this.history.copy(dst, 0);
    const end = decodeLz4Block(src, dst, prefix);
    if (end < 0) throw this.error('corrupt lz4 data: a block does not decode', at);
    if (!this.independent) {
      this.history = dst.subarray(Math.max(0, end - WINDOW), end);
      return dst.subarray(prefix, end);
    }
    // A small block in a large allocation: copy rather than pin up to 4 MiB per view.
    return end < dst.length >> 2 ? Buffer.from(dst.subarray(0, end)) : dst.subarray(0, end);
  }

  private peek(i: number): number {
    let rest = i;
    for (const c of this.chunks) {
      if (rest < c.length) return c[rest]!;
      rest -= c.length;
    }
    return 0;
  }

  /** Removes `n` buffered bytes and returns them contiguous (a view when they lie in one chunk). */
  private take(n: number): Buffer {
    this.buffered -= n;
    this.offset += n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  private discard(n: number): void {
    this.buffered -= n;
    this.offset += n;
    let rest = n;
    while (rest > 0) {
      const c = this.chunks[0]!;
      if (c.length <= rest) {
        rest -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(rest);
        rest = 0;
      }
    }
  }

  private error(message: string, offset = this.offset): CompressionError {
    return new CompressionError(`${message} (at byte ${offset} of the compressed input)`, { algorithm: 'lz4', offset });
  }
}

/**
 * Decodes one LZ4 block (lz4's doc/lz4_Block_format.md) from `src` into `dst` starting at `start`;
 * matches may reach back to `dst[0]` (the prefix of linked blocks). Returns the end position in `dst`,
 * or -1 when the block is malformed (a match before the window, output past `dst`, input cut short).
 */
export function decodeLz4Block(src: Uint8Array, dst: Buffer, start: number): number {
  const srcEnd = src.length;
  const dstEnd = dst.length;
  let s = 0;
  let d = start;
  while (s < srcEnd) {
    const token = src[s++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b;
      do {
        if (s >= srcEnd) return -1;
        b = src[s++]!;
        lit += b;
      } while (b === 255);
    }
    if (lit > 0) {
      if (s + lit > srcEnd || d + lit > dstEnd) return -1;
      if (lit < 16) {
        for (let i = 0; i < lit; i++) dst[d + i] = src[s + i]!;
      } else {
        dst.set(src.subarray(s, s + lit), d);
      }
      s += lit;
      d += lit;
    }
    // The last sequence has literals only.
    if (s >= srcEnd) break;
    if (s + 2 > srcEnd) return -1;
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) return -1;
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b;
      do {
        if (s >= srcEnd) return -1;
        b = src[s++]!;
        len += b;
      } while (b === 255);
    }
    if (d + len > dstEnd) return -1;
    const from = d - offset;
    if (offset >= len) {
      if (len < 32) {
        for (let i = 0; i < len; i++) dst[d + i] = dst[from + i]!;
      } else {
        dst.copyWithin(d, from, from + len);
      }
      d += len;
    } else {
      // Overlapping match: a repeated pattern of period `offset`; copy in growing runs.
      const stop = d + len;
      while (d < stop) {
        const run = Math.min(d - from, stop - d);
        if (run < 16) {
          for (let i = 0; i < run; i++) dst[d + i] = dst[from + i]!;
        } else {
          dst.copyWithin(d, from, from + run);
        }
        d += run;
      }
    }
  }
  return d;
}
