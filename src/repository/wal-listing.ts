/**
 * Listing the archived WAL of a repository: the keys under `wal/` that this version knows, parsed.
 * @module
 */
import type { StorageCallOptions } from '../storage/types.js';
import type { Repository } from './repository.js';
import { parseWalKey, WAL_PREFIX, type ParsedWalKey } from './wal-keys.js';

/** Every segment and history file stored under `wal/`, in key order; unknown keys are skipped. */
export async function listWalKeys(repository: Repository, options: StorageCallOptions = {}): Promise<ParsedWalKey[]> {
  const keys: ParsedWalKey[] = [];
  for await (const object of repository.storage.list({ ...options, prefix: WAL_PREFIX })) {
    const parsed = parseWalKey(object.key);
    if (parsed) keys.push(parsed);
  }
  return keys;
}
