/**
 * Compression specifications: PostgreSQL's grammar `[client-|server-]METHOD[:DETAIL]` (or a bare level)
 * as `pg_basebackup -Z` takes it, the typed {@link CompressionSpec} the library works from, and the facts
 * that follow from a method (file suffix, default level, level range). Pure.
 *
 * Validation follows PostgreSQL's src/common/compression.c (`parse_compress_specification`,
 * `validate_compress_specification`) so that what pg_basebackup accepts we accept, with the same reasons
 * for refusing.
 * @module
 */
import { ConfigError } from '../errors.js';

/** Compression methods PostgreSQL knows for base backups. */
export type CompressionAlgorithm = 'none' | 'gzip' | 'lz4' | 'zstd';

/** Where compression runs: on the server (BASE_BACKUP `COMPRESSION`, 15+) or in this process. */
export type CompressionLocation = 'client' | 'server';

/** A parsed and validated compression specification. */
export interface CompressionSpec {
  /** The method. */
  algorithm: CompressionAlgorithm;
  /** `client` unless `server-` was written (or `location: 'server'` given). */
  location: CompressionLocation;
  /** Whether `client-` or `server-` was written explicitly. */
  locationExplicit: boolean;
  /**
   * Level; the method's default when not given ({@link DEFAULT_COMPRESSION_LEVEL}: gzip -1 = zlib's
   * default 6, lz4 0 = fast, zstd 3).
   */
  level: number;
  /** Whether the level was given explicitly. */
  levelExplicit: boolean;
  /**
   * zstd worker threads (`workers=N`). On the server, zstd's own threads. On the client, the number of
   * threads of our parallel compressor (0 compresses on the calling thread).
   */
  workers?: number;
  /** zstd long-distance matching (`long`). Honoured where the zstd library allows it (see the README). */
  longDistance?: boolean;
  /** The DETAIL text as written, passed through as `COMPRESSION_DETAIL` for `server-` compression. */
  detail?: string;
}

/**
 * Compression as a library caller writes it: a `-Z` string (`'gzip'`, `'server-zstd:level=9'`, `'5'`) or
 * an object. Turned into a {@link CompressionSpec} by {@link resolveCompression}.
 *
 * @example
 * ```ts
 * const c1: CompressionInput = 'client-lz4';
 * const c2: CompressionInput = { algorithm: 'zstd', location: 'server', level: 9, workers: 4 };
 * ```
 */
export type CompressionInput = string | CompressionOptions;

/** The object form of {@link CompressionInput}. */
export interface CompressionOptions {
  /** The method. */
  algorithm: CompressionAlgorithm;
  /** Where to compress. @default 'client' */
  location?: CompressionLocation;
  /** Level. @default the method's default ({@link DEFAULT_COMPRESSION_LEVEL}) */
  level?: number;
  /** zstd only: worker threads. @default the parallel compressor's default on the client, none on the server */
  workers?: number;
  /** zstd only: long-distance matching. @default false */
  longDistance?: boolean;
}

/** No compression. */
export const NO_COMPRESSION: CompressionSpec = Object.freeze({
  algorithm: 'none',
  location: 'client',
  locationExplicit: false,
  level: 0,
  levelExplicit: false,
}) as CompressionSpec;

/** Every method, in PostgreSQL's order. */
export const COMPRESSION_ALGORITHMS: readonly CompressionAlgorithm[] = ['none', 'gzip', 'lz4', 'zstd'];

/**
 * Level used when none is given. gzip's -1 is zlib's `Z_DEFAULT_COMPRESSION` (level 6), lz4's 0 is
 * LZ4F's fast mode, zstd's 3 is `ZSTD_CLEVEL_DEFAULT` (compression.c `parse_compress_specification`).
 */
export const DEFAULT_COMPRESSION_LEVEL: Readonly<Record<CompressionAlgorithm, number>> = Object.freeze({
  none: 0,
  gzip: -1,
  lz4: 0,
  zstd: 3,
});

/**
 * Levels each method accepts, besides its default. zstd's range is the library's
 * `ZSTD_minCLevel()..ZSTD_maxCLevel()` (1.5.x: -131072..22).
 */
export const COMPRESSION_LEVEL_RANGE: Readonly<Record<CompressionAlgorithm, readonly [number, number]>> = Object.freeze({
  none: [1, 1],
  gzip: [1, 9],
  lz4: [1, 12],
  zstd: [-131072, 22],
});

/** File suffix each method adds to an archive name (`base.tar` → `base.tar.gz`), as pg_basebackup names them. */
export const COMPRESSION_SUFFIX: Readonly<Record<CompressionAlgorithm, string>> = Object.freeze({
  none: '',
  gzip: '.gz',
  lz4: '.lz4',
  zstd: '.zst',
});

/** strtol-like: an optional sign and digits, the whole string. C's strtol skips leading white space. */
const INTEGER = /^\s*[+-]?\d+$/;

/**
 * Parse and validate a `-Z` value. Returns the spec or a message naming what is wrong (the CLI turns it
 * into a usage error; {@link resolveCompression} into a {@link ConfigError}).
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
  // strtol also "converts" the empty string (to 0), so `-Z ''` means none, as in pg_basebackup.
  if (rest === '' || INTEGER.test(rest)) {
    // Backward compatibility (pg_basebackup ≤ 14 took only a gzip level): 0 means none.
    const n = rest === '' ? 0 : Number.parseInt(rest, 10);
    algorithmName = n === 0 ? 'none' : 'gzip';
    detail = n === 0 ? undefined : rest.trim();
  } else {
    const colon = rest.indexOf(':');
    algorithmName = colon === -1 ? rest : rest.slice(0, colon);
    detail = colon === -1 ? undefined : rest.slice(colon + 1);
  }
  if (!isAlgorithm(algorithmName)) {
    return { ok: false, message: `unrecognized compression algorithm: "${algorithmName}"` };
  }
  const parsed = parseDetail(algorithmName, detail);
  if (!parsed.ok) return { ok: false, message: `invalid compression specification: ${parsed.message}` };
  const spec: CompressionSpec = { ...parsed.spec, location, locationExplicit };
  if (detail !== undefined) spec.detail = detail;
  const invalid = validateCompressionSpec(spec);
  if (invalid) return { ok: false, message: `invalid compression specification: ${invalid}` };
  return { ok: true, spec };
}

/**
 * Turn what a library caller wrote into a validated {@link CompressionSpec}.
 * `undefined` means no compression.
 * @throws ConfigError naming what is wrong, in PostgreSQL's words.
 * @example
 * ```ts
 * resolveCompression('lz4');                       // client lz4, fast
 * resolveCompression({ algorithm: 'gzip', level: 1 });
 * resolveCompression({ algorithm: 'zstd', location: 'server', workers: 4 });
 * ```
 */
export function resolveCompression(input: CompressionInput | CompressionSpec | undefined): CompressionSpec {
  if (input === undefined) return NO_COMPRESSION;
  if (typeof input === 'string') {
    const r = parseCompressOption(input);
    if (!r.ok) throw new ConfigError(`compression "${input}": ${r.message}`);
    return r.spec;
  }
  if (!isAlgorithm(input.algorithm)) {
    throw new ConfigError(`unrecognized compression algorithm: "${String(input.algorithm)}"`);
  }
  const location = input.location ?? 'client';
  if (location !== 'client' && location !== 'server') {
    throw new ConfigError(`compression location must be "client" or "server", not "${String(location)}"`);
  }
  const spec: CompressionSpec = {
    algorithm: input.algorithm,
    location,
    locationExplicit: 'locationExplicit' in input ? Boolean(input.locationExplicit) : input.location !== undefined,
    level: input.level ?? DEFAULT_COMPRESSION_LEVEL[input.algorithm],
    levelExplicit: 'levelExplicit' in input ? Boolean(input.levelExplicit) : input.level !== undefined,
  };
  for (const [name, value] of [
    ['level', input.level],
    ['workers', input.workers],
  ] as const) {
    if (value !== undefined && !Number.isInteger(value)) {
      throw new ConfigError(`invalid compression specification: value for compression option "${name}" must be an integer`);
    }
  }
  if (input.workers !== undefined) spec.workers = input.workers;
  if (input.longDistance !== undefined) spec.longDistance = input.longDistance;
  if ('detail' in input && typeof input.detail === 'string') spec.detail = input.detail;
  const invalid = validateCompressionSpec(spec);
  if (invalid) throw new ConfigError(`invalid compression specification: ${invalid}`);
  return spec;
}

/**
 * Check a spec as PostgreSQL's `validate_compress_specification` does. Returns the reason it is invalid,
 * or `undefined`.
 */
export function validateCompressionSpec(spec: CompressionSpec): string | undefined {
  const { algorithm, level } = spec;
  if (algorithm === 'none') {
    if (level !== 0) return 'compression algorithm "none" does not accept a compression level';
  } else {
    const [min, max] = COMPRESSION_LEVEL_RANGE[algorithm];
    const def = DEFAULT_COMPRESSION_LEVEL[algorithm];
    if ((level < min || level > max) && level !== def) {
      return `compression algorithm "${algorithm}" expects a compression level between ${min} and ${max} (default at ${def})`;
    }
  }
  if (spec.workers !== undefined) {
    if (algorithm !== 'zstd') return `compression algorithm "${algorithm}" does not accept a worker count`;
    if (spec.workers < 0) return 'compression algorithm "zstd" expects a worker count of 0 or more';
  }
  if (spec.longDistance !== undefined && algorithm !== 'zstd') {
    return `compression algorithm "${algorithm}" does not support long-distance mode`;
  }
  return undefined;
}

/** Whether a name is one of {@link COMPRESSION_ALGORITHMS}. */
export function isAlgorithm(name: string): name is CompressionAlgorithm {
  return Object.hasOwn(DEFAULT_COMPRESSION_LEVEL, name);
}

/**
 * The method a file name's suffix says (`base.tar.gz` or `.tgz` → `gzip`, `pg_wal.tar.zst` → `zstd`, `base.tar` → `none`).
 * @example
 * ```ts
 * algorithmFromFileName('16384.tar.lz4'); // 'lz4'
 * ```
 */
export function algorithmFromFileName(name: string): CompressionAlgorithm {
  if (name.endsWith('.gz') || name.endsWith('.tgz')) return 'gzip';
  if (name.endsWith('.lz4')) return 'lz4';
  if (name.endsWith('.zst')) return 'zstd';
  return 'none';
}

/**
 * The archive name with the method's suffix (`base.tar` + gzip → `base.tar.gz`); unchanged for `none`
 * and when the suffix is already there (names the server chose).
 */
export function compressedArchiveName(name: string, algorithm: CompressionAlgorithm): string {
  const suffix = COMPRESSION_SUFFIX[algorithm];
  return suffix === '' || name.endsWith(suffix) ? name : name + suffix;
}

/** The archive name without a compression suffix (`base.tar.zst` → `base.tar`). */
export function uncompressedArchiveName(name: string): string {
  const suffix = COMPRESSION_SUFFIX[algorithmFromFileName(name)];
  return suffix === '' ? name : name.slice(0, -suffix.length);
}

/**
 * The zlib level for gzip, or the level the lz4/zstd libraries take: the method's default resolved to the
 * number the library uses (gzip -1 → 6, lz4 0 → 1).
 */
export function effectiveLevel(spec: Pick<CompressionSpec, 'algorithm' | 'level'>): number {
  switch (spec.algorithm) {
    case 'gzip':
      return spec.level === -1 ? 6 : spec.level;
    case 'lz4':
      return spec.level <= 0 ? 1 : spec.level;
    case 'zstd':
      return spec.level;
    case 'none':
      return 0;
  }
}

/**
 * The `COMPRESSION_DETAIL` text for server-side compression: the DETAIL as written when there was one
 * (pg_basebackup passes it through unparsed), else built from the explicit fields; `undefined` when
 * there is nothing to say (the server then uses its defaults).
 */
export function compressionDetailText(spec: CompressionSpec): string | undefined {
  if (spec.detail !== undefined) return spec.detail;
  const items: string[] = [];
  if (spec.levelExplicit) items.push(`level=${spec.level}`);
  if (spec.workers !== undefined) items.push(`workers=${spec.workers}`);
  if (spec.longDistance !== undefined) items.push(spec.longDistance ? 'long' : 'long=off');
  return items.length === 0 ? undefined : items.join(',');
}

type DetailSpec = Omit<CompressionSpec, 'location' | 'locationExplicit'>;

function parseDetail(
  algorithm: CompressionAlgorithm,
  detail: string | undefined,
): { ok: true; spec: DetailSpec } | { ok: false; message: string } {
  const spec: DetailSpec = { algorithm, level: DEFAULT_COMPRESSION_LEVEL[algorithm], levelExplicit: false };
  if (detail === undefined) return { ok: true, spec };
  if (INTEGER.test(detail)) {
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
      if (!INTEGER.test(value)) return { ok: false, message: `value for compression option "${keyword}" must be an integer` };
      const n = Number.parseInt(value, 10);
      if (keyword === 'level') {
        spec.level = n;
        spec.levelExplicit = true;
      } else {
        spec.workers = n;
      }
    } else if (keyword === 'long') {
      const b = parseBool(value);
      if (b === undefined) return { ok: false, message: 'value for compression option "long" must be a Boolean value' };
      spec.longDistance = b;
    } else {
      return { ok: false, message: `unrecognized compression option: "${keyword}"` };
    }
  }
  return { ok: true, spec };
}

/** compression.c's `expect_boolean_value`: no value means true; `true`/`false` are not accepted. */
function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'on' || v === '1') return true;
  if (v === 'no' || v === 'off' || v === '0') return false;
  return undefined;
}
