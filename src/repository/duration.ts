/**
 * Durations as operators write them for `--if-older-than` and retention: a whole number and a unit,
 * several in a row (`7d`, `12h`, `1d12h`, `90m`, `30s`, `2w`). Pure.
 * @module
 */
import { ConfigError } from '../errors.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Milliseconds in `text` (`7d` → 604800000). Units: `s`, `m` (minutes), `h`, `d`, `w`. Throws
 * {@link pg-basebackup/errors!ConfigError} for anything else, or for zero.
 *
 * @example
 * ```ts
 * parseDuration('1d12h'); // 129600000
 * ```
 */
export function parseDuration(text: string): number {
  const parts = /^(?:\d+[smhdw])+$/.test(text) ? [...text.matchAll(/(\d+)([smhdw])/g)] : [];
  if (parts.length === 0) {
    throw new ConfigError(`invalid duration "${text}": write a number and a unit (s, m, h, d, w), e.g. 7d, 12h or 1d12h`);
  }
  let ms = 0;
  for (const [, count, unit] of parts) ms += Number(count) * (UNIT_MS[unit as string] as number);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new ConfigError(`invalid duration "${text}": it must be more than zero and finite`);
  return ms;
}
