/**
 * A small pool of worker threads that compress chunks (the chunk codec (codec.ts)). Workers start on
 * demand, are shared by every compressor in the process, hold the event loop open only while they have a
 * job, and are replaced when one dies. A worker's failure reaches the caller as a {@link CompressionError}.
 *
 * The worker's code is source text run with `eval` (see codec.ts), so the package needs no separate
 * worker entry in its build and works from source (tests, tsx) and from any bundle alike.
 * @module
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { nodeWorkerThreads } from '../builtins.js';
import { CompressionError } from '../errors.js';
import { CHUNK_CODEC_SOURCE, type ChunkCodecConfig } from './codec.js';

/** Most threads a pool uses unless asked for more. */
export const DEFAULT_MAX_THREADS = 8;

/** The CPUs this process may use, at most {@link DEFAULT_MAX_THREADS}: a pool's size, and gzip's chunks in flight (two each) without workers. */
export function defaultThreadCount(): number {
  return Math.max(1, Math.min(availableParallelism(), DEFAULT_MAX_THREADS));
}

/** Message to a worker: compress `input`'s first `length` bytes, into `output` if it is big enough. */
interface JobMessage {
  id: number;
  key: string;
  config: ChunkCodecConfig;
  input: ArrayBuffer;
  length: number;
  output: ArrayBuffer | undefined;
}
/**
 * Message from a worker: both buffers come back (transferred) for reuse, with the result either as the
 * first `length` bytes of `output` or, when it did not fit, as `bytes`.
 */
type ResultMessage =
  | { id: number; input: ArrayBuffer; output: ArrayBuffer | undefined; length: number; bytes: Uint8Array | undefined }
  | { id: number; input: ArrayBuffer; output: ArrayBuffer | undefined; error: { name: string; message: string; code?: string } };

/**
 * The worker's program (plain JavaScript, see codec.ts for why text): compile the codec for each
 * configuration once, compress each chunk into the output buffer it was lent, and send both buffers back
 * transferred, so that no chunk-sized memory is allocated here (it would wait for this small heap's next
 * garbage collection).
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const makeCodec = (${CHUNK_CODEC_SOURCE});
// An eval'd worker's require resolves packages from the current directory; the codec's optional
// package (@mongodb-js/zstd) is resolved from this library's location instead, as on the main thread.
const libraryRequire = require('node:module').createRequire(${JSON.stringify(import.meta.url)});
const codecs = new Map();
const empty = new Uint8Array(0);
// A minor garbage collection for the codec to run between chunks (only the zstd package's path uses it).
// global.gc where the process has it; otherwise the flag is set just long enough to take gc from a new
// context, and cleared again, so no other context sees it.
let collect;
function collector() {
  if (collect !== undefined) return collect;
  collect = null;
  try {
    let gc = typeof globalThis.gc === 'function' ? globalThis.gc : undefined;
    if (gc === undefined) {
      const v8 = require('node:v8');
      v8.setFlagsFromString('--expose-gc');
      try {
        gc = require('node:vm').runInNewContext('gc');
      } finally {
        v8.setFlagsFromString('--no-expose-gc');
      }
    }
    if (typeof gc === 'function') collect = () => gc({ type: 'minor' });
  } catch {
    // No collection: memory then waits for the heap's own.
  }
  return collect;
}
parentPort.on('message', (m) => {
  const back = [m.input];
  if (m.output !== undefined) back.push(m.output);
  Promise.resolve()
    .then(() => {
      let codec = codecs.get(m.key);
      if (codec === undefined) {
        codec = makeCodec(libraryRequire, m.config, m.config.algorithm === 'zstd' && !m.config.zstdBuiltin ? collector() : null);
        codecs.set(m.key, codec);
      }
      return codec(new Uint8Array(m.input, 0, m.length), m.output === undefined ? empty : new Uint8Array(m.output));
    })
    .then((r) => {
      if (typeof r === 'number') {
        parentPort.postMessage({ id: m.id, input: m.input, output: m.output, length: r, bytes: undefined }, back);
        return;
      }
      const whole = r.byteOffset === 0 && r.byteLength === r.buffer.byteLength && r.buffer !== m.input && r.buffer !== m.output;
      try {
        parentPort.postMessage({ id: m.id, input: m.input, output: m.output, length: r.length, bytes: r }, whole ? back.concat([r.buffer]) : back);
      } catch {
        // Some native buffers cannot be detached: send a copy.
        parentPort.postMessage({ id: m.id, input: m.input, output: m.output, length: r.length, bytes: r }, back);
      }
    }, (err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      parentPort.postMessage({ id: m.id, input: m.input, output: m.output, error: { name: e.name, message: e.message, code: e.code } }, back);
    });
});
`;

/** A compressed chunk and the buffers lent for it, back for reuse. */
export interface ChunkResult {
  /** The compressed chunk: a view of `output` when it fitted there. */
  bytes: Uint8Array;
  /** The input's memory (its contents are undefined now). */
  input: ArrayBuffer;
  /** The output buffer lent, if any. */
  output: ArrayBuffer | undefined;
}

interface Job {
  id: number;
  key: string;
  config: ChunkCodecConfig;
  input: ArrayBuffer;
  length: number;
  output: ArrayBuffer | undefined;
  resolve: (result: ChunkResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Jobs posted to this worker and not answered yet, by id (at most {@link JOBS_PER_WORKER}). */
  jobs: Map<number, Job>;
}

/**
 * Jobs queued at each worker at once. More than one, so that a worker starts its next chunk as soon as
 * it finishes one instead of waiting for this thread to wake up and post it: on a busy machine that
 * wake-up can cost milliseconds per chunk.
 */
const JOBS_PER_WORKER = 2;

/**
 * Heap limits of a worker. Its JavaScript heap holds little more than the codec (chunks travel in
 * transferred buffers), so small semi-spaces keep each thread's memory to a few megabytes.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 };

/**
 * A pool of compression worker threads.
 *
 * @example
 * ```ts
 * const pool = new CompressionPool(2);
 * const frame = await pool.run('gzip:1', { algorithm: 'gzip', level: 1, longDistance: false, zstdBuiltin: false }, chunk);
 * await pool.close();
 * ```
 */
export class CompressionPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  /** @param size most threads at once; raised later with {@link CompressionPool.ensureSize}. */
  constructor(private size: number = defaultThreadCount()) {}

  /** Threads this pool may run. */
  get threads(): number {
    return this.size;
  }

  /** Lets the pool grow to at least `n` threads. */
  ensureSize(n: number): void {
    if (n > this.size) this.size = n;
    this.dispatch();
  }

  /**
   * Compresses one chunk on a worker. `input` is copied unless it owns its whole ArrayBuffer, which is
   * then transferred (and unusable afterwards).
   * @throws CompressionError when the codec fails or the worker dies.
   */
  async run(key: string, config: ChunkCodecConfig, input: Uint8Array): Promise<Uint8Array> {
    const whole = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength && input.buffer instanceof ArrayBuffer;
    // Not input.slice(): on a Buffer that is a view, not a copy.
    const buffer = whole ? (input.buffer as ArrayBuffer) : new Uint8Array(input).buffer;
    const r = await this.compress(key, config, buffer, input.byteLength, undefined);
    return r.bytes;
  }

  /**
   * Compresses the first `length` bytes of `input` on a worker, into `output` when it is big enough
   * (see `compressedBound`). Both buffers are transferred there and back: the result gives them back
   * for the next chunk, so a steady stream allocates nothing chunk-sized but its results.
   * @throws CompressionError when the codec fails or the worker dies (the buffers are then lost).
   */
  compress(
    key: string,
    config: ChunkCodecConfig,
    input: ArrayBuffer,
    length: number,
    output: ArrayBuffer | undefined,
  ): Promise<ChunkResult> {
    if (this.closed) return Promise.reject(new CompressionError('the compression pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, key, config, input, length, output, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every worker; jobs not yet done fail. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new CompressionError('the compression pool was closed'));
    await Promise.all(
      this.slots.splice(0).map((s) => {
        for (const job of s.jobs.values()) job.reject(new CompressionError('the compression pool was closed'));
        s.jobs.clear();
        return s.worker.terminate();
      }),
    );
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // The least busy worker; a new one while the pool may grow and every worker is busy.
      let slot: Slot | undefined;
      for (const s of this.slots) if (s.jobs.size < JOBS_PER_WORKER && (!slot || s.jobs.size < slot.jobs.size)) slot = s;
      if (slot === undefined || (slot.jobs.size > 0 && this.slots.length < this.size)) {
        if (this.slots.length < this.size) slot = this.spawn();
        else if (slot === undefined) return;
      }
      const job = this.queue.shift()!;
      slot.jobs.set(job.id, job);
      slot.worker.ref();
      const message: JobMessage = {
        id: job.id,
        key: job.key,
        config: job.config,
        input: job.input,
        length: job.length,
        output: job.output,
      };
      slot.worker.postMessage(message, job.output === undefined ? [job.input] : [job.input, job.output]);
    }
  }

  private spawn(): Slot {
    const worker = new (nodeWorkerThreads().Worker)(WORKER_SOURCE, {
      eval: true,
      name: 'pg-basebackup compression',
      resourceLimits: WORKER_LIMITS,
    });
    const slot: Slot = { worker, jobs: new Map() };
    worker.unref();
    worker.on('message', (m: ResultMessage) => {
      const job = slot.jobs.get(m.id);
      if (job === undefined) return;
      slot.jobs.delete(m.id);
      // A worker holds the event loop open only while it has work.
      if (slot.jobs.size === 0) worker.unref();
      if ('error' in m) {
        job.reject(
          new CompressionError(`${job.config.algorithm} compression failed in a worker thread: ${m.error.message}`, {
            algorithm: job.config.algorithm,
            cause: Object.assign(new Error(m.error.message), { name: m.error.name, code: m.error.code }),
          }),
        );
      } else {
        const bytes = m.bytes ?? new Uint8Array(m.output!, 0, m.length);
        job.resolve({ bytes, input: m.input, output: m.output });
      }
      this.dispatch();
    });
    const fail = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i === -1) return;
      this.slots.splice(i, 1);
      for (const job of slot.jobs.values()) {
        job.reject(
          new CompressionError(`a compression worker thread stopped: ${err.message}`, { algorithm: job.config.algorithm, cause: err }),
        );
      }
      slot.jobs.clear();
      void worker.terminate();
      this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}

let shared: CompressionPool | undefined;

/**
 * The process-wide pool every parallel compressor uses unless given its own; grown to `threads` if asked.
 */
export function sharedCompressionPool(threads?: number): CompressionPool {
  shared ??= new CompressionPool();
  if (threads !== undefined) shared.ensureSize(threads);
  return shared;
}
