/**
 * Repository storage: the {@link Storage} interface, its local-directory and S3 implementations, and the
 * repository address. Re-exports only; the S3 implementation loads the AWS SDK when first used.
 * @module
 */
export type {
  ByteRange,
  Storage,
  StorageBody,
  StorageCallOptions,
  StorageGetOptions,
  StorageListOptions,
  StorageObjectInfo,
  StoragePutOptions,
  StoragePutResult,
} from './types.js';
export { checkStorageKey, compareStorageKeys, MAX_STORAGE_KEY_BYTES } from './keys.js';
export { LocalStorage, type LocalStorageOptions } from './local.js';
export { createS3Storage, S3Storage, MIN_PART_SIZE_BYTES, type S3StorageOptions } from './s3.js';
export { parseStorageUrl, formatStorageAddress } from './url.js';
export type { LocalStorageAddress, S3StorageAddress, StorageAddress } from './url.js';
export { openStorage, type OpenStorageOptions } from './open.js';
