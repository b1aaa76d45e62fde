import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createChecksum } from '../../../src/manifest/checksum.js';
import {
  crc32c,
  crc32cFinal,
  crc32cImplementation,
  crc32cUpdate,
  crc32cUpdateJs,
  CRC32C_INIT,
  setCrc32cNativeLoader,
} from '../../../src/manifest/crc32c.js';
import { loadNativeCrc32c } from '../../../src/manifest/crc32c-native.js';

/** Deterministic pseudo-random numbers (xorshift32), so that a failure can be replayed. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Running CRC over `data` cut at `cuts`, the way a stream of reads feeds it. */
function crcInPieces(update: typeof crc32cUpdate, data: Uint8Array, cuts: number[]): number {
  let c = CRC32C_INIT;
  let from = 0;
  for (const to of [...cuts, data.length]) {
    c = update(c, data, from, to);
    from = to;
  }
  return crc32cFinal(c);
}

const nativeHere = loadNativeCrc32c() !== undefined;

afterEach(() => setCrc32cNativeLoader(undefined));

describe('native CRC-32C (@node-rs/crc32)', () => {
  it.skipIf(!nativeHere)('is used here, where the optional package is installed', () => {
    expect(crc32cImplementation()).toBe('native');
  });

  it.skipIf(!nativeHere)('agrees with the JavaScript implementation on random inputs split at random points', () => {
    const next = rng(0x5eed);
    const pool = randomBytes(1 << 20);
    for (let round = 0; round < 300; round++) {
      // Lengths around the native threshold (256) and well past it; odd offsets for unaligned views.
      const len = round < 100 ? next(600) : next(200_000);
      const off = next(64);
      const data = pool.subarray(off, off + len);
      const cuts = Array.from({ length: next(6) }, () => next(len + 1)).sort((a, b) => a - b);
      const want = crcInPieces(crc32cUpdateJs, data, cuts);
      expect(crcInPieces(crc32cUpdate, data, cuts)).toBe(want);
      expect(crc32cFinal(crc32cUpdateJs(CRC32C_INIT, data))).toBe(want);
      expect(crc32c(data)).toBe(want);
      // A plain Uint8Array (not a Buffer) goes through the same path.
      expect(crc32c(new Uint8Array(data))).toBe(want);
    }
  });

  it.skipIf(!nativeHere)('continues a register left by the JavaScript path and the other way round (INIT/COMP/FIN)', () => {
    const data = randomBytes(5000);
    const want = crc32cFinal(crc32cUpdateJs(CRC32C_INIT, data));
    // 100 bytes (JS) + 4000 (native) + 900 (native) and 10 + 4990.
    expect(crc32cFinal(crc32cUpdate(crc32cUpdate(crc32cUpdate(CRC32C_INIT, data, 0, 100), data, 100, 4100), data, 4100))).toBe(want);
    expect(crc32cFinal(crc32cUpdate(crc32cUpdate(CRC32C_INIT, data, 0, 10), data, 10))).toBe(want);
    expect(createChecksum('CRC32C').update(data.subarray(0, 3000)).update(data.subarray(3000)).hex()).toBe(
      Buffer.from(new Uint32Array([want]).buffer).toString('hex'),
    );
  });
});

describe('CRC-32C without the native package', () => {
  const data = randomBytes(70_000);
  const want = crc32cFinal(crc32cUpdateJs(CRC32C_INIT, data));

  it('falls back to JavaScript when the package cannot be loaded', () => {
    setCrc32cNativeLoader(() => {
      throw Object.assign(new Error("Cannot find module '@node-rs/crc32'"), { code: 'MODULE_NOT_FOUND' });
    });
    expect(crc32cImplementation()).toBe('js');
    expect(crc32c(data)).toBe(want);
    expect(crcInPieces(crc32cUpdate, data, [1, 300, 40_000])).toBe(want);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('refuses a module without crc32c, or one whose initial state is not the finalised CRC', () => {
    setCrc32cNativeLoader(() => ({}));
    expect(crc32cImplementation()).toBe('js');
    // Treats the initial state as the raw register: right for whole buffers, wrong when continued.
    const wrong = {
      crc32c: (d: Uint8Array, s = 0) => crc32cFinal(crc32cUpdateJs(s === 0 ? CRC32C_INIT : s, d)),
    };
    setCrc32cNativeLoader(() => wrong);
    expect(crc32cImplementation()).toBe('js');
    expect(crcInPieces(crc32cUpdate, data, [5000])).toBe(want);
  });

  it('null forces JavaScript; undefined goes back to the package', () => {
    setCrc32cNativeLoader(null);
    expect(crc32cImplementation()).toBe('js');
    expect(crc32c(data)).toBe(want);
    setCrc32cNativeLoader(undefined);
    expect(crc32cImplementation()).toBe(nativeHere ? 'native' : 'js');
    expect(crc32c(data)).toBe(want);
  });

  it('uses an injected implementation for long runs only', () => {
    let calls = 0;
    const spy = loadNativeCrc32c(() => ({
      crc32c: (d: Uint8Array, s = 0) => {
        calls++;
        return crc32cFinal(crc32cUpdateJs(~s, d));
      },
    }));
    expect(spy).toBeDefined();
    setCrc32cNativeLoader(() => ({ crc32c: spy }));
    expect(crc32cImplementation()).toBe('native');
    calls = 0;
    expect(crc32c(data.subarray(0, 255))).toBe(crc32cFinal(crc32cUpdateJs(CRC32C_INIT, data.subarray(0, 255))));
    expect(calls).toBe(0);
    expect(crc32c(data)).toBe(want);
    expect(calls).toBe(1);
  });
});
