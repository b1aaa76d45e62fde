import { describe, expect, it } from 'vitest';
import type { CompressionError } from '../../../src/errors.js';
import { decodeLz4Block, Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { xxhash32, XxHash32 } from '../../../src/compress/xxhash32.js';
import { splits } from '../helpers/splits.js';
import { COMPRESS_SPLITS, mixedData, tool } from './fixtures.js';

function decode(chunks: Buffer[], options = {}): Buffer {
  const d = new Lz4FrameDecoder(options);
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...d.push(c));
  d.end();
  return Buffer.concat(out);
}

function decodeError(data: Buffer): CompressionError {
  try {
    decode([data]);
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
    return err as CompressionError;
  }
  throw new Error('decoded without error');
}

/** A frame header: FLG, BD, optional content size, HC computed with our xxhash32. */
function header(flg: number, bd: number, contentSize?: bigint, dictId?: number): Buffer {
  const desc = Buffer.alloc(2 + (contentSize !== undefined ? 8 : 0) + (dictId !== undefined ? 4 : 0));
  desc[0] = flg;
  desc[1] = bd;
  if (contentSize !== undefined) desc.writeBigUInt64LE(contentSize, 2);
  if (dictId !== undefined) desc.writeUInt32LE(dictId, desc.length - 4);
  const magic = Buffer.from([0x04, 0x22, 0x4d, 0x18]);
  return Buffer.concat([magic, desc, Buffer.from([(xxhash32(desc) >>> 8) & 0xff])]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

describe('xxhash32', () => {
  it('matches the reference values', () => {
    expect(xxhash32(Buffer.alloc(0))).toBe(0x02cc5d05);
    expect(xxhash32(Buffer.from('a'))).toBe(0x550d7456);
    expect(xxhash32(Buffer.from('abc'))).toBe(0x32d153ff);
    expect(xxhash32(Buffer.from('Nobody inspects the spammish repetition'))).toBe(0xe2293b2f);
    expect(xxhash32(Buffer.from('abc'), 1)).not.toBe(0x32d153ff);
  });
  it('gives the same digest however the input is split', () => {
    const data = mixedData(10_000);
    const whole = xxhash32(data);
    for (const [, chunks] of splits(data, COMPRESS_SPLITS)) {
      const h = new XxHash32();
      for (const c of chunks) h.update(c);
      expect(h.digest()).toBe(whole);
    }
  });
});

describe('Lz4FrameDecoder on frames from the lz4 tool', () => {
  const data = mixedData(600_000);
  const cases: [string, string[]][] = [
    ['default (independent 4 MiB blocks, content checksum)', []],
    ['-9 (HC)', ['-9']],
    ['linked 64 KiB blocks', ['-BD', '-B4']],
    ['linked blocks, block checksums, content size', ['-BD', '-B5', '-BX', '--content-size']],
    ['no content checksum', ['--no-frame-crc', '-B6']],
  ];
  for (const [name, args] of cases) {
    it(`decodes ${name} at every split`, () => {
      const compressed = tool('lz4', [...args, '-c'], data);
      for (const [how, chunks] of splits(compressed, COMPRESS_SPLITS)) {
        expect(decode(chunks).equals(data), how).toBe(true);
      }
    });
  }

  it('decodes concatenated frames and skips skippable frames', () => {
    const a = mixedData(100_000, 5);
    const b = mixedData(70_000, 9);
    const skippable = Buffer.concat([u32(0x184d2a53), u32(5), Buffer.from('hello')]);
    const stream = Buffer.concat([tool('lz4', ['-c'], a), skippable, tool('lz4', ['-BD', '-c'], b)]);
    for (const [how, chunks] of splits(stream, COMPRESS_SPLITS)) expect(decode(chunks).equals(Buffer.concat([a, b])), how).toBe(true);
  });

  it('decodes a tiny frame byte by byte, and an empty frame', () => {
    const small = Buffer.from('abcabcabcabcabcabcabcabcabcabcabcabcabc hello hello hello');
    const compressed = tool('lz4', ['-c'], small);
    for (const [how, chunks] of splits(compressed, COMPRESS_SPLITS)) expect(decode(chunks).equals(small), how).toBe(true);
    expect(decode([tool('lz4', ['-c'], Buffer.alloc(0))]).length).toBe(0);
  });

  it('reports corruption and truncation as CompressionError with an offset', () => {
    const compressed = tool('lz4', ['-BX', '-c'], data);
    expect(decodeError(Buffer.from('not lz4 at all')).message).toMatch(/bad magic number 0x20746f6e/);
    const badHc = Buffer.from(compressed);
    badHc[6] = (badHc[6]! + 1) & 0xff;
    expect(decodeError(badHc).message).toMatch(/header checksum mismatch/);
    const badBlock = Buffer.from(compressed);
    badBlock[200] = badBlock[200]! ^ 0x55;
    const e = decodeError(badBlock);
    expect(e.message).toMatch(/block checksum mismatch/);
    expect(e.algorithm).toBe('lz4');
    // The block after the 7-byte header and its 4-byte size.
    expect(e.offset).toBe(11);
    expect(decodeError(compressed.subarray(0, compressed.length - 3)).message).toMatch(/truncated lz4 data/);
    const noBlockCrc = Buffer.from(tool('lz4', ['-c'], data));
    noBlockCrc[noBlockCrc.length - 2] = noBlockCrc[noBlockCrc.length - 2]! ^ 1;
    expect(decodeError(noBlockCrc).message).toMatch(/content checksum mismatch/);
    // Without checking checksums the same bytes decode.
    expect(() => decode([noBlockCrc], { verifyChecksums: false })).not.toThrow();
    expect(decodeError(Buffer.from([0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0])).message).toMatch(/legacy lz4 format/);
    expect(decode([Buffer.concat([header(0x40, 0x40), u32(0)])]).length).toBe(0);
    expect(decodeError(header(0x40, 0x40)).message).toMatch(/^truncated lz4 data: the input ends inside a frame \(block-size\)/);
    expect(() => new Lz4FrameDecoder().end()).toThrow(/no lz4 frame found/);
  });

  it('checks the declared content size and the descriptor', () => {
    const block = Buffer.from('hello');
    const stored = Buffer.concat([u32(0x80000000 | block.length), block]);
    expect(decode([Buffer.concat([header(0x68, 0x40, 5n), stored, u32(0)])]).toString()).toBe('hello');
    expect(decodeError(Buffer.concat([header(0x68, 0x40, 6n), stored, u32(0)])).message).toMatch(/content size is 6 but 5 bytes/);
    expect(decodeError(Buffer.concat([header(0x80, 0x40), u32(0)])).message).toMatch(/unsupported lz4 frame version 2/);
    expect(decodeError(Buffer.concat([header(0x60, 0x30), u32(0)])).message).toMatch(/block size code 3/);
    expect(decodeError(Buffer.concat([header(0x61, 0x40, undefined, 7), u32(0)])).message).toMatch(/need a dictionary/);
    expect(decodeError(Buffer.concat([header(0x60, 0x40), u32(70_000), Buffer.alloc(10)])).message).toMatch(/exceeds the frame's 65536/);
  });
});

describe('decodeLz4Block', () => {
  it('copies overlapping matches (runs shorter than the match)', () => {
    // Literal "ab", then a match of 4 + 15 + 3 = 22 bytes at offset 2: "abab...".
    const block = Buffer.from([0x2f, 0x61, 0x62, 0x02, 0x00, 0x03, 0x10, 0x7a]);
    const dst = Buffer.alloc(64);
    const end = decodeLz4Block(block, dst, 0);
    expect(dst.subarray(0, end).toString()).toBe(`${'ab'.repeat(12)}z`);
  });
  it('reaches back into the prefix of linked blocks, and no further', () => {
    const dst = Buffer.alloc(32);
    dst.write('xyz', 0);
    // No literals, match offset 3 length 6, then a final literal "!".
    const block = Buffer.from([0x02, 0x03, 0x00, 0x10, 0x21]);
    expect(dst.subarray(3, decodeLz4Block(block, dst, 3)).toString()).toBe('xyzxyz!');
    expect(decodeLz4Block(Buffer.from([0x02, 0x04, 0x00, 0x10, 0x21]), Buffer.alloc(32), 3)).toBe(-1);
    expect(decodeLz4Block(Buffer.from([0x02, 0x00, 0x00, 0x10, 0x21]), Buffer.alloc(32), 3)).toBe(-1);
  });
  it('refuses output past the buffer and input cut short', () => {
    expect(decodeLz4Block(Buffer.from([0x50, 1, 2, 3, 4, 5]), Buffer.alloc(4), 0)).toBe(-1);
    expect(decodeLz4Block(Buffer.from([0x50, 1, 2]), Buffer.alloc(16), 0)).toBe(-1);
    expect(decodeLz4Block(Buffer.from([0x10, 0x61, 0x01]), Buffer.alloc(16), 0)).toBe(-1);
  });
});
