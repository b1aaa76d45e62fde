/**
 * Storage keys: the rules every backend applies, and their order. Pure.
 * @module
 */
import { ConfigError } from '../errors.js';

/** Longest key accepted, in UTF-8 bytes (S3's limit, minus room for a repository prefix). */
export const MAX_STORAGE_KEY_BYTES = 900;

/**
 * Segments that start with this are reserved for a backend's own temporary objects (the local backend's
 * files being written); keys may not use them, so a listing never confuses one with a finished object.
 */
export const RESERVED_SEGMENT_PREFIX = '.pgbb-';

/**
 * Throws {@link ConfigError} unless `key` is a valid storage key: not empty, `/`-separated segments that are
 * neither empty, `.` nor `..`, no leading or trailing `/`, no backslash or control character, no
 * segment starting with `.pgbb-`, at most {@link MAX_STORAGE_KEY_BYTES} UTF-8 bytes. These keys mean the
 * same thing as file paths below a directory and as object names below a prefix.
 */
export function checkStorageKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new ConfigError(`invalid storage key ${JSON.stringify(key)}: ${problem}`);
}

function keyProblem(key: string): string | undefined {
  if (key === '') return 'it is empty';
  if (Buffer.byteLength(key) > MAX_STORAGE_KEY_BYTES) return `it is longer than ${MAX_STORAGE_KEY_BYTES} bytes`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  if (/[\\\u0000-\u001f\u007f]/.test(key)) return 'it contains a backslash or a control character';
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty segment (leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
    if (segment.startsWith(RESERVED_SEGMENT_PREFIX)) return `segments starting with "${RESERVED_SEGMENT_PREFIX}" are reserved`;
  }
  return undefined;
}

/** Orders keys as object storage lists them: by their UTF-8 bytes (not by UTF-16 code units, as `<` does). */
export function compareStorageKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
