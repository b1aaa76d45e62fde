/**
 * Finds the hardware CRC-32C of the optional package `@node-rs/crc32` (napi-rs; SSE 4.2 `crc32` on x86,
 * ARMv8 CRC), the instruction pg_verifybackup uses, several times faster than the JavaScript slice-by-8
 * in `crc32c.ts`. The package is optional: a platform without a binary, or an install
 * that left it out, gets `undefined` and the JavaScript implementation.
 * @module
 */
import { createRequire } from 'node:module';

/** The package providing the native CRC-32C. */
export const CRC32C_PACKAGE = '@node-rs/crc32';

/**
 * `crc32c_append`: continues a *finalised* CRC-32C (`FIN_CRC32C`'d, unsigned) over `data` and returns
 * the finalised result. PostgreSQL's running register is the complement of that value.
 */
export type Crc32cAppend = (data: Uint8Array, finalisedCrc: number) => number;

/** How the package is loaded: `require` by default, replaceable in tests. */
export type Crc32cModuleLoader = () => unknown;

const defaultLoader: Crc32cModuleLoader = () => createRequire(import.meta.url)(CRC32C_PACKAGE);

/** Where `require` finds the package from here (for worker threads, which load it themselves), or `undefined`. */
export function nativeCrc32cModulePath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve(CRC32C_PACKAGE);
  } catch {
    return undefined;
  }
}

/**
 * The native append function, or `undefined` when the package cannot be loaded or does not compute
 * CRC-32C with the semantics above (checked on the RFC 3720 check value and on a split input, so a
 * package whose `initialState` meant the raw register would be refused rather than trusted).
 */
export function loadNativeCrc32c(loader: Crc32cModuleLoader = defaultLoader): Crc32cAppend | undefined {
  let mod: unknown;
  try {
    mod = loader();
  } catch {
    return undefined;
  }
  const fn = (mod as { crc32c?: unknown } | null | undefined)?.crc32c;
  if (typeof fn !== 'function') return undefined;
  const append = (data: Uint8Array, crc: number): number => (fn as (d: Uint8Array, s: number) => number)(data, crc);
  try {
    const check = new TextEncoder().encode('123456789');
    if (append(check, 0) >>> 0 !== 0xe3069283) return undefined;
    if (append(check.subarray(4), append(check.subarray(0, 4), 0)) >>> 0 !== 0xe3069283) return undefined;
  } catch {
    return undefined;
  }
  return append;
}
