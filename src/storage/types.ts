/**
 * The storage interface under a backup repository: a flat namespace of keys (`/`-separated, like object
 * storage) holding immutable objects, written whole as a stream and read whole or by byte range.
 *
 * ## Adding a backend (Azure Blob, Google Cloud Storage, ...)
 * Implement {@link Storage} and keep these contracts, which the conformance suite
 * (`test/integration/storage.test.ts`) checks for every implementation:
 * - **Keys** are checked with {@link checkStorageKey} before use; `list` yields them in ascending order of
 *   their UTF-8 bytes (what S3's ListObjectsV2 does), a prefix being a plain string prefix, not a folder.
 *   Callers never use a key that is also the folder of other keys (`a` beside `a/b`): object storage
 *   allows it, a directory cannot (the local backend's put fails with `statusCode` 409).
 * - **put is atomic**: until it resolves, nothing under the key looks finished; when it rejects or is
 *   aborted, the key holds its previous object (or none), and nothing is left behind that costs money or
 *   space (temporary files removed, multipart uploads aborted). An existing object is replaced.
 * - **Memory is bounded**: `put` reads its body as it uploads and never holds all of it; `get` returns a
 *   stream with backpressure.
 * - **Checksums**: `put` computes the SHA-256 of the bytes it consumed while streaming them and returns it.
 * - **Errors** are {@link StorageError}s (`operation`, `key`, `statusCode`, `retryable`), or
 *   {@link AbortError} when the call's `signal` fired. A missing object is `statusCode` 404 (`stat` answers
 *   `undefined` instead). Messages never contain credentials.
 * - **Retries** of transient failures (5xx, throttling, timeouts, reset connections) with backoff happen
 *   inside the implementation; a {@link StorageError} means they were exhausted (or the error is permanent).
 * - Load heavy client libraries lazily (`await import(...)`) in the factory, so that importing
 *   pg-basebackup does not load them.
 * @module
 */
import type { Readable } from 'node:stream';
import type { AbortError, StorageError } from '../errors.js';

/** Options every storage call takes. */
export interface StorageCallOptions {
  /** Cancels the call: it rejects with {@link AbortError}, and a `put` leaves nothing behind. */
  signal?: AbortSignal | undefined;
}

/** What {@link Storage.list} and {@link Storage.stat} report about one object. */
export interface StorageObjectInfo {
  /** The key, relative to the storage's root (prefix). */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Last modification time (upload completion for object storage). */
  lastModified: Date;
}

/** Options of {@link Storage.list}. */
export interface StorageListOptions extends StorageCallOptions {
  /**
   * Only keys that start with this string (a string prefix: `wal/0000` matches `wal/000000010000...`).
   * @default '' (every key)
   */
  prefix?: string | undefined;
  /** Only keys that sort after this one (to resume a listing). */
  startAfter?: string | undefined;
  /**
   * Keys fetched per request from object storage (1..1000). The iterator fetches the next page when the
   * caller has consumed the current one, so memory holds one page whatever the number of keys.
   * @default 1000
   */
  pageSize?: number | undefined;
}

/** A byte range of an object: `length` bytes from `offset`, or to the end when `length` is absent. */
export interface ByteRange {
  /** First byte, from 0. A range that starts at or past the end of the object fails with `statusCode` 416. */
  offset: number;
  /** Number of bytes (at least 1); a range that runs past the end is cut at the end. @default to the end */
  length?: number | undefined;
}

/** Options of {@link Storage.get}. */
export interface StorageGetOptions extends StorageCallOptions {
  /** Read only this range. @default the whole object */
  range?: ByteRange | undefined;
}

/** Options of {@link Storage.put}. */
export interface StoragePutOptions extends StorageCallOptions {
  /**
   * The body's size in bytes when known in advance; object storage then sizes its parts from it. Not
   * required: bodies of unknown length are uploaded in parts as they arrive.
   */
  contentLength?: number | undefined;
}

/** What a completed {@link Storage.put} stored. */
export interface StoragePutResult {
  /** The key written. */
  key: string;
  /** Bytes stored. */
  size: number;
  /** SHA-256 of the bytes stored, lower-case hex, computed while they streamed through. */
  sha256: string;
}

/** The body of a {@link Storage.put}: a stream (read with backpressure), any async iterable of bytes, or bytes. */
export type StorageBody = Readable | AsyncIterable<Uint8Array> | Uint8Array;

/**
 * A place that holds a repository's objects. Every method validates its key (see {@link checkStorageKey}),
 * fails with {@link StorageError} or {@link AbortError}, and can be called concurrently.
 */
export interface Storage {
  /** Which implementation: `'local'`, `'s3'`, or another backend's name. */
  readonly kind: string;
  /** Where it stores, for messages: a path or `s3://bucket/prefix` (never credentials). */
  readonly location: string;
  /**
   * Every object whose key starts with `prefix`, in ascending key order (UTF-8 bytes), fetched a page at a
   * time as the caller iterates. Breaking out of the loop stops the listing.
   */
  list(options?: StorageListOptions): AsyncIterable<StorageObjectInfo>;
  /** Size and time of one object, or `undefined` when there is none under that key. */
  stat(key: string, options?: StorageCallOptions): Promise<StorageObjectInfo | undefined>;
  /**
   * The object's bytes (or a range of them) as a stream. Fails with `statusCode` 404 when missing. Errors
   * while the stream flows are {@link StorageError}s emitted by the stream; `signal` destroys it.
   */
  get(key: string, options?: StorageGetOptions): Promise<Readable>;
  /** Store `body` under `key`, atomically (see the module documentation), and return its size and SHA-256. */
  put(key: string, body: StorageBody, options?: StoragePutOptions): Promise<StoragePutResult>;
  /** Delete one object. Deleting a missing key succeeds. */
  delete(key: string, options?: StorageCallOptions): Promise<void>;
  /** Delete several objects (in batches where the backend has a bulk call). Missing keys are not errors. */
  deleteMany(keys: readonly string[], options?: StorageCallOptions): Promise<void>;
  /**
   * Remove what interrupted puts of keys under `prefix` left behind: a process killed in the middle of a
   * put cannot clean up after itself (the local backend's temporary files; S3's multipart uploads that
   * were neither completed nor aborted, which cost storage). Call it only while no put under `prefix`
   * runs (a repository does so holding its lock). Resolves to the number of leftovers removed.
   */
  removeIncomplete(prefix: string, options?: StorageCallOptions): Promise<number>;
  /** Release clients and sockets. The storage must not be used afterwards. Idempotent. */
  close(): Promise<void>;
  /** {@link Storage.close}, for `await using storage = await openStorage(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
}
