/**
 * Combining an incremental chain in place: the backups are applied oldest first to one directory, each
 * as it streams by, and the result is byte for byte what {@link planReconstruction} (pg_combinebackup's
 * reconstruct.c) makes of the same chain. Pure: {@link IncrementalApplier} turns the bytes of one
 * `INCREMENTAL.<name>` into length changes and positioned writes on the current file, and
 * {@link InPlaceChain} keeps, across the steps, what must be removed and which files combine would
 * refuse. The caller does the I/O.
 *
 * Why applying in order gives combine's bytes (B = BLCKSZ, N = the newest backup, F = the newest full
 * copy of a file before N, f(x) = floor(size(x) / B)). Combine builds a file sent incrementally in N as:
 * length max(trunc_N, highest block N lists + 1); a block N lists from N; any other block b < trunc_N
 * from the newest incremental after F that lists it, else from F when b < f(F), else zeros; every other
 * block zeros. The truncation lengths of the incrementals between F and N play no part. In place:
 * - F replaces the file whole.
 * - An incremental before N first cuts the file to f(file) blocks (only F's partial last block can go:
 *   combine never reads it), then writes its blocks, extending with zeros when a block lies past the
 *   end. It truncates nothing else: a later incremental may have a longer truncation length, and
 *   combine would then read those blocks from F. So after it, block b holds the newest incremental's
 *   copy if one listed it, else F's if b < f(F), else zeros or nothing (past the end).
 * - N's incremental cuts the file to min(f(file), trunc_N) blocks, sets the length to trunc_N blocks
 *   (zeros where the file was shorter: those blocks have no source), then writes its blocks. Every
 *   block is then exactly combine's.
 * - A file absent from a backup is removed after that backup was applied; so is anything not in the
 *   newest backup. A file sent in full replaces whatever was there.
 *
 * Failures are those of combine. Combine reads back only from N to the newest full copy, and only the
 * blocks it uses: a damaged incremental header, an incremental with no copy of the file in the backup
 * before it, or an incremental body that ends early fail it only when the file still depends on them
 * (no later full copy, the missing blocks used). In place they are noted against the file
 * ({@link InPlaceChain}) and reported after the newest backup, when the file still depends on them.
 * @module
 */
import { CombineError } from '../errors.js';
import { DEFAULT_BLOCK_SIZE, IncrementalHeaderReader, type IncrementalHeader, type IncrementalLayout } from './incremental-file.js';

/** One change to the file an incremental is applied to, in order. */
export type InPlaceOp =
  /** Cut or extend (with zeros) the file to `bytes`. */
  | { op: 'length'; bytes: number }
  /** Write `bytes` at `position` (past the end: the gap reads as zeros). A view of the pushed chunk. */
  | { op: 'write'; position: number; bytes: Uint8Array };

/**
 * The lengths an incremental applied in place sets before writing its blocks: the file is cut to
 * `keepBytes`, then set to `lengthBytes` (equal unless the newest backup's truncation length is longer).
 * @param sizeBytes the current file's size.
 * @param newest whether the incremental belongs to the newest backup of the chain.
 * @example
 * ```ts
 * inPlaceLengths(3 * 8192 + 100, { blockNumbers: [], truncationBlockLength: 1, headerLength: 12 }, false) // { keepBytes: 24576, lengthBytes: 24576 }
 * inPlaceLengths(3 * 8192 + 100, { blockNumbers: [], truncationBlockLength: 5, headerLength: 12 }, true) // { keepBytes: 24576, lengthBytes: 40960 }
 * ```
 */
export function inPlaceLengths(
  sizeBytes: number,
  header: IncrementalHeader,
  newest: boolean,
  blockSize = DEFAULT_BLOCK_SIZE,
): { keepBytes: number; lengthBytes: number } {
  const whole = Math.floor(sizeBytes / blockSize);
  if (!newest) return { keepBytes: whole * blockSize, lengthBytes: whole * blockSize };
  const trunc = header.truncationBlockLength;
  return { keepBytes: Math.min(whole, trunc) * blockSize, lengthBytes: trunc * blockSize };
}

/** What {@link IncrementalApplier.finish} found. */
export interface AppliedIncremental {
  header: IncrementalHeader;
  /** Blocks written whole; the listed blocks from this index on were missing (the body ended early). */
  completeBlocks: number;
}

/**
 * Applies one `INCREMENTAL.<name>` in place, fed its bytes in chunks of any size: after the header,
 * the length changes of {@link inPlaceLengths}, then one write per piece of each listed block at
 * `block * BLCKSZ`. Bytes after the last block are ignored, as combine ignores them.
 * @example
 * ```ts
 * const a = new IncrementalApplier('base/5/INCREMENTAL.16384', currentSize, true);
 * for await (const chunk of body) for (const op of a.push(chunk)) await perform(op);
 * const { header, completeBlocks } = a.finish();
 * ```
 */
export class IncrementalApplier {
  readonly #reader: IncrementalHeaderReader;
  readonly #blockSize: number;
  #header: IncrementalHeader | undefined;
  /** Bytes of the file consumed so far. */
  #position = 0;

  /**
   * @param name the member's name, for messages.
   * @param sizeBytes the size of the file it is applied to.
   * @param newest whether it belongs to the newest backup of the chain.
   */
  constructor(
    readonly name: string,
    private readonly sizeBytes: number,
    private readonly newest: boolean,
    readonly layout: IncrementalLayout = {},
  ) {
    this.#reader = new IncrementalHeaderReader(name, layout);
    this.#blockSize = layout.blockSize ?? DEFAULT_BLOCK_SIZE;
  }

  /**
   * The changes `chunk` makes, in order.
   * @throws CombineError when the header is damaged (see parseIncrementalHeader).
   */
  push(chunk: Uint8Array): InPlaceOp[] {
    const ops: InPlaceOp[] = [];
    let off = 0;
    if (this.#header === undefined) {
      const before = this.#reader.consumed;
      const done = this.#reader.push(chunk);
      off = this.#reader.consumed - before;
      this.#position += off;
      if (!done) return ops;
      this.#header = this.#reader.header!;
      const { keepBytes, lengthBytes } = inPlaceLengths(this.sizeBytes, this.#header, this.newest, this.#blockSize);
      if (keepBytes < this.sizeBytes) ops.push({ op: 'length', bytes: keepBytes });
      if (lengthBytes > keepBytes) ops.push({ op: 'length', bytes: lengthBytes });
    }
    const h = this.#header;
    const end = h.headerLength + h.blockNumbers.length * this.#blockSize;
    while (off < chunk.length && this.#position < end) {
      if (this.#position < h.headerLength) {
        // Padding up to the first block.
        const skip = Math.min(h.headerLength - this.#position, chunk.length - off);
        off += skip;
        this.#position += skip;
        continue;
      }
      const index = Math.floor((this.#position - h.headerLength) / this.#blockSize);
      const within = (this.#position - h.headerLength) % this.#blockSize;
      const take = Math.min(this.#blockSize - within, chunk.length - off);
      ops.push({ op: 'write', position: h.blockNumbers[index]! * this.#blockSize + within, bytes: chunk.subarray(off, off + take) });
      off += take;
      this.#position += take;
    }
    return ops;
  }

  /**
   * After the last chunk.
   * @throws CombineError when the bytes ended inside the header.
   */
  finish(): AppliedIncremental {
    const header = this.#header ?? this.#reader.finish();
    const blocks = Math.max(0, this.#position - header.headerLength);
    return { header, completeBlocks: Math.min(header.blockNumbers.length, Math.floor(blocks / this.#blockSize)) };
  }
}

/** Why combine would refuse a file, and the blocks it would find missing. */
interface FileTrouble {
  /** Combine fails on this file whatever the blocks (no older copy, a damaged header). */
  broken: CombineError | undefined;
  /** Blocks whose newest source ended before them (a short incremental body). */
  missing: Set<number>;
}

/**
 * The bookkeeping of a chain applied in place, over paths relative to the data directory (directories
 * and files, `/`-separated): what the directory holds, which paths each backup has, what to remove after
 * each backup, and which files combine would refuse. Pure. Call {@link begin}, then for every member of
 * that backup {@link directory}, {@link fullFile} or {@link incremental} (+ {@link applied} or
 * {@link headerFailed}), then {@link end}; after the newest backup, {@link finish}.
 */
export class InPlaceChain {
  /** Paths the directory holds (written, or made as a parent). */
  readonly #present = new Set<string>();
  /** Paths the current backup has (with their parents). */
  #seen = new Set<string>();
  readonly #trouble = new Map<string, FileTrouble>();
  #step = -1;

  /** @param backups the number of backups in the chain. */
  constructor(
    private readonly backups: number,
    private readonly blockSize = DEFAULT_BLOCK_SIZE,
  ) {}

  /** Whether the backup being applied is the newest. */
  get newest(): boolean {
    return this.#step === this.backups - 1;
  }

  /** Start applying backup `step` (0: the full backup). */
  begin(step: number): void {
    if (step !== this.#step + 1 || step >= this.backups) throw new RangeError(`backup ${step} after ${this.#step} of ${this.backups}`);
    this.#step = step;
    this.#seen = new Set();
  }

  #see(path: string): void {
    for (let p = path; p !== '' && !this.#seen.has(p); p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') {
      this.#seen.add(p);
      this.#present.add(p);
    }
  }

  /** The backup has this directory. */
  directory(path: string): void {
    this.#see(path);
  }

  /** The backup has this file whole: it replaces what was there. */
  fullFile(path: string): void {
    this.#see(path);
    this.#trouble.delete(path);
  }

  /**
   * The backup has `INCREMENTAL.<path>`: `apply` when the directory holds a copy it can be applied to;
   * `skip` (the file is noted as one combine refuses, unless a later backup replaces or drops it) when
   * there is none, or the copy there is already one combine would refuse.
   */
  incremental(path: string, incrementalName: string): 'apply' | 'skip' {
    const had = this.#present.has(path);
    this.#see(path);
    if (this.#trouble.get(path)?.broken) return 'skip';
    if (!had) {
      this.#trouble.set(path, {
        broken: new CombineError(
          `"${path}" is sent incrementally (${incrementalName}) in backup ${this.#step + 1} of the chain, but the backup before ` +
            `it has neither the file nor ${incrementalName.slice(incrementalName.lastIndexOf('/') + 1)}: that backup is not the one ` +
            'the next was taken against, or it is damaged',
          { path },
        ),
        missing: new Set(),
      });
      // Nothing is written for it: the directory still does not hold it.
      this.#present.delete(path);
      return 'skip';
    }
    return 'apply';
  }

  /** The incremental's header could not be read: combine fails on the file if it reads it. */
  headerFailed(path: string, error: CombineError): void {
    this.#trouble.set(path, { broken: error, missing: new Set() });
  }

  /** The incremental was applied: its blocks past `completeBlocks` were missing. */
  applied(path: string, { header, completeBlocks }: AppliedIncremental): void {
    let t = this.#trouble.get(path);
    if (this.newest && t) for (const b of t.missing) if (b >= header.truncationBlockLength) t.missing.delete(b);
    header.blockNumbers.forEach((b, i) => {
      if (i < completeBlocks) t?.missing.delete(b);
      else {
        t ??= { broken: undefined, missing: new Set() };
        this.#trouble.set(path, t);
        t.missing.add(b);
      }
    });
    if (t && t.broken === undefined && t.missing.size === 0) this.#trouble.delete(path);
  }

  /**
   * The backup was applied: the paths to remove (held, but not in this backup), deepest first.
   * Forgets them, and what was noted against them.
   */
  end(): string[] {
    const gone = [...this.#present].filter((p) => !this.#seen.has(p)).sort((a, b) => b.split('/').length - a.split('/').length);
    for (const p of gone) {
      this.#present.delete(p);
      this.#trouble.delete(p);
    }
    for (const p of this.#trouble.keys()) if (!this.#seen.has(p)) this.#trouble.delete(p);
    return gone;
  }

  /**
   * After the newest backup: the first reason combine would refuse the chain, if any.
   */
  finish(): CombineError | undefined {
    for (const [path, t] of this.#trouble) {
      if (t.broken) return t.broken;
      const first = Math.min(...t.missing);
      return new CombineError(
        `"${path}": block ${first} (byte ${first * this.blockSize}) is needed from an incremental file that ends before it: the backup is damaged`,
        { path },
      );
    }
    return undefined;
  }
}
