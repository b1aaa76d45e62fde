/**
 * Bounded big-endian reads over one message body. Every read checks that it stays inside
 * the view, so a lying length or a missing NUL becomes a {@link ProtocolError} instead of
 * reading into the next message. Pure, no I/O.
 * @module
 */
import { ProtocolError } from '../errors.js';

/** A cursor over a `Buffer` view; `what` names the message in error messages. */
export class Reader {
  /** Current offset inside `buffer`. */
  offset = 0;

  /**
   * @param buffer the message body (a view; never copied)
   * @param what the message name used in error messages, e.g. `'ErrorResponse'`
   */
  constructor(
    readonly buffer: Buffer,
    readonly what = 'message',
  ) {}

  /** Bytes left to read. */
  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.buffer.length) {
      throw new ProtocolError(`truncated ${this.what}: needed ${n} more byte(s) at offset ${this.offset} of ${this.buffer.length}`);
    }
  }

  /** Unsigned byte. */
  uint8(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  /** Signed 8-bit integer. */
  int8(): number {
    this.need(1);
    const v = this.buffer.readInt8(this.offset);
    this.offset += 1;
    return v;
  }

  /** Signed 16-bit integer. */
  int16(): number {
    this.need(2);
    const v = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  /** Signed 32-bit integer. */
  int32(): number {
    this.need(4);
    const v = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** Unsigned 32-bit integer (OIDs). */
  uint32(): number {
    this.need(4);
    const v = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** Signed 64-bit integer. */
  int64(): bigint {
    this.need(8);
    const v = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  /** Unsigned 64-bit integer (LSNs). */
  uint64(): bigint {
    this.need(8);
    const v = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  /** A view of the next `n` bytes (no copy). */
  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError(`negative length ${n} in ${this.what}`);
    this.need(n);
    const v = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** A view of everything left (no copy). */
  rest(): Buffer {
    const v = this.buffer.subarray(this.offset);
    this.offset = this.buffer.length;
    return v;
  }

  /** A NUL-terminated UTF-8 string; the NUL must be inside the view. */
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) {
      throw new ProtocolError(`truncated ${this.what}: string at offset ${this.offset} has no terminating NUL`);
    }
    const v = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return v;
  }

  /** UTF-8 text of the next `n` bytes. */
  string(n: number): string {
    return this.bytes(n).toString('utf8');
  }

  /** Throws unless the whole view has been consumed (catches lengths that are too long). */
  end(): void {
    if (this.offset !== this.buffer.length) {
      throw new ProtocolError(`${this.what} has ${this.buffer.length - this.offset} unexpected trailing byte(s)`);
    }
  }
}
