/**
 * One entry point from a repository address to a {@link Storage}.
 * @module
 */
import { LocalStorage } from './local.js';
import { createS3Storage, type S3StorageOptions } from './s3.js';
import type { Storage } from './types.js';
import { parseStorageUrl } from './url.js';

/** Options of {@link openStorage}. */
export interface OpenStorageOptions {
  /**
   * Settings for `s3://` addresses beyond what the address holds (credentials, part size, parts in flight,
   * retries, timeouts). @default the defaults of {@link S3StorageOptions}
   */
  s3?: Omit<S3StorageOptions, 'bucket' | 'prefix' | 'endpoint' | 'region' | 'forcePathStyle'> | undefined;
}

/**
 * Open the storage an address names (see {@link parseStorageUrl}): a local directory, or an S3 bucket and
 * prefix. Nothing is created or contacted yet; the first call does that. Throws {@link pg-basebackup/errors!ConfigError} for a
 * bad address.
 *
 * @example
 * ```ts
 * const storage = await openStorage('s3://backups/db1?endpoint=http://127.0.0.1:8080&forcePathStyle=true');
 * for await (const object of storage.list({ prefix: 'wal/' })) console.log(object.key, object.size);
 * await storage.close();
 * ```
 */
export async function openStorage(address: string, options: OpenStorageOptions = {}): Promise<Storage> {
  const parsed = parseStorageUrl(address);
  if (parsed.kind === 'local') return new LocalStorage({ path: parsed.path });
  return createS3Storage({
    ...options.s3,
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    endpoint: parsed.endpoint,
    region: parsed.region,
    forcePathStyle: parsed.forcePathStyle,
  });
}
