/**
 * Log sequence numbers (LSNs): 64-bit WAL positions.
 *
 * An {@link Lsn} is a *branded bigint*: it is a plain `bigint` at run time (so `<`, `===`,
 * `+` and `Map` keys work and cost nothing), and the brand keeps a random `bigint` from being
 * passed where a WAL position is expected without going through {@link parseLsn} or
 * {@link lsn}. Arithmetic on two LSNs gives a plain `bigint`; wrap it again with {@link lsn}
 * (or use {@link lsnAdd}) when the result is a position.
 *
 * Text form: PostgreSQL 13–18 print `%X/%X` (checked against 18.4: `IDENTIFY_SYSTEM` and
 * `pg_lsn` output are not zero-padded). The `%X/%08X` form arrives with the `LSN_FORMAT_ARGS`
 * change after 18 (PostgreSQL 19 development). {@link parseLsn} accepts both; {@link formatLsn}
 * prints `%X/%X` by default, as pg_basebackup 13–18 do, and `%X/%08X` with `padded: true`.
 * @module
 */
import { ConfigError, ProtocolError } from './errors.js';

declare const lsnBrand: unique symbol;

/** A WAL position (0 … 2^64−1), a branded `bigint`. Build one with {@link parseLsn} or {@link lsn}. */
export type Lsn = bigint & { readonly [lsnBrand]: true };

const MAX_LSN = (1n << 64n) - 1n;
/** `InvalidXLogRecPtr`: PostgreSQL's "no position". */
export const INVALID_LSN = 0n as Lsn;

/**
 * Brand a bigint as an LSN, checking its range.
 * @throws RangeError when `value` is negative or above 2^64−1.
 * @example
 * ```ts
 * const start = lsn(0x1000000n);
 * ```
 */
export function lsn(value: bigint | number): Lsn {
  const v = typeof value === 'number' ? BigInt(value) : value;
  if (v < 0n || v > MAX_LSN) throw new RangeError(`LSN out of range: ${v}`);
  return v as Lsn;
}

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parse `X/Y` (hex halves, 1–8 digits each; padded or not).
 * @param source `'config'` (default) throws {@link ConfigError} for user input; `'server'`
 *   throws {@link ProtocolError} when a server reply is malformed.
 * @example
 * ```ts
 * parseLsn('0/16B3748') === parseLsn('0/016B3748') // true
 * ```
 */
export function parseLsn(text: string, source: 'config' | 'server' = 'config'): Lsn {
  const m = LSN_RE.exec(text);
  if (!m) {
    const msg = `invalid LSN ${JSON.stringify(text)}: expected two hexadecimal halves like 0/16B3748`;
    throw source === 'server' ? new ProtocolError(`the server sent an ${msg}`) : new ConfigError(msg);
  }
  return ((BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`)) as Lsn;
}

/** Whether `text` is a syntactically valid LSN. */
export function isLsnText(text: string): boolean {
  return LSN_RE.test(text);
}

/** Options of {@link formatLsn}. */
export interface FormatLsnOptions {
  /** Zero-pad the low half to 8 digits (the post-18 `%X/%08X` style). @default false */
  padded?: boolean;
}

/**
 * Print an LSN as PostgreSQL 13–18 do: upper-case hex, `%X/%X`; `padded: true` gives `%X/%08X`.
 * @example
 * ```ts
 * formatLsn(lsn(0x16B3748n)) // '0/16B3748'
 * formatLsn(lsn(0x16B3748n), { padded: true }) // '0/016B3748'
 * ```
 */
export function formatLsn(value: Lsn | bigint, options: FormatLsnOptions = {}): string {
  const hi = (value >> 32n).toString(16).toUpperCase();
  const lo = (value & 0xffffffffn).toString(16).toUpperCase();
  return `${hi}/${options.padded === true ? lo.padStart(8, '0') : lo}`;
}

/** Three-way comparison: negative, zero or positive. Usable as an `Array.sort` comparator. */
export function compareLsn(a: Lsn | bigint, b: Lsn | bigint): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `a + bytes`, range-checked. */
export function lsnAdd(a: Lsn, bytes: bigint | number): Lsn {
  return lsn(a + (typeof bytes === 'number' ? BigInt(bytes) : bytes));
}

/** `a - b` in bytes (may be negative when `a < b`). */
export function lsnDiff(a: Lsn | bigint, b: Lsn | bigint): bigint {
  return a - b;
}

/** `a - bytes`, range-checked. */
export function lsnSubtract(a: Lsn, bytes: bigint | number): Lsn {
  return lsn(a - (typeof bytes === 'number' ? BigInt(bytes) : bytes));
}
