/**
 * A growable writer that builds frontend messages: type byte, Int32 length (back-patched
 * when the message ends; it counts itself but not the type byte), body. One per connection,
 * never module-global, so two connections never share or clobber a buffer. Pure, no I/O.
 * @module
 */

/** Builds frontend messages into a reusable, growing buffer. */
export class Writer {
  private buf: Buffer;
  private pos = 0;
  private start = -1;

  /** @param initialSize initial capacity in bytes @default 1024 */
  constructor(initialSize = 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * Start a message. `type` is the type byte, or `null` for the untyped StartupMessage,
   * SSLRequest and CancelRequest. Discards any message left unfinished (e.g. by a builder
   * that threw on invalid input), so one bad call never poisons the writer.
   */
  begin(type: number | null): this {
    this.pos = 0;
    if (type !== null) {
      this.ensure(1);
      this.buf[this.pos++] = type;
    }
    this.start = this.pos;
    this.ensure(4);
    this.pos += 4;
    return this;
  }

  /** Append a byte. */
  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  /** Append a signed 16-bit integer. */
  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  /** Append a signed 32-bit integer. */
  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** Append an unsigned 64-bit integer. */
  uint64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  /** Append a signed 64-bit integer. */
  int64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  /** Append raw bytes. */
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Append UTF-8 text without a terminator. */
  string(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    return this;
  }

  /**
   * Append UTF-8 text and a NUL. PostgreSQL reads these as C strings, so an embedded NUL
   * would silently truncate the value: reject it.
   */
  cstring(s: string): this {
    if (s.includes('\0')) throw new TypeError('a protocol string cannot contain a NUL character');
    this.string(s);
    return this.uint8(0);
  }

  /**
   * Finish the message: back-patch the length and return a copy of it (the internal buffer
   * is reused by the next message, so the result must not alias it).
   */
  end(): Buffer {
    if (this.start < 0) throw new Error('Writer: end() without begin()');
    this.buf.writeInt32BE(this.pos - this.start, this.start);
    this.start = -1;
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}
