/**
 * Reading the repository's small JSON objects (records, leases) whole, with a bound, so that a stray
 * large object under a record's key cannot fill memory.
 * @module
 */
import { RepositoryError, StorageError } from '../errors.js';
import type { Storage, StorageCallOptions } from '../storage/types.js';

/** Largest record read whole. Records are a few kilobytes; a backup with many tablespaces stays far below. */
const MAX_RECORD_BYTES = 4 * 1024 * 1024;

/** The object's bytes, or `undefined` when there is none under `key`. */
export async function readSmallObject(storage: Storage, key: string, options: StorageCallOptions = {}): Promise<Buffer | undefined> {
  let stream;
  try {
    stream = await storage.get(key, options);
  } catch (err) {
    if (err instanceof StorageError && err.statusCode === 404) return undefined;
    throw err;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_RECORD_BYTES) {
      stream.destroy();
      throw new RepositoryError(`the repository object "${key}" is larger than a record can be (${MAX_RECORD_BYTES} bytes)`, { key });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
