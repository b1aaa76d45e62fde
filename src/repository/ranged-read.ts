/**
 * Reading a large stored object as several ranged GETs in flight, handed on in order: one GET stream
 * from object storage is bound by one connection's throughput (and a stall holds everything up), while a
 * restore can take bytes as fast as the disk writes them. Memory is bounded by the parts in flight.
 * @module
 */
import { Readable } from 'node:stream';
import type { Storage } from '../storage/types.js';

/** Options of {@link rangedRead}. */
export interface RangedReadOptions {
  /** Bytes per GET. @default 8 MiB */
  partBytes?: number | undefined;
  /** GETs in flight (each holds up to `partBytes` until its turn comes). @default 4 */
  concurrency?: number | undefined;
  /** Cancels the GETs in flight; the stream then fails with the abort. */
  signal?: AbortSignal | undefined;
}

/** Default bytes per ranged GET. */
export const RANGED_READ_PART_BYTES = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;

/**
 * The `size` bytes of `key` as a stream, read with up to `concurrency` ranged GETs of `partBytes` at a
 * time, in order. Errors of any GET fail the stream.
 */
export function rangedRead(storage: Storage, key: string, size: number, options: RangedReadOptions = {}): Readable {
  const partBytes = options.partBytes ?? RANGED_READ_PART_BYTES;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  const fetchPart = async (offset: number, length: number): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.get(key, { range: { offset, length }, signal })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  async function* parts(): AsyncGenerator<Buffer> {
    const inFlight: Promise<Buffer>[] = [];
    let next = 0;
    const start = (): void => {
      const length = Math.min(partBytes, size - next);
      const part = fetchPart(next, length);
      // A later part may fail while an earlier one is awaited: its rejection is seen in its turn.
      part.catch(() => undefined);
      inFlight.push(part);
      next += length;
    };
    try {
      while (next < size && inFlight.length < concurrency) start();
      while (inFlight.length > 0) {
        const part = await inFlight.shift()!;
        if (next < size) start();
        yield part;
      }
    } finally {
      // The consumer stopped early, or a part failed: the other GETs are not needed.
      controller.abort();
    }
  }
  return Readable.from(parts(), { objectMode: false });
}
