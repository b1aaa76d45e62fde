/**
 * `-Z/--compress` and `-z/--gzip`: PostgreSQL's compression specification
 * grammar, `[client-|server-]METHOD[:DETAIL]` or a bare level, where DETAIL is a
 * bare integer level or a comma list of `level=N`, `workers=N`, `long[=BOOL]`.
 * Pure; validation follows src/common/compression.c so that what pg_basebackup
 * accepts we accept, with the same reasons for refusing.
 * @module
 */

/** Compression algorithms PostgreSQL knows for base backups. */
export type CompressionAlgorithm = 'none' | 'gzip' | 'lz4' | 'zstd';

/** Where compression runs: on the server (BASE_BACKUP `COMPRESSION`) or in pgbb. */
export type CompressionLocation = 'client' | 'server';

/** A parsed and validated compression specification. */
export interface CompressionSpec {
  algorithm: CompressionAlgorithm;
  /** `client` unless the user wrote `server-`. */
  location: CompressionLocation;
  /** Whether the user wrote `client-` or `server-` explicitly. */
  locationExplicit: boolean;
  /** Level; the algorithm's default when not given (gzip -1 = zlib default, lz4 0 = fast, zstd 3). */
  level: number;
  /** Whether the level was given explicitly. */
  levelExplicit: boolean;
  /** zstd worker threads (`workers=N`). */
  workers?: number;
  /** zstd long-distance matching (`long`). */
  longDistance?: boolean;
  /** The DETAIL text as written, to pass through to the server for `server-` compression. */
  detail?: string;
}

/** No compression. */
export const NO_COMPRESSION: CompressionSpec = Object.freeze({
  algorithm: 'none', location: 'client', locationExplicit: false, level: 0, levelExplicit: false,
}) as CompressionSpec;

const DEFAULT_LEVEL: Record<CompressionAlgorithm, number> = { none: 0, gzip: -1, lz4: 0, zstd: 3 };
// zstd's range is the library's ZSTD_minCLevel()..ZSTD_maxCLevel() (1.5.x: -131072..22).
const LEVEL_RANGE: Record<CompressionAlgorithm, [number, number]> = {
  none: [1, 1], gzip: [1, 9], lz4: [1, 12], zstd: [-131072, 22],
};

/** strtol-like: an optional sign and digits, the whole string. */
const INTEGER = /^[+-]?\d+$/;
/** C's strtol skips leading white space; a bare `-Z " 5"` is still a level. */
const isInteger = (s: string) => INTEGER.test(s.replace(/^\s+/, ''));

/**
 * Parse and validate a `-Z` value. Returns the spec or a message naming what is wrong
 * (the caller turns it into a usage error).
 *
 * @example
 * ```ts
 * parseCompressOption('server-zstd:level=5,workers=4');
 * // { ok: true, spec: { algorithm: 'zstd', location: 'server', level: 5, workers: 4, ... } }
 * parseCompressOption('5'); // gzip level 5, as pg_basebackup: a bare integer means gzip (0 means none)
 * ```
 */
export function parseCompressOption(option: string): { ok: true; spec: CompressionSpec } | { ok: false; message: string } {
  let rest = option;
  let location: CompressionLocation = 'client';
  let locationExplicit = false;
  if (rest.startsWith('server-')) {
    location = 'server';
    locationExplicit = true;
    rest = rest.slice(7);
  } else if (rest.startsWith('client-')) {
    locationExplicit = true;
    rest = rest.slice(7);
  }
  let algorithmName: string;
  let detail: string | undefined;
  if (isInteger(rest)) {
    // Backward compatibility (pg_basebackup ≤ 14 took only a gzip level): 0 means none.
    const n = Number.parseInt(rest, 10);
    algorithmName = n === 0 ? 'none' : 'gzip';
    detail = n === 0 ? undefined : rest.trim();
  } else {
    const colon = rest.indexOf(':');
    algorithmName = colon === -1 ? rest : rest.slice(0, colon);
    detail = colon === -1 ? undefined : rest.slice(colon + 1);
  }
  if (!(algorithmName in DEFAULT_LEVEL)) {
    return { ok: false, message: `unrecognized compression algorithm: "${algorithmName}"` };
  }
  const algorithm = algorithmName as CompressionAlgorithm;
  const parsed = parseDetail(algorithm, detail);
  if (!parsed.ok) return { ok: false, message: `invalid compression specification: ${parsed.message}` };
  const spec: CompressionSpec = { ...parsed.spec, location, locationExplicit };
  if (detail !== undefined) spec.detail = detail;
  const invalid = validate(spec);
  if (invalid) return { ok: false, message: `invalid compression specification: ${invalid}` };
  return { ok: true, spec };
}

type DetailSpec = Omit<CompressionSpec, 'location' | 'locationExplicit'>;

function parseDetail(algorithm: CompressionAlgorithm, detail: string | undefined):
  { ok: true; spec: DetailSpec } | { ok: false; message: string } {
  const spec: DetailSpec = { algorithm, level: DEFAULT_LEVEL[algorithm], levelExplicit: false };
  if (detail === undefined) return { ok: true, spec };
  if (isInteger(detail)) {
    spec.level = Number.parseInt(detail, 10);
    spec.levelExplicit = true;
    return { ok: true, spec };
  }
  for (const item of detail.split(',')) {
    const eq = item.indexOf('=');
    const keyword = eq === -1 ? item : item.slice(0, eq);
    const value = eq === -1 ? undefined : item.slice(eq + 1);
    if (keyword === '') return { ok: false, message: 'found empty string where a compression option was expected' };
    if (keyword === 'level' || keyword === 'workers') {
      if (value === undefined) return { ok: false, message: `compression option "${keyword}" requires a value` };
      if (!isInteger(value)) return { ok: false, message: `value for compression option "${keyword}" must be an integer` };
      const n = Number.parseInt(value, 10);
      if (keyword === 'level') {
        spec.level = n;
        spec.levelExplicit = true;
      } else {
        spec.workers = n;
      }
    } else if (keyword === 'long') {
      const b = parseBool(value);
      if (b === undefined) return { ok: false, message: `value for compression option "long" must be a Boolean value` };
      spec.longDistance = b;
    } else {
      return { ok: false, message: `unrecognized compression option: "${keyword}"` };
    }
  }
  return { ok: true, spec };
}

function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'on' || v === '1') return true;
  if (v === 'no' || v === 'off' || v === '0') return false;
  return undefined;
}

function validate(spec: CompressionSpec): string | undefined {
  const { algorithm, level } = spec;
  if (algorithm === 'none') {
    if (level !== 0) return `compression algorithm "none" does not accept a compression level`;
  } else {
    const [min, max] = LEVEL_RANGE[algorithm];
    const def = DEFAULT_LEVEL[algorithm];
    if ((level < min || level > max) && level !== def) {
      return `compression algorithm "${algorithm}" expects a compression level between ${min} and ${max} (default at ${def})`;
    }
  }
  if (spec.workers !== undefined && algorithm !== 'zstd') {
    return `compression algorithm "${algorithm}" does not accept a worker count`;
  }
  if (spec.longDistance !== undefined && algorithm !== 'zstd') {
    return `compression algorithm "${algorithm}" does not support long-distance mode`;
  }
  return undefined;
}
