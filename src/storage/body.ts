/**
 * Shared pieces of the backends' put/get paths: the body as a stream that hashes what flows through it,
 * range checks, and abort plumbing.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { AbortError, ConfigError } from '../errors.js';
import type { ByteRange, StorageBody } from './types.js';

/** A pass-through stream that counts and SHA-256-hashes the bytes that leave it. */
export class DigestingStream extends Transform {
  #hash: Hash = createHash('sha256');
  #size = 0;
  #digest: string | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = this.#hash.digest('hex');
    callback();
  }

  /** Bytes that passed so far (not named `size`: lib-storage would read it as the body's length). */
  get bytes(): number {
    return this.#size;
  }

  /** The SHA-256 (hex) once the input ended; throws before (a result must not be taken from a cut stream). */
  get sha256(): string {
    if (this.#digest === undefined) throw new Error('DigestingStream: the digest is taken before the input ended');
    return this.#digest;
  }
}

/** The body as a Node stream. */
export function bodyStream(body: StorageBody): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof Uint8Array) return Readable.from([body], { objectMode: false });
  return Readable.from(body, { objectMode: false });
}

/** Throws {@link pg-basebackup/errors!ConfigError} unless the range has a whole `offset >= 0` and, if given, a whole `length >= 1`. */
export function checkRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || range.offset < 0) {
    throw new ConfigError(`invalid byte range: offset ${range.offset} is not a whole number >= 0`);
  }
  if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 1)) {
    throw new ConfigError(`invalid byte range: length ${range.length} is not a whole number >= 1`);
  }
}

/** Throws {@link AbortError} when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(`${what} was aborted`, { cause: signal.reason });
}

/**
 * `source` behind a pass-through whose errors are `mapError(err)`, so consumers of a `get` see
 * {@link StorageError}s; destroying the returned stream (or `signal`) destroys the source.
 */
export function mappedReadable(source: Readable, mapError: (err: Error) => Error, signal: AbortSignal | undefined): Readable {
  const out = new PassThrough();
  pipeline(source, out, (err) => {
    if (err && !out.destroyed) out.destroy(mapError(err));
  });
  if (signal) {
    const onAbort = (): void => {
      out.destroy(new AbortError('the read was aborted', { cause: signal.reason }));
    };
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return out;
}
