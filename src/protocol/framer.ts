/**
 * Incremental framing of backend messages: `push()` socket chunks, `pull()` whole messages.
 *
 * Each backend message is a type byte, an Int32 length that counts itself but not the type
 * byte, then the body. The framer keeps a list of chunks and only the unfinished tail of the
 * stream; a message that lies inside one chunk is handed out as a `subarray` view (no copy),
 * and bytes are concatenated only when a message spans chunks. Pure, no I/O.
 * @module
 */
import { ProtocolError } from '../errors.js';

/**
 * Largest message length we accept. PostgreSQL's own limit for any message is just under
 * 1 GiB (`MaxAllocSize`, `PQ_LARGE_MESSAGE_LIMIT`); anything larger is garbage or an attack,
 * and accepting it would make us buffer it all.
 */
export const MAX_MESSAGE_LENGTH = 0x40000000;

/** One framed message: its type byte and a view of its body (without type and length). */
export interface Frame {
  type: number;
  body: Buffer;
}

/** Printable description of a type byte, e.g. `'Z' (0x5a)`. */
export function describeTypeByte(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, '0')}`;
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}' (${hex})` : hex;
}

/** Splits a byte stream into backend messages. */
export class Framer {
  private chunks: Buffer[] = [];
  private head = 0; // offset of the first unread byte inside chunks[0]
  private available = 0; // unread bytes over all chunks
  private streamOffset = 0; // bytes consumed since the start, for error messages

  /** Bytes received and not yet handed out (for backpressure accounting). */
  get bufferedBytes(): number {
    return this.available;
  }

  /** Bytes handed out in whole messages since the start (the stream offset of the first unread byte). */
  get consumedBytes(): number {
    return this.streamOffset;
  }

  /** Add bytes received from the socket. The framer keeps a reference, not a copy. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  private byteAt(index: number): number {
    let i = this.head + index;
    for (const c of this.chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    /* c8 ignore next */
    throw new RangeError('Framer: byteAt past the end');
  }

  /**
   * The unfinished message at the end of what is buffered (complete ones before it are
   * skipped), for the error when the stream ends there, e.g. `700 of the 9741 bytes of a
   * message of type 'd' (0x64) at stream offset 120`; undefined when the buffer ends at a
   * message boundary.
   */
  describePartial(): string | undefined {
    let pos = 0;
    for (;;) {
      const left = this.available - pos;
      if (left === 0) return undefined;
      if (left < 5) return `${left} byte(s) of a message header at stream offset ${this.streamOffset + pos}`;
      const type = this.byteAt(pos);
      const length =
        ((this.byteAt(pos + 1) << 24) | (this.byteAt(pos + 2) << 16) | (this.byteAt(pos + 3) << 8) | this.byteAt(pos + 4)) >>> 0;
      if (length < 4 || left < 1 + length) {
        return `${left} of the ${1 + length} bytes of a message of type ${describeTypeByte(type)} at stream offset ${this.streamOffset + pos}`;
      }
      pos += 1 + length;
    }
  }

  /** Offset (from the first unread byte) where the unfinished message at the end starts; `available` when none is. */
  private unfinishedAt(): number {
    let pos = 0;
    for (;;) {
      const left = this.available - pos;
      if (left < 5) return pos;
      const length =
        ((this.byteAt(pos + 1) << 24) | (this.byteAt(pos + 2) << 16) | (this.byteAt(pos + 3) << 8) | this.byteAt(pos + 4)) >>> 0;
      // A bad length is left for pull() to report.
      if (length < 4 || left < 1 + length) return pos;
      pos += 1 + length;
    }
  }

  /**
   * Copy the unfinished message at the end of the unread bytes to the start of `into`, and read it
   * from there from now on; returns how many bytes were moved. Whole messages before it stay where
   * they are. Moves nothing, and returns 0, when there is no unfinished message or it would take more
   * than half of `into`. A receiver that reads the rest of the stream into `into` right behind the
   * moved bytes gets that message whole in one buffer, handed out as a view rather than copied again,
   * and the framer no longer needs the buffer the bytes came from once the messages before are out.
   */
  relocatePartial(into: Buffer): number {
    let cut = this.unfinishedAt();
    const n = this.available - cut;
    if (n === 0 || n > into.length / 2) return 0;
    const kept: Buffer[] = [];
    let copied = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      const start = i === 0 ? this.head : 0;
      const len = c.length - start;
      if (cut >= len) {
        kept.push(c);
        cut -= len;
        continue;
      }
      if (cut > 0) kept.push(c.subarray(0, start + cut));
      copied += c.copy(into, copied, start + cut);
      cut = 0;
    }
    if (kept.length === 0) this.head = 0;
    kept.push(into.subarray(0, n));
    this.chunks = kept;
    return n;
  }

  /** Whether the next `total` unread bytes lie back to back in one ArrayBuffer. */
  private contiguous(total: number): boolean {
    let prev = this.chunks[0]!;
    let covered = prev.length - this.head;
    for (let i = 1; covered < total; i++) {
      const c = this.chunks[i]!;
      if (c.buffer !== prev.buffer || c.byteOffset !== prev.byteOffset + prev.length) return false;
      covered += c.length;
      prev = c;
    }
    return true;
  }

  /** Drop `n` unread bytes from the front of the chunk list. */
  private skip(n: number): void {
    while (n > 0) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n);
      this.head += k;
      n -= k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
  }

  /**
   * The next complete message, or `null` when more bytes are needed.
   * @throws ProtocolError when the length field is below 4 or above {@link MAX_MESSAGE_LENGTH};
   *   the stream is then unusable and the connection must be closed.
   */
  pull(): Frame | null {
    if (this.available < 5) return null;
    const first = this.chunks[0]!;
    let type: number;
    let length: number;
    if (first.length - this.head >= 5) {
      // The usual case: the header lies in the first chunk (byteAt walks the chunk list per byte).
      type = first[this.head]!;
      length = first.readUInt32BE(this.head + 1);
    } else {
      type = this.byteAt(0);
      length = ((this.byteAt(1) << 24) | (this.byteAt(2) << 16) | (this.byteAt(3) << 8) | this.byteAt(4)) >>> 0;
    }
    if (length < 4 || length > MAX_MESSAGE_LENGTH) {
      throw new ProtocolError(
        `invalid length ${length} for a message of type ${describeTypeByte(type)} at stream offset ` +
          `${this.streamOffset}: the length must be between 4 and ${MAX_MESSAGE_LENGTH}`,
      );
    }
    const total = 1 + length;
    if (this.available < total) return null;

    let body: Buffer;
    if (first.length - this.head >= total) {
      body = first.subarray(this.head + 5, this.head + total);
      this.head += total;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else if (this.contiguous(total)) {
      // The chunks are consecutive views of one ArrayBuffer (socket reads into one receive slab):
      // the message is already whole in memory, so hand out a view across them instead of a copy.
      body = Buffer.from(first.buffer, first.byteOffset + this.head + 5, total - 5);
      this.skip(total);
    } else {
      // The message spans chunks: copy it out once, and drop the chunks it used up.
      body = Buffer.allocUnsafe(total - 5);
      let pos = 0; // position inside the whole message (header included)
      while (pos < total) {
        const c = this.chunks[0]!;
        const n = Math.min(c.length - this.head, total - pos);
        // Copy the part of [pos, pos + n) that lies after the 5 header bytes.
        const skip = Math.max(0, 5 - pos);
        if (n > skip) c.copy(body, pos + skip - 5, this.head + skip, this.head + n);
        pos += n;
        this.head += n;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    this.available -= total;
    this.streamOffset += total;
    return { type, body };
  }
}
