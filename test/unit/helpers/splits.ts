// The one way codec tests feed a fixture (STYLE.md practice 2): whole, byte by byte, in 321-byte
// chunks and at seeded random splits, so a failing split can be replayed from its name.

/** A deterministic pseudo-random generator (mulberry32), so failing splits can be reproduced. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `buf` cut into views of `size` bytes (the last may be shorter). */
export function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** `buf` cut into views of 1..`maxChunk` bytes, the lengths drawn from `prng(seed)`. */
export function randomSplit(buf: Buffer, seed: number, maxChunk = defaultMaxChunk(buf)): Buffer[] {
  const rand = prng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = 1 + Math.floor(rand() * maxChunk);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** About eight pieces on average, whatever the fixture's size. */
function defaultMaxChunk(buf: Buffer): number {
  return Math.max(2, Math.min(1 << 16, Math.ceil(buf.length / 4)));
}

export interface SplitOptions {
  /**
   * Largest fixture still fed byte by byte: one push per byte makes big fixtures slow and adds nothing
   * the 321-byte and random feeds do not already cover.
   * @default Infinity
   */
  byteByByteMax?: number;
  /**
   * Fixed chunk sizes fed after the byte-by-byte one.
   * @default [321]
   */
  chunkSizes?: number[];
  /**
   * Seeds of the random splits, one feed each.
   * @default [1, 2, 3, 4, 5]
   */
  seeds?: number[];
  /**
   * Largest random piece.
   * @default a quarter of the fixture (at least 2, at most 64 KiB)
   */
  maxChunk?: number;
}

/** A named way to cut a buffer into the chunks a codec is fed. */
export type Splitter = [name: string, split: (buf: Buffer) => Buffer[]];

/**
 * Every way to feed a buffer, as named functions: for fixtures fed piecewise (each archive of a
 * response, each WAL segment), where one name covers several buffers. A buffer over `byteByByteMax`
 * is fed whole by the byte-by-byte splitter.
 */
export function splitters(o: SplitOptions = {}): Splitter[] {
  const max = o.byteByByteMax ?? Infinity;
  const out: Splitter[] = [['whole', (buf) => [buf]]];
  if (max > 0) out.push(['byte by byte', (buf) => (buf.length <= max ? chunked(buf, 1) : [buf])]);
  for (const size of o.chunkSizes ?? [321]) out.push([`${size}-byte chunks`, (buf) => chunked(buf, size)]);
  for (const seed of o.seeds ?? [1, 2, 3, 4, 5]) {
    out.push([`random split (seed ${seed})`, (buf) => randomSplit(buf, seed, o.maxChunk ?? defaultMaxChunk(buf))]);
  }
  return out;
}

/** Every way to feed `buf`: `[name, chunks]` pairs (the chunks are views of `buf`). */
export function splits(buf: Buffer, o: SplitOptions = {}): [string, Buffer[]][] {
  const byteByByte = buf.length <= (o.byteByByteMax ?? Infinity);
  return splitters(o)
    .filter(([name]) => byteByByte || name !== 'byte by byte')
    .map(([name, split]) => [name, split(buf)]);
}
