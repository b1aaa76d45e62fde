// The WebAssembly lz4 block compressor (src/compress/lz4-block.wat) on its own: the shipped bytes are
// the assembled source, and thousands of generated inputs come back from our frame decoder byte for
// byte, with the output area flush against the end of the module's memory so that any write past the
// room it was given traps instead of passing unseen.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LZ4_BLOCK_WASM_BASE64 } from '../../../src/compress/lz4-block-wasm.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';

const WAT = fileURLToPath(new URL('../../../src/compress/lz4-block.wat', import.meta.url));
const TABLE = 16384;
const PAGE = 65536;

interface Module {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  compress(src: number, n: number, dst: number, cap: number, probe: number): number;
}

/** WebAssembly's constructors (the project's TypeScript libraries do not declare them). */
const wasm = (
  globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object) => { exports: unknown } } }
).WebAssembly;

function instantiate(): Module {
  return new wasm.Instance(new wasm.Module(Buffer.from(LZ4_BLOCK_WASM_BASE64, 'base64'))).exports as Module;
}

/** A deterministic generator (xorshift32), so that a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Runs of random bytes, zeros, a small alphabet and copies from earlier at every distance up to 70,000. */
function generated(seed: number, size: number): Buffer {
  const rand = prng(seed);
  const out = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const run = Math.min(size - at, 1 + Math.floor(rand() ** 3 * 3000));
    const kind = Math.floor(rand() * 4);
    for (let i = 0; i < run; i++) {
      if (kind === 0) out[at + i] = Math.floor(rand() * 256);
      else if (kind === 1) out[at + i] = 0;
      else if (kind === 2) out[at + i] = 97 + Math.floor(rand() * 3);
      else {
        const distance = 1 + Math.floor(rand() ** 2 * 70_000);
        out[at + i] = at + i >= distance ? out[at + i - distance]! : 0x55;
      }
    }
    at += run;
  }
  return out;
}

/** One block as a frame (independent blocks, 4 MiB maximum, no checksums) for our decoder. */
function frameOf(block: Uint8Array): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(block.length);
  return Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73]), size, block, Buffer.alloc(4)]);
}

function decode(frame: Buffer): Buffer {
  const decoder = new Lz4FrameDecoder();
  const out = decoder.push(frame);
  decoder.end();
  return Buffer.concat(out);
}

/**
 * Compresses `input` with `cap` bytes of room that end exactly where the memory ends; returns the block,
 * or undefined when the module gave up (-1).
 */
function compressFlush(m: Module, input: Buffer, cap: number, probe: number): Buffer | undefined {
  // The module may read up to 4 bytes past the input: room for them before the output.
  const needed = TABLE + input.length + 4 + cap;
  const have = m.memory.buffer.byteLength;
  if (needed > have) m.memory.grow(Math.ceil((needed - have) / PAGE));
  const end = m.memory.buffer.byteLength;
  const dst = end - cap;
  const mem = new Uint8Array(m.memory.buffer);
  mem.set(input, TABLE);
  const r = m.compress(TABLE, input.length, dst, cap, probe);
  if (r < 0) return undefined;
  expect(r).toBeLessThanOrEqual(cap);
  return Buffer.from(mem.subarray(dst, dst + r));
}

describe('lz4 block WebAssembly module', () => {
  it('is what wat2wasm makes of lz4-block.wat (edit the .wat, then regenerate the base64)', () => {
    const assembled = execFileSync('wat2wasm', [WAT, '--output=-']);
    expect(assembled.toString('base64')).toBe(LZ4_BLOCK_WASM_BASE64);
  });

  it('gives back 2,000 generated inputs byte for byte, never writing past its room', () => {
    const m = instantiate();
    const rand = prng(20261206);
    let compressed = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const size = Math.floor(rand() ** 2 * 140_000);
      const input = generated(seed, size);
      // The frame writer's room (one byte less than the input: a block no smaller is stored), and
      // tighter rooms that make the module stop at every point of its output.
      for (const cap of [Math.max(0, size - 1), Math.floor(size * rand()), Math.floor(size / 3)]) {
        const block = compressFlush(m, input, cap, seed % 2 === 0 ? 32768 : 0);
        if (block === undefined) continue;
        compressed++;
        expect(decode(frameOf(block)).equals(input), `seed ${seed}, size ${size}, room ${cap}`).toBe(true);
      }
    }
    // Most inputs compress: the round trip was exercised, not only the refusals.
    expect(compressed).toBeGreaterThan(2000);
  });
});
