/**
 * Which lz4 and zstd implementations this process can use, loaded lazily so that a program that never
 * compresses never loads a native module, and one that only uses gzip needs neither package.
 *
 * - gzip: Node's zlib.
 * - zstd: Node's zlib where it has zstd (22.15+, 24); otherwise the optional package `@mongodb-js/zstd`
 *   (1.2.x ships its binary in per-platform packages) to compress, and the pure-JavaScript `fzstd` to
 *   decompress.
 * - lz4: built in, both ways: our frame writer in the chunk codec (codec.ts), whose blocks come from our
 *   WebAssembly block compressor (lz4-block.wat, shipped as bytes in lz4-block-wasm.ts) and from our
 *   JavaScript where WebAssembly cannot run, and the frame decoder `Lz4FrameDecoder` (lz4-frame.ts).
 *   (`lz4-napi`'s per-call native buffers, freed only by a garbage collection, cost more memory and
 *   time than the compression itself; lz4_flex's WebAssembly build, `lz4-wasm-nodejs`, was slower
 *   than ours.)
 * @module
 */
import { createRequire } from 'node:module';
import { nodeZlib } from '../builtins.js';
import { CompressionError } from '../errors.js';
import type { ChunkCodecConfig } from './codec.js';
import { effectiveLevel, type CompressionSpec } from './spec.js';

const require = createRequire(import.meta.url);

/** The package that compresses zstd where Node has no built-in zstd. */
export const ZSTD_PACKAGE = '@mongodb-js/zstd';
/** The package that decompresses zstd where Node has no built-in zstd. */
export const ZSTD_DECODER_PACKAGE = 'fzstd';

/** What this process can do, per method and direction. */
export interface CompressionSupport {
  /** Always available (zlib). */
  gzip: { compress: 'zlib'; decompress: 'zlib' };
  /** Built in, both ways (compression uses our WebAssembly blocks where WebAssembly runs, see codec.ts). */
  lz4: { compress: 'builtin'; decompress: 'builtin' };
  /** zstd: Node's zlib, else the packages, else `undefined`. */
  zstd: { compress: 'zlib' | '@mongodb-js/zstd' | undefined; decompress: 'zlib' | 'fzstd' | undefined };
}

/** Whether this Node has zstd in zlib (added in 22.15 and 23.8). */
export function hasBuiltinZstd(): boolean {
  const zlib = nodeZlib() as { zstdCompressSync?: unknown; createZstdDecompress?: unknown };
  return typeof zlib.zstdCompressSync === 'function' && typeof zlib.createZstdDecompress === 'function';
}

const loaded = new Map<string, { module: unknown; path: string } | Error>();

/** Loads a CommonJS package once; returns it with its resolved path, or the error that prevented it. */
function load(name: string): { module: unknown; path: string } | Error {
  let r = loaded.get(name);
  if (r === undefined) {
    try {
      const path = require.resolve(name);
      r = { module: require(path) as unknown, path };
    } catch (err) {
      r = err instanceof Error ? err : new Error(String(err));
    }
    loaded.set(name, r);
  }
  return r;
}

/** Reports which implementations are usable here (loads the optional packages to find out). */
export function compressionSupport(): CompressionSupport {
  const builtin = hasBuiltinZstd();
  const ok = (name: string) => !(load(name) instanceof Error);
  return {
    gzip: { compress: 'zlib', decompress: 'zlib' },
    lz4: { compress: 'builtin', decompress: 'builtin' },
    zstd: {
      compress: builtin ? 'zlib' : ok(ZSTD_PACKAGE) ? ZSTD_PACKAGE : undefined,
      decompress: builtin ? 'zlib' : ok(ZSTD_DECODER_PACKAGE) ? ZSTD_DECODER_PACKAGE : undefined,
    },
  };
}

/**
 * The package module, or a {@link CompressionError} that says how to get it.
 * @throws CompressionError when the package cannot be loaded.
 */
export function requirePackage(name: string, algorithm: string, purpose: string): { module: unknown; path: string } {
  const r = load(name);
  if (r instanceof Error) {
    throw new CompressionError(
      `${algorithm} ${purpose} needs the package "${name}", which could not be loaded (${r.message.split('\n')[0]}): ` +
        `install it (npm install ${name})${algorithm === 'zstd' ? ', or use Node 22.15 or later, which has zstd built in' : ''}, ` +
        'or choose another compression method',
      { cause: r, algorithm },
    );
  }
  return r;
}

/**
 * The chunk-compressor configuration for a client-side spec, with the library resolved.
 * @throws CompressionError when the method's library is missing (before anything is written).
 */
export function chunkCodecConfig(spec: Pick<CompressionSpec, 'algorithm' | 'level' | 'longDistance'>): ChunkCodecConfig {
  const algorithm = spec.algorithm;
  if (algorithm === 'none') throw new CompressionError('no compressor for method "none"', { algorithm });
  const config: ChunkCodecConfig = {
    algorithm,
    level: effectiveLevel(spec),
    longDistance: spec.longDistance ?? false,
    zstdBuiltin: false,
  };
  if (algorithm === 'zstd') {
    if (hasBuiltinZstd()) config.zstdBuiltin = true;
    else config.zstdModule = requirePackage(ZSTD_PACKAGE, 'zstd', 'compression').path;
  }
  return config;
}

/**
 * Checks, before anything is written, that this process can do what a backup with `spec` will ask of
 * it: compress on the client (zstd: Node's or `@mongodb-js/zstd`), or decompress a
 * server-compressed archive for plain output (zstd needs Node's zstd or `fzstd`; gzip and lz4 are built in).
 * @throws CompressionError naming the package to install.
 */
export function checkCompressionAvailable(
  spec: Pick<CompressionSpec, 'algorithm' | 'level' | 'longDistance'>,
  direction: 'compress' | 'decompress',
): void {
  if (spec.algorithm === 'none') return;
  if (direction === 'compress') {
    chunkCodecConfig(spec);
  } else if (spec.algorithm === 'zstd' && !hasBuiltinZstd()) {
    requirePackage(ZSTD_DECODER_PACKAGE, 'zstd', 'decompression');
  }
}
