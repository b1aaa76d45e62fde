// The INCREMENTAL.* file header: parsed whole, at every split, byte by byte, in 321-byte chunks and at
// random splits; damaged headers raise CombineError.
import { describe, expect, it } from 'vitest';
import {
  encodeIncrementalFile,
  incrementalHeaderLength,
  IncrementalHeaderReader,
  INCREMENTAL_MAGIC,
  parseIncrementalHeader,
} from '../../../src/combine/incremental-file.js';
import { splits } from '../helpers/splits.js';

const B = 8192;
const block = (seed: number) => Buffer.alloc(B, seed);

function feed(chunks: Buffer[]) {
  const r = new IncrementalHeaderReader('f');
  for (const c of chunks) if (r.push(c)) break;
  return r.finish();
}

describe('incremental file header', () => {
  const file = encodeIncrementalFile([7, 2, 100], 50, [block(1), block(2), block(3)]);
  const expected = { blockNumbers: [7, 2, 100], truncationBlockLength: 50, headerLength: B };

  it('round-trips and pads the header to BLCKSZ when it carries blocks', () => {
    expect(file.length).toBe(B + 3 * B);
    expect(file.readUInt32LE(0)).toBe(INCREMENTAL_MAGIC);
    expect(parseIncrementalHeader(file, 'f')).toEqual(expected);
    expect(file.subarray(B, 2 * B).equals(block(1))).toBe(true);
  });

  it('has no padding without blocks', () => {
    const empty = encodeIncrementalFile([], 9, []);
    expect(empty.length).toBe(12);
    expect(parseIncrementalHeader(empty, 'f')).toEqual({ blockNumbers: [], truncationBlockLength: 9, headerLength: 12 });
    expect(incrementalHeaderLength(2045)).toBe(B);
    expect(incrementalHeaderLength(2046)).toBe(2 * B);
  });

  it('asks for more bytes until complete', () => {
    expect(parseIncrementalHeader(file.subarray(0, 5), 'f')).toEqual({ need: 12 });
    expect(parseIncrementalHeader(file.subarray(0, 12), 'f')).toEqual({ need: 24 });
  });

  it('parses at every split, byte by byte, in 321-byte chunks and at random splits', () => {
    const head = file.subarray(0, 40);
    for (let i = 0; i <= head.length; i++) expect(feed([head.subarray(0, i), head.subarray(i)])).toEqual(expected);
    for (const [how, chunks] of splits(file)) expect(feed(chunks), how).toEqual(expected);
    // The header is the first 24 bytes: cut it finely as well.
    for (const [how, chunks] of splits(file, { maxChunk: 8, byteByByteMax: 0, chunkSizes: [] })) {
      expect(feed(chunks), how).toEqual(expected);
    }
  });

  it('big-endian layout', () => {
    const be = encodeIncrementalFile([1], 2, [block(0)], { littleEndian: false });
    expect(be.readUInt32BE(0)).toBe(INCREMENTAL_MAGIC);
    expect(parseIncrementalHeader(be, 'f', { littleEndian: false })).toEqual({
      blockNumbers: [1],
      truncationBlockLength: 2,
      headerLength: B,
    });
    expect(() => parseIncrementalHeader(be, 'f')).toThrow(/bad incremental magic/);
  });

  it('rejects damage with CombineError', () => {
    const bad = Buffer.from(file);
    bad.writeUInt32LE(0x12345678, 0);
    expect(() => parseIncrementalHeader(bad, 'x')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMBINE' }));
    const many = Buffer.from(file);
    many.writeUInt32LE(131073, 4);
    expect(() => parseIncrementalHeader(many, 'x')).toThrow(/block count 131073 in excess of segment size/);
    const trunc = Buffer.from(file);
    trunc.writeUInt32LE(131073, 8);
    expect(() => parseIncrementalHeader(trunc, 'x')).toThrow(/truncation block length/);
    const blk = Buffer.from(file);
    blk.writeUInt32LE(131072, 12);
    expect(() => parseIncrementalHeader(blk, 'x')).toThrow(/beyond the segment size/);
    const r = new IncrementalHeaderReader('short');
    r.push(file.subarray(0, 15));
    expect(() => r.finish()).toThrow(/ends inside its incremental header/);
  });
});
