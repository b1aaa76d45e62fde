/**
 * Listing the archived WAL of a repository: the keys under `wal/` that this version knows, parsed, with
 * when each was stored. The one reading of `wal/` that the archive's summary (wal-archive.ts), expire,
 * verify and status work from.
 * @module
 */
import type { Storage, StorageCallOptions } from '../storage/types.js';
import type { StoredWalKey } from './wal-archive.js';
import { parseWalKey, WAL_PREFIX } from './wal-keys.js';

/** Every segment and history file stored under `wal/` of a repository's `storage`, in key order; unknown keys are skipped. */
export async function listWalKeys(storage: Storage, options: StorageCallOptions = {}): Promise<StoredWalKey[]> {
  const keys: StoredWalKey[] = [];
  for await (const object of storage.list({ ...options, prefix: WAL_PREFIX })) {
    const parsed = parseWalKey(object.key);
    if (parsed) keys.push({ ...parsed, storedAt: object.lastModified });
  }
  return keys;
}
