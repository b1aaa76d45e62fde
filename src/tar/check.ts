/**
 * A tar structure check for archives that are stored as they come (`pg_basebackup -Ft`):
 * headers are decoded and their checksums verified, bodies are only counted, so a corrupt
 * archive fails the backup instead of being kept as a finished `base.tar`. Pure: fed chunks,
 * no I/O, no copies of bodies (only an unfinished header block, and pax records, which are
 * small and bounded, are kept).
 * @module
 */
import { TarError } from '../errors.js';
import { BLOCK_SIZE, bodySize, decodeHeader, paddingSize } from './header.js';
import { paxOverrides, parsePax } from './pax.js';

/** Largest pax or GNU long-name record accepted, as in the extractor. */
const MAX_METADATA_BYTES = 1024 * 1024;

type Phase =
  /** Collecting a header block. */
  | 'header'
  /** Passing a body (and its padding) without looking at it. */
  | 'body'
  /** Collecting a pax record's body (it may change the next entry's size). */
  | 'pax'
  /** One zero block seen: the next must be zero too. */
  | 'zero'
  /** The end-of-archive marker was seen: only zero bytes may follow. */
  | 'ended';

/**
 * Feed an archive's bytes in order with {@link TarStructureChecker.push}, then call
 * {@link TarStructureChecker.end}. Either throws a `TarError` naming the offset of the first
 * thing wrong: a header whose checksum or numeric fields are bad, a lone zero block followed
 * by data, data after the end-of-archive marker, or an archive that stops inside an entry.
 * An archive without the end marker (PostgreSQL 13/14 send none) is accepted.
 *
 * @example
 * ```ts
 * const check = new TarStructureChecker();
 * for await (const chunk of archive) {
 *   check.push(chunk);
 *   await out.write(chunk);
 * }
 * check.end();
 * ```
 */
export class TarStructureChecker {
  #phase: Phase = 'header';
  /** Bytes consumed so far: the offset of the next byte. */
  #offset = 0;
  readonly #block = Buffer.alloc(BLOCK_SIZE);
  #blockFill = 0;
  #blockOffset = 0;
  /** Bytes of body and padding still to pass (phase 'body' and 'pax'). */
  #remaining = 0;
  #pax: Buffer[] = [];
  #paxSize = 0;
  #paxOffset = 0;
  /** The size a pax record set for the next entry. */
  #nextSize: number | undefined;
  #entries = 0;
  /** Offset of the end-of-archive marker's first zero block, once that block is complete. */
  #markerOffset: number | undefined;

  /** Whether the end-of-archive marker was seen. */
  get terminated(): boolean {
    return this.#phase === 'ended';
  }

  /** Entries (files, directories, links) seen so far; pax and long-name records not counted. */
  get entries(): number {
    return this.#entries;
  }

  /** Bytes fed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Offset of the end-of-archive marker, once its first zero block is complete. */
  get markerOffset(): number | undefined {
    return this.#markerOffset;
  }

  /**
   * The offset up to which the bytes fed are known to be archive content, not part of the
   * end-of-archive marker: the start of the marker once its first zero block is complete, else the
   * start of a header block still being collected (it may turn out to be the marker), else
   * {@link offset}. Lets a writer pass an archive through while holding its marker back (to append
   * entries after it, as the manifest in a tar on standard output), without parsing it twice.
   */
  get contentEnd(): number {
    if (this.#markerOffset !== undefined) return this.#markerOffset;
    return this.#phase === 'header' && this.#blockFill > 0 ? this.#blockOffset : this.#offset;
  }

  /** Check the next bytes of the archive. @throws TarError at the first structural fault. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      switch (this.#phase) {
        case 'body': {
          const n = Math.min(this.#remaining, chunk.length - at);
          this.#remaining -= n;
          at += n;
          this.#offset += n;
          if (this.#remaining === 0) this.#phase = 'header';
          break;
        }
        case 'pax': {
          const n = Math.min(this.#remaining, chunk.length - at);
          // Copied: a record is small, and a view would pin the socket chunk.
          this.#pax.push(Buffer.from(chunk.subarray(at, at + n)));
          this.#remaining -= n;
          at += n;
          this.#offset += n;
          if (this.#remaining === 0) this.#endPax();
          break;
        }
        case 'ended': {
          const n = chunk.length - at;
          for (let i = at; i < chunk.length; i++) {
            if (chunk[i] !== 0) {
              throw new TarError(`data after the end-of-archive marker at offset ${this.#offset + i - at}: the archive is corrupt`, {
                offset: this.#offset + i - at,
              });
            }
          }
          at += n;
          this.#offset += n;
          break;
        }
        case 'header':
        case 'zero': {
          if (this.#blockFill === 0) this.#blockOffset = this.#offset;
          const n = Math.min(BLOCK_SIZE - this.#blockFill, chunk.length - at);
          chunk.copy(this.#block, this.#blockFill, at, at + n);
          this.#blockFill += n;
          at += n;
          this.#offset += n;
          if (this.#blockFill === BLOCK_SIZE) {
            this.#blockFill = 0;
            this.#onBlock();
          }
          break;
        }
      }
    }
  }

  /** The archive's bytes are all in. @throws TarError when it stops inside an entry. */
  end(): void {
    if (this.#phase === 'ended' || this.#phase === 'zero') return;
    if (this.#phase === 'header' && this.#blockFill === 0) {
      if (this.#nextSize !== undefined) throw truncated('an entry (after its extended header)', this.#offset);
      return;
    }
    const what = this.#phase === 'header' ? 'a header block' : this.#phase === 'pax' ? 'an extended header' : 'an entry body';
    throw truncated(what, this.#phase === 'header' ? this.#blockOffset : this.#offset);
  }

  #onBlock(): void {
    const offset = this.#blockOffset;
    const decoded = decodeHeader(this.#block);
    if (this.#phase === 'zero') {
      if (!decoded.zeroBlock) {
        throw new TarError(`a lone zero block at offset ${offset - BLOCK_SIZE} is followed by data: the archive is corrupt`, {
          offset: offset - BLOCK_SIZE,
        });
      }
      this.#phase = 'ended';
      return;
    }
    if (decoded.zeroBlock) {
      if (this.#nextSize !== undefined) {
        throw new TarError(`zero block at offset ${offset} right after an extended header`, { offset });
      }
      this.#phase = 'zero';
      this.#markerOffset = offset;
      return;
    }
    if (!decoded.checksumValid) {
      throw new TarError(`bad tar header checksum at offset ${offset}: not a tar archive, or the data is corrupt`, { offset });
    }
    if (decoded.invalidField !== undefined) {
      throw new TarError(`bad "${decoded.invalidField}" field in the tar header at offset ${offset}`, { offset });
    }
    const h = decoded.header;
    if (h.type === 'pax-header' || h.type === 'pax-global-header' || h.type === 'gnu-long-name' || h.type === 'gnu-long-linkname') {
      if (h.size > MAX_METADATA_BYTES) {
        throw new TarError(`extended header of ${h.size} bytes at offset ${offset} exceeds the ${MAX_METADATA_BYTES}-byte limit`, {
          offset,
        });
      }
      this.#paxSize = h.type === 'pax-header' ? h.size : -1;
      this.#paxOffset = offset;
      this.#pax = [];
      this.#remaining = h.size + paddingSize(h.size);
      if (h.type === 'pax-header') {
        this.#phase = 'pax';
        if (this.#remaining === 0) this.#endPax();
      } else {
        // A long name or link: its content does not change sizes; the entry header follows.
        this.#nextSize ??= Number.NaN;
        this.#phase = this.#remaining === 0 ? 'header' : 'body';
      }
      return;
    }
    const size = this.#nextSize !== undefined && !Number.isNaN(this.#nextSize) ? this.#nextSize : h.size;
    this.#nextSize = undefined;
    this.#entries++;
    const body = bodySize({ type: h.type, size });
    this.#remaining = body + paddingSize(body);
    this.#phase = this.#remaining === 0 ? 'header' : 'body';
  }

  #endPax(): void {
    const content = Buffer.concat(this.#pax).subarray(0, this.#paxSize);
    this.#pax = [];
    const parsed = parsePax(content);
    if (!parsed.valid) {
      throw new TarError(`bad pax header at offset ${this.#paxOffset}: ${parsed.error ?? ''}`, { offset: this.#paxOffset });
    }
    const size = paxOverrides(parsed.records).size;
    if (size !== undefined) this.#nextSize = size;
    else this.#nextSize ??= Number.NaN;
    this.#phase = 'header';
  }
}

function truncated(what: string, offset: number): TarError {
  return new TarError(`the tar archive ends in the middle of ${what} (at offset ${offset}): the data was cut short`, { offset });
}
