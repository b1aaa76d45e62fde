/**
 * Decompressing streams for `.gz`, `.lz4` and `.zst` archives: server-compressed archives written as
 * plain output, and compressed tar backups read back for verification. Each accepts any number of
 * concatenated members or frames (what our parallel compressor writes), and reports corrupt or
 * truncated input as a {@link CompressionError}.
 * @module
 */
import { PassThrough, Transform, type Duplex, type TransformCallback } from 'node:stream';
import { nodeZlib } from '../builtins.js';
import { CompressionError, PgBackupError } from '../errors.js';
import { hasBuiltinZstd, requirePackage, ZSTD_DECODER_PACKAGE } from './backends.js';
import { Lz4FrameDecoder } from './lz4-frame.js';
import { algorithmFromFileName, isAlgorithm, type CompressionAlgorithm } from './spec.js';

/** Options of {@link decompressorFor}. */
export interface DecompressorOptions {
  /** lz4: check block and content checksums when present. @default true */
  verifyChecksums?: boolean;
}

/**
 * A stream that decompresses what the file name's suffix (`base.tar.gz`) or the method (`'zstd'`) says;
 * a pass-through for an uncompressed name or `'none'`.
 * @throws CompressionError when zstd is needed and neither Node's built-in zstd (22.15+) nor `fzstd` is there.
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * await pipeline(createReadStream('base.tar.lz4'), decompressorFor('base.tar.lz4'), tarExtractor);
 * ```
 */
export function decompressorFor(nameOrAlgorithm: string, options: DecompressorOptions = {}): Duplex {
  switch (algorithmOf(nameOrAlgorithm)) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return withTypedErrors(nodeZlib().createGunzip(), 'gzip');
    case 'lz4':
      return new Lz4Decompressor(options);
    case 'zstd': {
      if (hasBuiltinZstd()) {
        const create = (nodeZlib() as unknown as { createZstdDecompress: () => Duplex }).createZstdDecompress;
        return withTypedErrors(create(), 'zstd');
      }
      return new FzstdDecompressor();
    }
  }
}

/** The method a method name or a file name stands for (`'lz4'` → lz4, `'base.tar.gz'` → gzip, `'base.tar'` → none). */
export function algorithmOf(nameOrAlgorithm: string): CompressionAlgorithm {
  return isAlgorithm(nameOrAlgorithm) ? nameOrAlgorithm : algorithmFromFileName(nameOrAlgorithm);
}

/** zlib streams fail through `destroy(err)`: give those errors our type (keeping zlib's as `cause`). */
function withTypedErrors<T extends Duplex>(stream: T, algorithm: string): T {
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (err?: Error) =>
    destroy(
      err && !(err instanceof PgBackupError)
        ? new CompressionError(`corrupt or truncated ${algorithm} data: ${err.message}`, { cause: err, algorithm })
        : err,
    );
  return stream;
}

/** Our JavaScript LZ4 frame decoder as a Transform. */
class Lz4Decompressor extends Transform {
  readonly #decoder: Lz4FrameDecoder;

  constructor(options: DecompressorOptions) {
    super();
    this.#decoder = new Lz4FrameDecoder(options.verifyChecksums === undefined ? {} : { verifyChecksums: options.verifyChecksums });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    let out: Buffer[];
    try {
      out = this.#decoder.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    for (const b of out) this.push(b);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#decoder.end();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}

interface FzstdDecompress {
  push(chunk: Uint8Array, final?: boolean): void;
}

/** `fzstd`'s streaming decoder as a Transform, for Node versions without built-in zstd. */
class FzstdDecompressor extends Transform {
  readonly #decoder: FzstdDecompress;
  #sawData = false;

  constructor() {
    super();
    const fzstd = requirePackage(ZSTD_DECODER_PACKAGE, 'zstd', 'decompression').module as {
      Decompress: new (ondata: (data: Uint8Array, final?: boolean) => void) => FzstdDecompress;
    };
    this.#decoder = new fzstd.Decompress((data) => {
      if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.#sawData = true;
    callback(this.#run(() => this.#decoder.push(chunk, false)));
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#sawData) {
      callback(new CompressionError('no zstd frame found: the input is empty', { algorithm: 'zstd' }));
      return;
    }
    callback(this.#run(() => this.#decoder.push(new Uint8Array(0), true)));
  }

  #run(fn: () => void): CompressionError | undefined {
    try {
      fn();
      return undefined;
    } catch (err) {
      return new CompressionError(`corrupt or truncated zstd data: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        algorithm: 'zstd',
      });
    }
  }
}
