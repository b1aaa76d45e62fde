/**
 * The `INCREMENTAL.<relfile>` files of a PostgreSQL 17+ incremental backup (basebackup.c writes them,
 * pg_combinebackup's reconstruct.c reads them). Layout, every integer a uint32 in the byte order of the
 * server that wrote it:
 *
 * ```
 * magic 0xD3AE1F0D | block count N | truncation_block_length | N block numbers
 * | zero padding up to a multiple of BLCKSZ (only when N > 0) | N blocks of BLCKSZ bytes, in listed order
 * ```
 *
 * Block numbers are relative to the segment file (0 … RELSEG_SIZE-1). Pure: no I/O.
 * @module
 */
import { CombineError } from '../errors.js';

/** `INCREMENTAL_MAGIC` (basebackup_incremental.h). */
export const INCREMENTAL_MAGIC = 0xd3ae1f0d;
/** Name prefix of incremental files. */
export const INCREMENTAL_PREFIX = 'INCREMENTAL.';
/** `BLCKSZ` of standard builds. */
export const DEFAULT_BLOCK_SIZE = 8192;
/** `RELSEG_SIZE` of standard builds: blocks per 1 GiB segment file. */
export const DEFAULT_RELSEG_BLOCKS = 131072;

/** The parsed header of an incremental file. */
export interface IncrementalHeader {
  /** Relative block numbers of the blocks the file carries, in file order. */
  blockNumbers: number[];
  /**
   * The minimum length of the reconstructed file, in blocks: blocks below it that the file does not
   * carry come from older backups; blocks at or above it only exist if the file carries them.
   */
  truncationBlockLength: number;
  /** Bytes before the first block: 12 + 4·N, rounded up to a BLCKSZ multiple when N > 0. */
  headerLength: number;
}

/** Layout parameters; the defaults are those of standard PostgreSQL builds on this machine. */
export interface IncrementalLayout {
  /** @default 8192 */
  blockSize?: number;
  /** @default 131072 */
  relsegBlocks?: number;
  /** Byte order of the server that wrote the file. @default true (x86-64, arm64) */
  littleEndian?: boolean;
}

function layout(o: IncrementalLayout): Required<IncrementalLayout> {
  return {
    blockSize: o.blockSize ?? DEFAULT_BLOCK_SIZE,
    relsegBlocks: o.relsegBlocks ?? DEFAULT_RELSEG_BLOCKS,
    littleEndian: o.littleEndian ?? true,
  };
}

/**
 * The file an `INCREMENTAL.<name>` member rebuilds, for a path relative to the data directory
 * (tablespaces as `pg_tblspc/<oid>/...`); `undefined` for an ordinary file. The server sends only
 * relation files incrementally, and those live in `base/<db>`, `global` and tablespaces: an
 * `INCREMENTAL.x` anywhere else is an ordinary file (pg_combinebackup's process_directory_recursively).
 */
export function incrementalTarget(path: string): string | undefined {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash);
  const name = path.slice(slash + 1);
  if (!name.startsWith(INCREMENTAL_PREFIX) || name.length === INCREMENTAL_PREFIX.length) return undefined;
  if (!(dir.startsWith('base/') || dir === 'global' || dir.startsWith('pg_tblspc/'))) return undefined;
  return (slash < 0 ? '' : `${dir}/`) + name.slice(INCREMENTAL_PREFIX.length);
}

/** The header length for `n` blocks (basebackup_incremental.c GetIncrementalHeaderSize). */
export function incrementalHeaderLength(n: number, blockSize = DEFAULT_BLOCK_SIZE): number {
  const raw = 12 + 4 * n;
  return n > 0 && raw % blockSize !== 0 ? raw + blockSize - (raw % blockSize) : raw;
}

/**
 * Parse an incremental file's header from its first bytes.
 * @returns the header, or `{ need }`: the total number of bytes required to parse it (give at least that many).
 * @throws CombineError for a bad magic number, or a block count / truncation length / block number
 *   beyond the segment size (reconstruct.c's checks), naming `name`.
 */
export function parseIncrementalHeader(
  bytes: Uint8Array,
  name: string,
  options: IncrementalLayout = {},
): IncrementalHeader | { need: number } {
  const o = layout(options);
  if (bytes.length < 12) return { need: 12 };
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (off: number) => (o.littleEndian ? b.readUInt32LE(off) : b.readUInt32BE(off));
  const magic = u32(0);
  if (magic !== INCREMENTAL_MAGIC) {
    throw new CombineError(
      `file "${name}" has bad incremental magic number (0x${magic.toString(16)} not 0x${INCREMENTAL_MAGIC.toString(16)}): ` +
        'it is not an incremental file written by PostgreSQL 17+, or it is damaged',
      { path: name },
    );
  }
  const n = u32(4);
  if (n > o.relsegBlocks) {
    throw new CombineError(`file "${name}" has block count ${n} in excess of segment size ${o.relsegBlocks}: the file is damaged`, {
      path: name,
    });
  }
  const truncationBlockLength = u32(8);
  if (truncationBlockLength > o.relsegBlocks) {
    throw new CombineError(
      `file "${name}" has truncation block length ${truncationBlockLength} in excess of segment size ${o.relsegBlocks}: ` +
        'the file is damaged',
      { path: name },
    );
  }
  const need = 12 + 4 * n;
  if (bytes.length < need) return { need };
  const blockNumbers = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const blk = u32(12 + 4 * i);
    if (blk >= o.relsegBlocks) {
      throw new CombineError(`file "${name}" lists block ${blk}, beyond the segment size ${o.relsegBlocks}: the file is damaged`, {
        path: name,
      });
    }
    blockNumbers[i] = blk;
  }
  return { blockNumbers, truncationBlockLength, headerLength: incrementalHeaderLength(n, o.blockSize) };
}

/**
 * Feeds an incremental file's bytes in chunks of any size until its header is complete (for readers
 * that stream the file). Keeps only the header bytes.
 * @example
 * ```ts
 * const r = new IncrementalHeaderReader('base/5/INCREMENTAL.16384');
 * for await (const chunk of stream) if (r.push(chunk)) break;
 * r.header // { blockNumbers, truncationBlockLength, headerLength }
 * ```
 */
export class IncrementalHeaderReader {
  #parts: Buffer[] = [];
  #have = 0;
  #need = 12;
  #header: IncrementalHeader | undefined;
  /** Bytes consumed so far (header bytes only; padding and blocks are not consumed). */
  consumed = 0;

  constructor(
    private readonly name: string,
    private readonly options: IncrementalLayout = {},
  ) {}

  /** The header, once complete. */
  get header(): IncrementalHeader | undefined {
    return this.#header;
  }

  /** Add bytes; returns true once the header is complete (later bytes are ignored). */
  push(chunk: Uint8Array): boolean {
    if (this.#header) return true;
    let off = 0;
    while (!this.#header && off < chunk.length) {
      const take = Math.min(this.#need - this.#have, chunk.length - off);
      this.#parts.push(Buffer.from(chunk.subarray(off, off + take)));
      this.#have += take;
      off += take;
      this.consumed += take;
      if (this.#have < this.#need) break;
      const all = Buffer.concat(this.#parts);
      this.#parts = [all];
      const r = parseIncrementalHeader(all, this.name, this.options);
      if ('need' in r) this.#need = r.need;
      else this.#header = r;
    }
    if (this.#header) this.#parts = [];
    return this.#header !== undefined;
  }

  /**
   * The header after the last chunk.
   * @throws CombineError when the file ended inside its header.
   */
  finish(): IncrementalHeader {
    if (!this.#header) {
      throw new CombineError(
        `file "${this.name}" ends inside its incremental header (${this.#have} of ${this.#need} bytes): the file is truncated`,
        { path: this.name },
      );
    }
    return this.#header;
  }
}

/**
 * Build an incremental file (header, padding, blocks) as the server writes it: for tests and tools.
 * @param blocks one BLCKSZ buffer per entry of `blockNumbers`.
 */
export function encodeIncrementalFile(
  blockNumbers: readonly number[],
  truncationBlockLength: number,
  blocks: readonly Uint8Array[],
  options: IncrementalLayout = {},
): Buffer {
  const o = layout(options);
  if (blocks.length !== blockNumbers.length) throw new RangeError('one block per block number');
  const headerLength = incrementalHeaderLength(blockNumbers.length, o.blockSize);
  const out = Buffer.alloc(headerLength + blocks.length * o.blockSize);
  const w = (v: number, off: number) => (o.littleEndian ? out.writeUInt32LE(v, off) : out.writeUInt32BE(v, off));
  w(INCREMENTAL_MAGIC, 0);
  w(blockNumbers.length, 4);
  w(truncationBlockLength, 8);
  blockNumbers.forEach((b, i) => w(b, 12 + 4 * i));
  blocks.forEach((blk, i) => {
    if (blk.length !== o.blockSize) throw new RangeError(`block ${i} is ${blk.length} bytes, not ${o.blockSize}`);
    out.set(blk, headerLength + i * o.blockSize);
  });
  return out;
}
