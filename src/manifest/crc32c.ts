/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum PostgreSQL uses for WAL records,
 * pg_control and the default backup manifest file checksums (`INIT_CRC32C` / `COMP_CRC32C` /
 * `FIN_CRC32C`). Node's `zlib.crc32` is the IEEE polynomial (zip, PNG), a different function. Runs of
 * 256 bytes or more go to the CPU's CRC instruction through the optional package `@node-rs/crc32`
 * when it loads (see `crc32c-native.ts`); shorter runs, and every run without the package, go through
 * the table-driven slice-by-8 below. No I/O.
 * @module
 */
import { loadNativeCrc32c, type Crc32cAppend, type Crc32cModuleLoader } from './crc32c-native.js';

const POLY = 0x82f63b78;

/** Eight 256-entry tables: `T[k][n]` is the CRC of byte `n` followed by `k` zero bytes. */
const TABLES: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** Typed arrays use the host's byte order; the word loop below assumes little-endian words. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Below this many bytes the JavaScript loop is as fast: a call into the native module has a fixed cost
 * that short inputs do not earn back, while a kilobyte already goes faster natively.
 * WAL records and pg_control are mostly short; data files come in large reads.
 */
const NATIVE_MIN_BYTES = 256;

/** `null`: not looked for yet (the package is loaded on the first long run, not at import). */
let nativeAppend: Crc32cAppend | undefined | null = null;
let nativeLoader: Crc32cModuleLoader | undefined;

function native(): Crc32cAppend | undefined {
  if (nativeAppend === null) nativeAppend = loadNativeCrc32c(nativeLoader);
  return nativeAppend;
}

/**
 * Which implementation runs of 256 bytes or more use: `native` (`@node-rs/crc32`, the
 * CPU's CRC instruction) or `js` (the package is missing or unusable). Loads the package if needed.
 */
export function crc32cImplementation(): 'native' | 'js' {
  return native() ? 'native' : 'js';
}

/**
 * @internal Tests: replace how the native package is loaded (`undefined` restores `require`), or
 * pass `null` to force the JavaScript implementation. The choice is made again on the next call.
 */
export function setCrc32cNativeLoader(loader: Crc32cModuleLoader | null | undefined): void {
  nativeLoader = loader ?? undefined;
  nativeAppend = loader === null ? undefined : null;
}

/**
 * Advance a running CRC-32C over `data`. The running value is the *un-finalised* register, as
 * PostgreSQL keeps it between `COMP_CRC32C` calls: start from {@link CRC32C_INIT} and pass the result
 * through {@link crc32cFinal} at the end.
 */
export function crc32cUpdate(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  if (end - start >= NATIVE_MIN_BYTES) {
    const append = native();
    // The native function continues a finalised CRC; the register is its complement (FIN_CRC32C is `^ 0xFFFFFFFF`).
    if (append) return ~append(start === 0 && end === data.length ? data : data.subarray(start, end), ~crc >>> 0);
  }
  return crc32cUpdateJs(crc, data, start, end);
}

/** {@link crc32cUpdate} always in JavaScript (slice-by-8). Exported for tests that compare the two. */
export function crc32cUpdateJs(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  const t = TABLES;
  let c = crc | 0;
  let i = start;
  if (LITTLE_ENDIAN && end - i >= 64) {
    // Whole 32-bit words through an aligned Int32Array view: two loads per 8 bytes instead of eight,
    // which outruns the byte loop. Unaligned leading bytes go one at a time first.
    while (((data.byteOffset + i) & 3) !== 0) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
    const pairs = (end - i) >>> 3;
    const w = new Int32Array(data.buffer, data.byteOffset + i, pairs * 2);
    for (let j = 0; j < w.length; j += 2) {
      const lo = c ^ w[j]!;
      const hi = w[j + 1]!;
      c =
        t[1792 + (lo & 0xff)]! ^
        t[1536 + ((lo >>> 8) & 0xff)]! ^
        t[1280 + ((lo >>> 16) & 0xff)]! ^
        t[1024 + (lo >>> 24)]! ^
        t[768 + (hi & 0xff)]! ^
        t[512 + ((hi >>> 8) & 0xff)]! ^
        t[256 + ((hi >>> 16) & 0xff)]! ^
        t[hi >>> 24]!;
    }
    i += pairs * 8;
  }
  // Bytes one at a time until 8 or fewer remain in multiples of 8: no alignment needed since we read bytes.
  const stop8 = end - ((end - i) & 7);
  while (i < stop8) {
    const lo = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/** The register value before any byte (`INIT_CRC32C`). */
export const CRC32C_INIT = -1;

/** Finalise a running CRC (`FIN_CRC32C`): an unsigned 32-bit value. */
export function crc32cFinal(crc: number): number {
  return (crc ^ -1) >>> 0;
}

/**
 * CRC-32C of one buffer, as an unsigned 32-bit number.
 * @example
 * ```ts
 * crc32c(Buffer.from('123456789')) // 0xE3069283
 * ```
 */
export function crc32c(data: Uint8Array): number {
  return crc32cFinal(crc32cUpdate(CRC32C_INIT, data));
}
