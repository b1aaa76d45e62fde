/**
 * Compression over async iterables, the shape in which a backup session hands archives to sinks: wrap an
 * archive's bytes to compress them on the client (tar output) or to decompress what the server
 * compressed (plain output, `-R` injection, verification). Backpressure holds end to end: the wrapped
 * source is read only as fast as the returned iterable is consumed, within the compressor's bounded
 * in-flight window.
 * @module
 */
import { finished as finishedStream } from 'node:stream/promises';
import { once } from 'node:events';
import { pipeline, Readable, type Duplex, type Writable } from 'node:stream';
import { algorithmOf, decompressorFor, type DecompressorOptions } from './decompress.js';
import { createCompressor, ParallelCompressor, type CompressorOptions } from './parallel.js';
import { resolveCompression, type CompressionInput, type CompressionSpec } from './spec.js';

/**
 * Feeds `source` through `duplex` and yields what comes out, chunk by chunk as the duplex pushed them.
 * An error from either side is thrown from the iteration as it is; leaving the loop early destroys the
 * duplex and returns the source iterator.
 */
export async function* pipeThrough(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  duplex: Duplex,
): AsyncGenerator<Buffer, void, undefined> {
  const input = Readable.from(source, { objectMode: false });
  // Errors reach us through the duplex (pipeline destroys it with the first error); the callback only
  // keeps pipeline from reporting them twice.
  pipeline(input, duplex, () => undefined);
  try {
    yield* chunksOf(duplex);
  } finally {
    if (!duplex.destroyed) duplex.destroy();
    if (!input.destroyed) input.destroy();
  }
}

/** Chunks a {@link chunksOf} iteration holds before pausing the stream. */
const QUEUED_CHUNKS = 4;

/**
 * The chunks of a byte stream as they were pushed. A Readable's own async iterator calls `read()`, which
 * joins everything buffered into one new Buffer: a copy of every compressed megabyte, on the main thread,
 * and garbage of varying sizes. Here 'data' events
 * hand over the pushed buffers themselves, and the stream is paused while {@link QUEUED_CHUNKS} wait.
 * @throws the stream's error, or ERR_STREAM_PREMATURE_CLOSE when it closes before its end.
 */
export async function* chunksOf(stream: Readable | Duplex): AsyncGenerator<Buffer, void, undefined> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.length >= QUEUED_CHUNKS) stream.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (err: Error) => {
    failure ??= err;
    notify();
  };
  const onClose = () => {
    if (!ended) failure ??= Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.on('close', onClose);
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (queue.length === 0 && stream.isPaused()) stream.resume();
        yield chunk;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onError);
    stream.off('close', onClose);
  }
}

/**
 * Compresses an archive's bytes for client-side compression (parallel by default). The spec is checked
 * and the library loaded before the first byte is read, so a failure here happens before anything is
 * written. Name the result with `compressedArchiveName(name, spec.algorithm)`.
 * @throws ConfigError / CompressionError at once for an invalid spec, `none`, or a missing library.
 * @example
 * ```ts
 * await sink.writeArchive({ ...info, name: compressedArchiveName(info.name, 'gzip') }, compressArchive(bytes, 'gzip'));
 * ```
 */
export function compressArchive(
  source: AsyncIterable<Buffer | Uint8Array>,
  spec: CompressionInput | CompressionSpec,
  options: CompressorOptions = {},
): AsyncIterable<Buffer> {
  const compressor = createCompressor(resolveCompression(spec), options);
  return pipeThrough(source, compressor);
}

/**
 * Decompresses an archive whose name (`base.tar.zst`) or method says it is compressed; returns the
 * source unchanged otherwise. Name the result with `uncompressedArchiveName(name)`.
 * @example
 * ```ts
 * for await (const chunk of decompressArchive(bytes, 'base.tar.gz')) extractor.write(chunk);
 * ```
 */
export function decompressArchive(
  source: AsyncIterable<Buffer | Uint8Array>,
  nameOrAlgorithm: string,
  options: DecompressorOptions = {},
): AsyncIterable<Buffer | Uint8Array> {
  if (algorithmOf(nameOrAlgorithm) === 'none') return source;
  return pipeThrough(source, decompressorFor(nameOrAlgorithm, options));
}

/** Options of {@link compressedOutput}. */
export interface CompressedOutputOptions extends CompressorOptions {
  /** Makes what `output` accepted durable (an fsync); called by the returned `sync` after the compressed bytes reached it. */
  sync?: () => Promise<void>;
}

/**
 * Puts a compressor in front of a push-style output (a file stream such as the one behind `pg_wal.tar`):
 * write uncompressed bytes to the returned `output`; ending it ends `output` too. The returned `sync`
 * compresses what was written so far (as complete members or frames), waits until `output` has accepted
 * every compressed byte, then calls `options.sync`, so a position reported as flushed is really on disk
 * and the file read up to there decompresses. Errors travel both ways (a failing file destroys the
 * compressor, a failing compressor destroys the file stream).
 * @throws ConfigError / CompressionError at once for an invalid spec, `none`, or a missing library.
 * @example
 * ```ts
 * const { output, sync } = await tarSink.openArchiveStream('pg_wal.tar.gz');
 * const wal = new TarWalSink(compressedOutput(output, 'gzip', { sync }));
 * ```
 */
export function compressedOutput(
  output: Writable,
  spec: CompressionInput | CompressionSpec,
  options: CompressedOutputOptions = {},
): { output: ParallelCompressor; sync: () => Promise<void> } {
  const { sync: syncOutput, ...compressorOptions } = options;
  // Streamed WAL arrives slowly and is flushed often: two chunks in flight keep the workers busy enough
  // and hold half the buffers of the default, next to the base archive's compressor.
  const compressor = new ParallelCompressor(spec, { maxInFlight: 2, ...compressorOptions });
  compressor.pipe(output);
  compressor.on('error', (err) => {
    if (!output.destroyed) output.destroy(err);
  });
  output.on('error', (err) => {
    if (!compressor.destroyed) compressor.destroy(err);
  });
  const sync = async (): Promise<void> => {
    const failure = compressor.errored ?? output.errored;
    if (failure) throw failure;
    // Once the writer was ended, the pipeline drains into `output` and may auto-destroy itself:
    // wait for `output` to finish (finished() rejects on a premature close), then sync the file.
    if (compressor.writableEnded) {
      await finishedStream(output);
      await syncOutput?.();
      return;
    }
    if (compressor.destroyed || output.destroyed) throw new Error('the compressed output was destroyed');
    if (!compressor.writableFinished) await compressor.flush();
    // Everything compressed so far must have left the compressor for `output`...
    while (compressor.readableLength > 0 && !compressor.destroyed) await once(compressor, 'data');
    // ...and `output` must have written it: an empty write completes after every earlier one.
    if (compressor.readableEnded) {
      if (!output.writableFinished) await once(output, 'finish');
    } else {
      await new Promise<void>((resolve, reject) => output.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    }
    await syncOutput?.();
  };
  return { output: compressor, sync };
}
