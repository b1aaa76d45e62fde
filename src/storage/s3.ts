/**
 * The S3 backend (AWS S3 and S3-compatible servers), on the AWS SDK v3. The SDK is loaded when the
 * first S3 storage is created, so importing pg-basebackup does not load it.
 *
 * Settings that keep it working with S3-compatible servers (OpenStack Swift's s3api, MinIO, Ceph):
 * checksums only where the API requires them (the SDK's default aws-chunked uploads with trailing
 * checksums are refused by some servers), and a `Content-MD5` header on DeleteObjects (required by S3's
 * API and by those servers) and on each uploaded part (so that a corrupted part is refused, `BadDigest`).
 * @module
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as S3 from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { AbortError, ConfigError, StorageError } from '../errors.js';
import { bodyStream, checkRange, DigestingStream, mappedReadable, throwIfAborted } from './body.js';
import { checkStorageKey } from './keys.js';
import { s3StorageError, statusOf } from './s3-errors.js';
import type {
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

/** Smallest part S3 accepts (every part but the last). */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
/** Most parts in one multipart upload. */
const MAX_PARTS = 10_000;
/** Most keys per ListObjectsV2 page and per DeleteObjects request (S3's limits). */
const MAX_KEYS_PER_REQUEST = 1000;

/** Options of {@link createS3Storage}. */
export interface S3StorageOptions {
  /** The bucket (it must exist). */
  bucket: string;
  /** Prefix of every key in the bucket: empty, or ending with `/`. @default '' */
  prefix?: string | undefined;
  /** An S3-compatible server's URL (`http://127.0.0.1:8080`). @default AWS's endpoint for the region */
  endpoint?: string | undefined;
  /**
   * The region. @default the SDK's (`AWS_REGION`, the shared config file), or `us-east-1` when an
   * `endpoint` is given and none is configured
   */
  region?: string | undefined;
  /** Put the bucket in the path instead of the host name (most S3-compatible servers need it). @default false */
  forcePathStyle?: boolean | undefined;
  /**
   * Credentials, or a provider of them. @default the SDK's standard chain (`fromNodeProviderChain`:
   * environment, shared config and credentials files, SSO, web identity, container and instance metadata)
   */
  credentials?: S3.S3ClientConfig['credentials'];
  /**
   * Size of each part of a multipart upload (at least 5 MiB). A put of a body that fits in one part is a
   * single PutObject. Memory used by one put is about `partSizeBytes × (partsInFlight + 1)`.
   * @default 8 MiB
   */
  partSizeBytes?: number | undefined;
  /** Parts uploaded at the same time by one put. @default 4 */
  partsInFlight?: number | undefined;
  /**
   * Attempts per request (the first one included): failures that may pass (5xx, throttling such as 503
   * SlowDown, timeouts, reset connections) are retried with exponential backoff and jitter.
   * @default 6
   */
  maxAttempts?: number | undefined;
  /** Time allowed to establish a connection, per attempt. @default 10000 */
  connectTimeoutMs?: number | undefined;
  /**
   * Time a request may stay without any byte sent or received before it is abandoned (and retried, as
   * the timeout it is). Also applies to the stream a `get` returns. @default 30000
   */
  idleTimeoutMs?: number | undefined;
}

const DEFAULTS = {
  partSizeBytes: 8 * 1024 * 1024,
  partsInFlight: 4,
  maxAttempts: 6,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
} as const;

const ignore = (): void => undefined;

/**
 * Why a ranged GET's answer is not the range asked for, or `undefined` when it is. A server that ignores
 * the Range header answers 200 with the whole object, and s3rver answers `bytes=0-0` with all of it: handed on, those bytes
 * would land where the range belongs, so the answer must say `Content-Range: bytes START-END/TOTAL` with
 * START the offset asked and END the range's last byte, or the object's when the range runs past its end.
 * Pure.
 */
export function contentRangeProblem(contentRange: string | undefined, range: ByteRange): string | undefined {
  const asked = `bytes ${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}`;
  const m = contentRange === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange);
  if (m === null)
    return `the server ignored the byte range (asked ${asked}, answered ${contentRange === undefined ? 'the whole object' : `"${contentRange}"`})`;
  const [start, end, total] = [Number(m[1]), Number(m[2]), m[3] === '*' ? undefined : Number(m[3])];
  const lastAsked = range.length === undefined ? undefined : range.offset + range.length - 1;
  const endOk =
    lastAsked === undefined
      ? total === undefined || end === total - 1
      : end === lastAsked || (total !== undefined && end === total - 1 && end < lastAsked);
  return start === range.offset && endOk
    ? undefined
    : `the server answered another byte range (asked ${asked}, answered "${contentRange}")`;
}
const SILENT_LOGGER = { trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };

interface Sdk {
  s3: typeof import('@aws-sdk/client-s3');
  Upload: typeof Upload;
}

/** Commands whose body gets a Content-MD5 header: DeleteObjects needs one; a part or object with one is checked by the server. */
const MD5_COMMANDS = new Set(['DeleteObjectsCommand', 'UploadPartCommand', 'PutObjectCommand']);

/**
 * Create an {@link S3Storage}: loads the AWS SDK (once per process) and creates its client. Nothing is
 * sent to the server yet.
 *
 * @example
 * ```ts
 * const storage = await createS3Storage({ bucket: 'backups', prefix: 'db1/', endpoint: 'http://127.0.0.1:8080', forcePathStyle: true });
 * await storage.put('hello.txt', Buffer.from('hi'));
 * ```
 */
export async function createS3Storage(options: S3StorageOptions): Promise<S3Storage> {
  const partSizeBytes = options.partSizeBytes ?? DEFAULTS.partSizeBytes;
  if (!Number.isSafeInteger(partSizeBytes) || partSizeBytes < MIN_PART_SIZE_BYTES) {
    throw new ConfigError(`partSizeBytes must be a whole number of at least ${MIN_PART_SIZE_BYTES} (5 MiB), not ${partSizeBytes}`);
  }
  for (const [name, value] of [
    ['partsInFlight', options.partsInFlight],
    ['maxAttempts', options.maxAttempts],
    ['connectTimeoutMs', options.connectTimeoutMs],
    ['idleTimeoutMs', options.idleTimeoutMs],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new ConfigError(`${name} must be a whole number of at least 1, not ${value}`);
    }
  }
  const prefix = options.prefix ?? '';
  if (prefix !== '' && !prefix.endsWith('/')) throw new ConfigError(`the S3 prefix must end with "/": "${prefix}"`);
  let s3: typeof import('@aws-sdk/client-s3');
  let storage: typeof import('@aws-sdk/lib-storage');
  let providers: typeof import('@aws-sdk/credential-providers');
  try {
    [s3, storage, providers] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/lib-storage'),
      import('@aws-sdk/credential-providers'),
    ]);
  } catch (err) {
    // Optional peer dependencies: an application that never uses object storage does not install them.
    throw new ConfigError(
      `S3 storage needs the AWS SDK packages, which are not installed (${(err as Error).message}): ` +
        'npm install @aws-sdk/client-s3 @aws-sdk/lib-storage @aws-sdk/credential-providers',
      { cause: err },
    );
  }
  const sdk: Sdk = { s3, Upload: storage.Upload };
  const region = options.region ?? (options.endpoint !== undefined ? ((await configuredRegion(s3)) ?? 'us-east-1') : undefined);
  const config: S3.S3ClientConfig = {
    ...(region === undefined ? {} : { region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle ?? false,
    credentials: options.credentials ?? providers.fromNodeProviderChain(),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: options.maxAttempts ?? DEFAULTS.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      // An idle timeout, not a total one: a large part on a slow link may take long, a silent one may not.
      socketTimeout: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      // The handler's own warnings would otherwise go to the console; library code never writes there.
      logger: SILENT_LOGGER,
    },
  };
  const client = new s3.S3Client(config);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== undefined && MD5_COMMANDS.has(context.commandName)) addContentMd5(args.request);
      return next(args);
    },
    { step: 'build', name: 'pgbbContentMd5', override: true },
  );
  return new S3Storage(sdk, client, {
    bucket: options.bucket,
    prefix,
    partSizeBytes,
    partsInFlight: options.partsInFlight ?? DEFAULTS.partsInFlight,
  });
}

/** The region the SDK's shared configuration names, if any (an endpoint without a region still needs one to sign). */
async function configuredRegion(s3: Sdk['s3']): Promise<string | undefined> {
  const probe = new s3.S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
}

function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

function addContentMd5(request: unknown): void {
  const req = request as { headers?: Record<string, string>; body?: unknown };
  if (!req.headers || Object.keys(req.headers).some((h) => h.toLowerCase() === 'content-md5')) return;
  const body = req.body;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return; // a stream: not ours to read twice
  req.headers['content-md5'] = createHash('md5').update(body).digest('base64');
}

interface S3Settings {
  bucket: string;
  prefix: string;
  partSizeBytes: number;
  partsInFlight: number;
}

/** {@link Storage} on an S3 bucket (below a prefix). Create it with {@link createS3Storage}. */
export class S3Storage implements Storage {
  readonly kind = 's3';
  readonly location: string;
  readonly #sdk: Sdk;
  readonly #client: S3.S3Client;
  readonly #settings: S3Settings;
  #closed = false;

  /** @internal Use {@link createS3Storage}. */
  constructor(sdk: Sdk, client: S3.S3Client, settings: S3Settings) {
    this.#sdk = sdk;
    this.#client = client;
    this.#settings = settings;
    this.location = `s3://${settings.bucket}/${settings.prefix}`;
  }

  #objectKey(key: string): string {
    checkStorageKey(key);
    return this.#settings.prefix + key;
  }

  async *list(options: StorageListOptions = {}): AsyncIterable<StorageObjectInfo> {
    const { signal } = options;
    const pageSize = options.pageSize ?? MAX_KEYS_PER_REQUEST;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_KEYS_PER_REQUEST) {
      throw new ConfigError(`pageSize must be a whole number from 1 to ${MAX_KEYS_PER_REQUEST}, not ${pageSize}`);
    }
    const { prefix } = this.#settings;
    const listPrefix = prefix + (options.prefix ?? '');
    let token: string | undefined;
    let first = true;
    // Each page asks for the one after it; the loop ends when the server says the listing is complete.
    while (first || token !== undefined) {
      throwIfAborted(signal, 'list');
      let page: S3.ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new this.#sdk.s3.ListObjectsV2Command({
            Bucket: this.#settings.bucket,
            Prefix: listPrefix,
            MaxKeys: pageSize,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
            ...(first && options.startAfter !== undefined ? { StartAfter: prefix + options.startAfter } : {}),
          }),
          sendOptions(signal),
        );
      } catch (err) {
        throw this.#error('list', options.prefix, err, signal);
      }
      first = false;
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(prefix)) continue;
        yield { key: object.Key.slice(prefix.length), size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
      }
      const next = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (next !== undefined && next === token) {
        throw new StorageError('storage list failed: the server returned the same continuation token twice', { operation: 'list' });
      }
      token = next;
    }
  }

  async stat(key: string, options: StorageCallOptions = {}): Promise<StorageObjectInfo | undefined> {
    const Key = this.#objectKey(key);
    throwIfAborted(options.signal, 'stat');
    try {
      const head = await this.#client.send(
        new this.#sdk.s3.HeadObjectCommand({ Bucket: this.#settings.bucket, Key }),
        sendOptions(options.signal),
      );
      return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#error('stat', key, err, options.signal);
    }
  }

  async get(key: string, options: StorageGetOptions = {}): Promise<Readable> {
    const Key = this.#objectKey(key);
    const { range, signal } = options;
    if (range) checkRange(range);
    throwIfAborted(signal, 'get');
    let out: S3.GetObjectCommandOutput;
    try {
      out = await this.#client.send(
        new this.#sdk.s3.GetObjectCommand({
          Bucket: this.#settings.bucket,
          Key,
          ...(range ? { Range: `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}` } : {}),
        }),
        sendOptions(signal),
      );
    } catch (err) {
      throw this.#error('get', key, err, signal);
    }
    const body = out.Body as Readable | undefined;
    if (!body) throw new StorageError(`storage get "${key}" failed: the server sent no body`, { operation: 'get', key });
    if (range) {
      const problem = contentRangeProblem(out.ContentRange, range);
      if (problem !== undefined) {
        body.destroy();
        throw new StorageError(`storage get "${key}" failed: ${problem}: this storage server cannot serve ranged reads`, {
          operation: 'get',
          key,
        });
      }
    }
    return mappedReadable(body, (err) => s3StorageError('get', key, err), signal);
  }

  async put(key: string, body: StorageBody, options: StoragePutOptions = {}): Promise<StoragePutResult> {
    const Key = this.#objectKey(key);
    const { signal, contentLength } = options;
    throwIfAborted(signal, 'put');
    const { s3 } = this.#sdk;
    const digest = new DigestingStream();
    const source = bodyStream(body);
    // What the body itself failed with (a producer that broke): the cause to report, whatever the upload's
    // clean-up then met (a server without AbortMultipartUpload answers it with an error of its own).
    let bodyFailure: unknown;
    source.once('error', (err) => {
      bodyFailure ??= err;
    });
    const feeding = pipeline(source, digest).catch(() => undefined); // its error reaches us through digest
    // lib-storage keeps uploading the rest of the body after one part failed, and does not cancel parts in
    // flight when aborted: stop the feed and cancel the parts ourselves, then let it abort the upload.
    const inFlight = new AbortController();
    let failure: unknown;
    const fail = (err: unknown): void => {
      failure ??= err;
      inFlight.abort();
      digest.destroy(err instanceof Error ? err : new Error(String(err)));
    };
    const onAbort = (): void => fail(new AbortError(`put of "${key}" was aborted`, { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    const client = this.#client;
    const feedClient = {
      config: client.config,
      send: (command: { constructor: unknown }, opts?: object) => {
        const data = command instanceof s3.UploadPartCommand || command instanceof s3.PutObjectCommand;
        const sent = client.send(command as S3.PutObjectCommand, { ...opts, ...(data ? { abortSignal: inFlight.signal } : {}) });
        return data
          ? sent.catch((err: unknown) => {
              fail(err);
              throw err;
            })
          : sent;
      },
    } as unknown as S3.S3Client;
    const partSize = Math.max(this.#settings.partSizeBytes, contentLength === undefined ? 0 : Math.ceil(contentLength / MAX_PARTS));
    try {
      const upload = new this.#sdk.Upload({
        client: feedClient,
        params: {
          Bucket: this.#settings.bucket,
          Key,
          Body: digest,
          ...(contentLength === undefined ? {} : { ContentLength: contentLength }),
        },
        partSize,
        queueSize: this.#settings.partsInFlight,
        leavePartsOnError: false,
      });
      await upload.done();
      await feeding;
      if (signal?.aborted) {
        // The abort came as the upload completed: a put that reports an abort must leave nothing.
        await this.#client.send(new s3.DeleteObjectCommand({ Bucket: this.#settings.bucket, Key })).catch(() => undefined);
        throw new AbortError(`put of "${key}" was aborted`, { cause: signal.reason });
      }
      return { key, size: digest.bytes, sha256: digest.sha256 };
    } catch (err) {
      const cause = failure ?? bodyFailure ?? err;
      // End the feed whatever lib-storage left of it (it stops reading when its uploaders fail), so that the
      // body is released and the feeding pipeline settles before we return.
      fail(err);
      await feeding;
      if (err instanceof AbortError) throw err;
      throw this.#error('put', key, cause, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async delete(key: string, options: StorageCallOptions = {}): Promise<void> {
    const Key = this.#objectKey(key);
    throwIfAborted(options.signal, 'delete');
    try {
      await this.#client.send(new this.#sdk.s3.DeleteObjectCommand({ Bucket: this.#settings.bucket, Key }), sendOptions(options.signal));
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw this.#error('delete', key, err, options.signal);
    }
  }

  async deleteMany(keys: readonly string[], options: StorageCallOptions = {}): Promise<void> {
    const objectKeys = keys.map((k) => this.#objectKey(k));
    for (let i = 0; i < objectKeys.length; i += MAX_KEYS_PER_REQUEST) {
      throwIfAborted(options.signal, 'delete');
      const batch = objectKeys.slice(i, i + MAX_KEYS_PER_REQUEST);
      let out: S3.DeleteObjectsCommandOutput;
      try {
        out = await this.#client.send(
          new this.#sdk.s3.DeleteObjectsCommand({
            Bucket: this.#settings.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          sendOptions(options.signal),
        );
      } catch (err) {
        throw this.#error('delete', batch[0]?.slice(this.#settings.prefix.length), err, options.signal);
      }
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      const first = failed[0];
      if (first) {
        const key = first.Key?.slice(this.#settings.prefix.length);
        throw new StorageError(
          `storage delete of ${failed.length} of ${batch.length} objects failed, the first "${key}": ` +
            `${first.Code ?? 'error'}: ${first.Message ?? ''}`,
          { operation: 'delete', key, retryable: first.Code === 'InternalError' || first.Code === 'SlowDown' },
        );
      }
    }
  }

  async removeIncomplete(prefix: string, options: StorageCallOptions = {}): Promise<number> {
    const { signal } = options;
    const { s3 } = this.#sdk;
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      throwIfAborted(signal, 'delete');
      let page: S3.ListMultipartUploadsCommandOutput;
      try {
        page = await this.#client.send(
          new s3.ListMultipartUploadsCommand({
            Bucket: this.#settings.bucket,
            Prefix: this.#settings.prefix + prefix,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
          sendOptions(signal),
        );
      } catch (err) {
        throw this.#error('list', prefix, err, signal);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined) continue;
        try {
          await this.#client.send(
            new s3.AbortMultipartUploadCommand({ Bucket: this.#settings.bucket, Key: upload.Key, UploadId: upload.UploadId }),
            sendOptions(signal),
          );
        } catch (err) {
          if (statusOf(err) === 404) continue; // completed or aborted meanwhile
          throw this.#error('delete', upload.Key.slice(this.#settings.prefix.length), err, signal);
        }
        removed += 1;
      }
      if (!page.IsTruncated) return removed;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined) return removed;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #error(operation: StorageError['operation'], key: string | undefined, err: unknown, signal: AbortSignal | undefined): Error {
    if (signal?.aborted) return new AbortError(`storage ${operation} was aborted`, { cause: signal.reason });
    return s3StorageError(operation, key, err);
  }
}
