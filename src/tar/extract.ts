/**
 * Incremental tar extractor over an async byte source, in lock step: the next header is not parsed
 * (and no byte past the current body is pulled from the source) until the current body has been read
 * or skipped, so a slow consumer slows the source and memory stays flat.
 *
 * Bodies are handed out as `subarray` views of the source's chunks; only headers that straddle two
 * chunks are copied. Pax (`x`) and GNU long-name (`L`, `K`) records are folded into the entry they
 * describe; pax global records (`g`) are read and ignored.
 * @module
 */
import { StateError, TarError } from '../errors.js';
import { BLOCK_SIZE, bodySize, decodeHeader, paddingSize, type TarHeader } from './header.js';
import { applyPax, paxOverrides, parsePax, type PaxOverrides } from './pax.js';

/** The body of one entry: iterate it once for its bytes (views, valid until the next chunk), or skip it. */
export interface TarEntryBody extends AsyncIterable<Buffer> {
  /** Body length in bytes (0 for directories and links). */
  readonly size: number;
  /** Discards whatever of the body has not been read. Resolves once the source has moved past it. */
  skip(): Promise<void>;
}

/** One entry of the archive. */
export interface TarEntry {
  /** The decoded header, with pax and GNU long-name records applied. */
  header: TarHeader;
  /** Offset in the archive of the entry's first header block (its pax or long-name record, if any). */
  offset: number;
  /**
   * The exact header bytes of this entry: the ustar block, preceded by any pax / long-name records and
   * their padding. Lets a rewriter pass an entry through unchanged. Valid until the next entry.
   */
  headerBytes: Buffer;
  /** The body. Must be read or skipped before the next entry; asking for the next entry skips it. */
  body: TarEntryBody;
}

/** Options for {@link extractTar}. */
export interface ExtractOptions {
  /**
   * Largest pax or GNU long-name record accepted, in bytes; these are buffered whole.
   * @default 1048576
   */
  maxMetadataBytes?: number;
  /**
   * After the end-of-archive marker, read the source to its end (discarding, e.g., the zero padding GNU tar
   * adds up to its record size) so that the producer finishes. Set false to stop reading at the marker.
   * @default true
   */
  drainAfterEnd?: boolean;
}

/** The bytes of a tar archive, in chunks of any size. */
export type TarSource = AsyncIterable<Buffer | Uint8Array>;

/**
 * A queue of source chunks with a read position. Only the unconsumed tail is kept; bodies are handed out
 * as views, and a header is copied only when it straddles two chunks.
 */
class ChunkReader {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;
  private iterator: AsyncIterator<Buffer | Uint8Array> | undefined;
  private ended = false;
  /** Bytes consumed from the source so far. */
  position = 0;

  constructor(private readonly source: TarSource) {}

  /** Bytes pulled from the source and not yet consumed (read, handed out or skipped). */
  get unconsumedBytes(): number {
    return this.buffered;
  }

  /** Pulls one chunk into the queue; false at end of input. */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    this.iterator ??= this.source[Symbol.asyncIterator]();
    for (;;) {
      const r = await this.iterator.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value;
      if (v.length === 0) continue;
      this.chunks.push(Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      this.buffered += v.length;
      return true;
    }
  }

  /** Ensures `n` bytes are buffered; returns how many are (less than `n` only at end of input). */
  async fill(n: number): Promise<number> {
    while (this.buffered < n) if (!(await this.pull())) break;
    return Math.min(this.buffered, n);
  }

  /** Consumes `n` buffered bytes (caller checked with `fill`); a view when they lie in one chunk. */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[0] as Buffer;
      const k = Math.min(chunk.length - this.head, n - copied);
      chunk.copy(out, copied, this.head, this.head + k);
      copied += k;
      this.advance(k);
    }
    return out;
  }

  /** Hands out up to `max` bytes as a view of the current chunk, pulling one if needed; undefined at end. */
  async next(max: number): Promise<Buffer | undefined> {
    if (this.buffered === 0 && !(await this.pull())) return undefined;
    const chunk = this.chunks[0] as Buffer;
    const k = Math.min(chunk.length - this.head, max);
    const out = chunk.subarray(this.head, this.head + k);
    this.advance(k);
    return out;
  }

  /** Discards `n` bytes; returns how many could be discarded before end of input. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) break;
      const chunk = this.chunks[0] as Buffer;
      const k = Math.min(chunk.length - this.head, left);
      this.advance(k);
      left -= k;
    }
    return n - left;
  }

  private advance(k: number): void {
    this.head += k;
    this.buffered -= k;
    this.position += k;
    const first = this.chunks[0];
    if (first && this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Reads the source to its end, discarding. */
  async drain(): Promise<void> {
    while (await this.pull()) {
      this.position += this.buffered;
      this.chunks = [];
      this.head = 0;
      this.buffered = 0;
    }
  }

  /** Lets the source release its resources (e.g. a socket stream) when we stop early. */
  async close(): Promise<void> {
    if (!this.ended && this.iterator?.return) {
      this.ended = true;
      await this.iterator.return();
    }
  }
}

/**
 * Reads a tar archive entry by entry. Iterate it with `for await`; check {@link TarExtractor.terminated}
 * afterwards.
 *
 * @example
 * ```ts
 * const tar = extractTar(socketChunks);
 * for await (const entry of tar) {
 *   if (entry.header.type !== 'file') continue; // skipped automatically
 *   for await (const chunk of entry.body) await file.write(chunk);
 * }
 * const unterminated = tar.terminated === false; // PostgreSQL 13/14 omit the end-of-archive marker
 * ```
 */
export class TarExtractor implements AsyncIterable<TarEntry> {
  private readonly reader: ChunkReader;
  private readonly maxMetadataBytes: number;
  private readonly drainAfterEnd: boolean;
  private started = false;
  private _terminated: boolean | undefined;

  constructor(source: TarSource, options: ExtractOptions = {}) {
    this.reader = new ChunkReader(source);
    this.maxMetadataBytes = options.maxMetadataBytes ?? 1024 * 1024;
    this.drainAfterEnd = options.drainAfterEnd ?? true;
  }

  /**
   * Bytes pulled from the source and not yet handed out or skipped. At 0 the extractor holds no part
   * of the source's chunks that it will read again: a consumer done with every view it was given may
   * let the source reuse its buffers (`ArchiveChunks.release`).
   */
  get bufferedBytes(): number {
    return this.reader.unconsumedBytes;
  }

  /**
   * After iteration: `true` if the archive ended with the end-of-archive marker (two zero blocks),
   * `false` if the input ended at an entry boundary without it (PostgreSQL 13 and 14 servers send no
   * marker), `undefined` while the end has not been reached.
   */
  get terminated(): boolean | undefined {
    return this._terminated;
  }

  /** Bytes consumed from the source so far. */
  get bytesRead(): number {
    return this.reader.position;
  }

  [Symbol.asyncIterator](): AsyncIterator<TarEntry> {
    if (this.started) throw new StateError('a tar archive can be iterated only once');
    this.started = true;
    return this.entries();
  }

  private async *entries(): AsyncGenerator<TarEntry> {
    const reader = this.reader;
    let finishedNormally = false;
    try {
      for (;;) {
        const entry = await this.readHeader();
        if (entry === undefined) break;
        const body = new Body(reader, bodySize(entry.header), entry.offset);
        yield { ...entry, body: body.api };
        // Lock step: the consumer asked for the next entry, so whatever it left of this body is skipped
        // before a single byte of the next header is looked at.
        await body.finish();
      }
      finishedNormally = true;
      if (this.drainAfterEnd) await reader.drain();
    } finally {
      if (!finishedNormally || !this.drainAfterEnd) await reader.close();
    }
  }

  /** Reads the next header (folding pax / long-name records); undefined at the end of the archive. */
  private async readHeader(): Promise<Omit<TarEntry, 'body'> | undefined> {
    const reader = this.reader;
    const offset = reader.position;
    const parts: Buffer[] = [];
    let pax: PaxOverrides = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const blockOffset = reader.position;
      const got = await reader.fill(BLOCK_SIZE);
      if (got === 0) {
        if (parts.length > 0) throw truncated('an entry header', blockOffset);
        // Input ended at an entry boundary without the end-of-archive marker.
        this._terminated = false;
        return undefined;
      }
      if (got < BLOCK_SIZE) throw truncated('a header block', blockOffset);
      const block = reader.take(BLOCK_SIZE);
      const decoded = decodeHeader(block);
      if (decoded.zeroBlock) {
        if (parts.length > 0)
          throw new TarError(`zero block at offset ${blockOffset} right after an extended header`, { offset: blockOffset });
        return this.readSecondZeroBlock(blockOffset);
      }
      if (!decoded.checksumValid) {
        throw new TarError(`bad tar header checksum at offset ${blockOffset}: not a tar archive, or the data is corrupt`, {
          offset: blockOffset,
        });
      }
      if (decoded.invalidField !== undefined) {
        throw new TarError(`bad "${decoded.invalidField}" field in the tar header at offset ${blockOffset}`, { offset: blockOffset });
      }
      const h = decoded.header;
      if (h.type === 'pax-header' || h.type === 'pax-global-header' || h.type === 'gnu-long-name' || h.type === 'gnu-long-linkname') {
        if (h.size > this.maxMetadataBytes) {
          throw new TarError(
            `extended header of ${h.size} bytes at offset ${blockOffset} exceeds the ${this.maxMetadataBytes}-byte limit`,
            { offset: blockOffset },
          );
        }
        const total = h.size + paddingSize(h.size);
        if ((await reader.fill(total)) < total) throw truncated('an extended header', blockOffset);
        const data = reader.take(total);
        parts.push(block, data);
        const content = data.subarray(0, h.size);
        if (h.type === 'pax-header') {
          const parsed = parsePax(content);
          if (!parsed.valid) throw new TarError(`bad pax header at offset ${blockOffset}: ${parsed.error ?? ''}`, { offset: blockOffset });
          pax = { ...pax, ...paxOverrides(parsed.records) };
        } else if (h.type === 'gnu-long-name' || h.type === 'gnu-long-linkname') {
          const end = content.indexOf(0);
          const value = content.toString('utf8', 0, end === -1 ? content.length : end);
          if (h.type === 'gnu-long-name') longName = value;
          else longLink = value;
        }
        // A pax global header ('g') sets defaults for the rest of the archive; none of its keys matter here.
        continue;
      }
      parts.push(block);
      let header = h;
      if (longName !== undefined) header = { ...header, name: longName };
      if (longLink !== undefined) header = { ...header, linkname: longLink };
      header = applyPax(header, pax);
      const headerBytes = parts.length === 1 ? block : Buffer.concat(parts);
      return { header, offset, headerBytes };
    }
  }

  private async readSecondZeroBlock(firstOffset: number): Promise<undefined> {
    const reader = this.reader;
    const got = await reader.fill(BLOCK_SIZE);
    if (got === 0) {
      // One zero block then end of input: tolerated as an end, but not a proper marker.
      this._terminated = false;
      return undefined;
    }
    if (got < BLOCK_SIZE) throw truncated('the end-of-archive marker', reader.position);
    const second = reader.take(BLOCK_SIZE);
    if (!decodeHeader(second).zeroBlock) {
      throw new TarError(`a lone zero block at offset ${firstOffset} is followed by data: the archive is corrupt`, { offset: firstOffset });
    }
    this._terminated = true;
    return undefined;
  }
}

function truncated(what: string, offset: number): TarError {
  return new TarError(`the tar archive ends in the middle of ${what} (at offset ${offset}): the input was truncated`, { offset });
}

/** State of one entry's body, shared between the extractor (which finishes it) and the consumer. */
class Body {
  private remaining: number;
  private iterated = false;
  private done = false;
  // Bytes of the body were discarded because the extractor moved on while the consumer was reading it.
  private lost = false;
  readonly api: TarEntryBody;

  constructor(
    private readonly reader: ChunkReader,
    private readonly size: number,
    private readonly offset: number,
  ) {
    this.remaining = size;
    this.api = {
      size,
      [Symbol.asyncIterator]: () => this.iterate(),
      skip: () => this.skipRest(),
    };
  }

  private async *iterate(): AsyncGenerator<Buffer> {
    if (this.iterated) throw new StateError('an entry body can be read only once');
    this.iterated = true;
    if (this.done) throw new StateError('this entry body was already skipped: the extractor moved on');
    for (;;) {
      if (this.lost) throw new StateError('this entry body was skipped: the extractor moved on to the next entry');
      if (this.remaining === 0) return;
      const chunk = await this.reader.next(this.remaining);
      if (chunk === undefined) throw this.truncatedError();
      this.remaining -= chunk.length;
      yield chunk;
    }
  }

  private truncatedError(): TarError {
    return new TarError(
      `the tar archive ends in the middle of an entry body (entry at offset ${this.offset}, ${this.remaining} of ${this.size} bytes missing): the input was truncated`,
      { offset: this.reader.position },
    );
  }

  private async skipRest(): Promise<void> {
    if (this.remaining > 0) {
      const n = await this.reader.skip(this.remaining);
      this.remaining -= n;
      if (this.remaining > 0) throw this.truncatedError();
    }
  }

  /** Skips what is left of the body and its padding. */
  async finish(): Promise<void> {
    if (this.iterated && this.remaining > 0) this.lost = true;
    await this.skipRest();
    this.done = true;
    const pad = paddingSize(this.size);
    if (pad > 0 && (await this.reader.skip(pad)) < pad) {
      throw new TarError(`the tar archive ends in the padding after the entry at offset ${this.offset}: the input was truncated`, {
        offset: this.reader.position,
      });
    }
  }
}

/**
 * Starts extracting a tar archive from an async byte source (a Readable, a socket's CopyData payloads...).
 * See {@link TarExtractor}.
 */
export function extractTar(source: AsyncIterable<Buffer | Uint8Array>, options?: ExtractOptions): TarExtractor {
  return new TarExtractor(source, options);
}

/**
 * Reads a whole (small) body into one Buffer. Throws a {@link TarError} when it is longer than `maxBytes`,
 * since buffering is only acceptable for bounded entries such as `postgresql.auto.conf`.
 */
export async function readBody(body: TarEntryBody, maxBytes: number): Promise<Buffer> {
  if (body.size > maxBytes) throw new TarError(`entry of ${body.size} bytes is larger than the ${maxBytes} bytes this step buffers`);
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk);
  return Buffer.concat(parts, body.size);
}
