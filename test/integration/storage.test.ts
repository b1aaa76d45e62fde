/**
 * The storage conformance suite: every Storage implementation (local directory; S3 on a real Swift with
 * s3api, reached through a loopback proxy that can inject faults) passes the same tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { describe, expect, it, vi } from 'vitest';
import { AbortError, ConfigError, PgBackupError, StorageError } from '../../src/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { openStorage } from '../../src/storage/open.js';
import { createS3Storage, type S3StorageOptions } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/types.js';
import { runRoot } from '../harness/index.js';
import { swiftBucketForFile } from '../harness/repositories.js';

const MiB = 1024 * 1024;
const BUCKET = 'pgbb-storage';
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const bytesOf = async (stream: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};
/** A body that yields `data` in 1 MiB views. */
const chunked = (data: Buffer): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += MiB) yield data.subarray(i, i + MiB);
    })(),
  );
/** Compares through digests: vitest's deep equality walks a Buffer element by element, seconds per megabyte. */
const expectSameBytes = (actual: Buffer, expected: Buffer): void => {
  expect(actual.length).toBe(expected.length);
  expect(sha256(actual)).toBe(sha256(expected));
};
/** Catch a rejection to inspect it (expect().rejects cannot look at several properties at once). */
const failure = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );

/** A body that produces `limit` bytes, then neither ends nor errors (a producer that stalled). */
function stallingBody(limit: number): { body: Readable; produced: () => number } {
  let produced = 0;
  const chunk = randomBytes(MiB);
  const body = new Readable({
    read() {
      if (produced >= limit) return;
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return { body, produced: () => produced };
}

const swiftS3 = swiftBucketForFile(BUCKET, { faultProxy: true });
let prefixSeq = 0;

/** Every file below a directory (temporary ones included), relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

interface Subject {
  storage: Storage;
  /** What the implementation left behind besides finished objects: temporary files, pending uploads. */
  leftovers(): Promise<string[]>;
  /** Every stored object, finished or not, as the backend sees it. */
  raw(): Promise<string[]>;
  /** For object storage: whether a multipart upload was started (and then aborted) for a key. */
  multipart?: (key: string) => { created: boolean; aborted: boolean };
}

async function s3Subject(options: Partial<S3StorageOptions> = {}): Promise<Subject & { prefix: string }> {
  prefixSeq += 1;
  const prefix = `t${prefixSeq}/`;
  const storage = await createS3Storage({
    bucket: BUCKET,
    prefix,
    endpoint: swiftS3.proxy.endpoint,
    region: swiftS3.swift.region,
    forcePathStyle: true,
    credentials: swiftS3.swift.credentials,
    ...options,
  });
  return {
    storage,
    prefix,
    leftovers: () => swiftS3.pendingUploads(prefix),
    multipart: (key) => {
      const mine = swiftS3.proxy.requests.filter((r) => r.url.startsWith(`/${BUCKET}/${prefix}${key}?`));
      return {
        created: mine.some((r) => r.method === 'POST' && /[?&]uploads(=|&|$)/.test(r.url)),
        aborted: mine.some((r) => r.method === 'DELETE' && /[?&]uploadId=/.test(r.url)),
      };
    },
    raw: async () => {
      const keys: string[] = [];
      for await (const o of storage.list()) keys.push(o.key);
      return keys;
    },
  };
}

async function localSubject(): Promise<Subject> {
  const dir = await mkdtemp(join(runRoot(), 'tmp', 'storage-'));
  const storage = new LocalStorage({ path: join(dir, 'repo') });
  return {
    storage,
    leftovers: async () => (await filesBelow(join(dir, 'repo'))).filter((f) => f.split('/').some((s) => s.startsWith('.pgbb-'))),
    raw: () => filesBelow(join(dir, 'repo')),
  };
}

const subjects: [string, () => Promise<Subject>][] = [
  ['local directory', localSubject],
  ['S3 on Swift', () => s3Subject({ partSizeBytes: 8 * MiB, partsInFlight: 3 })],
];

describe.each(subjects)('storage conformance: %s', (_name, make) => {
  it('stores a stream and gives back its bytes, size and SHA-256; stat and overwrite', async () => {
    const { storage } = await make();
    const data = randomBytes(300_000);
    const put = await storage.put('a/b/object.bin', chunked(data));
    expect(put).toEqual({ key: 'a/b/object.bin', size: data.length, sha256: sha256(data) });
    expectSameBytes(await bytesOf(await storage.get('a/b/object.bin')), data);
    const info = await storage.stat('a/b/object.bin');
    expect(info).toMatchObject({ key: 'a/b/object.bin', size: data.length });
    expect(Math.abs(info!.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    expect(await storage.stat('a/b/missing')).toBeUndefined();
    expect(await storage.stat('a/b')).toBeUndefined();
    // Bytes and async iterables are bodies too; a put replaces the object.
    expect(await storage.put('a/b/object.bin', Buffer.from('second'))).toMatchObject({ size: 6, sha256: sha256(Buffer.from('second')) });
    expect(await text(await storage.get('a/b/object.bin'))).toBe('second');
    expect((await storage.put('empty', (async function* () {})())).size).toBe(0);
    expect(await bytesOf(await storage.get('empty'))).toHaveLength(0);
    await storage.close();
  });

  it('reads byte ranges, cuts a range at the end, and refuses one that starts past it (416)', async () => {
    const { storage } = await make();
    const data = randomBytes(100_000);
    await storage.put('r', data);
    expectSameBytes(await bytesOf(await storage.get('r', { range: { offset: 1000, length: 5000 } })), data.subarray(1000, 6000));
    expectSameBytes(await bytesOf(await storage.get('r', { range: { offset: 99_990 } })), data.subarray(99_990));
    expectSameBytes(await bytesOf(await storage.get('r', { range: { offset: 99_000, length: 5000 } })), data.subarray(99_000));
    expectSameBytes(await bytesOf(await storage.get('r', { range: { offset: 0, length: 1 } })), data.subarray(0, 1));
    const past = await failure(storage.get('r', { range: { offset: 100_000 } }));
    expect(past).toBeInstanceOf(StorageError);
    expect(past).toMatchObject({ operation: 'get', key: 'r', statusCode: 416 });
    await expect(storage.get('r', { range: { offset: -1 } })).rejects.toThrow(ConfigError);
    await expect(storage.get('r', { range: { offset: 0, length: 0 } })).rejects.toThrow(ConfigError);
    await storage.close();
  });

  it('fails on a missing object with a 404 StorageError, and refuses invalid keys', async () => {
    const { storage } = await make();
    const missing = await failure(storage.get('no/such/key'));
    expect(missing).toBeInstanceOf(StorageError);
    expect(missing).toBeInstanceOf(PgBackupError);
    expect(missing).toMatchObject({ code: 'ERR_PGBB_STORAGE', operation: 'get', key: 'no/such/key', statusCode: 404, retryable: false });
    for (const key of ['/abs', 'a/../b', 'a//b', 'x/.pgbb-tmp-1']) {
      await expect(storage.put(key, Buffer.from('x'))).rejects.toThrow(ConfigError);
      await expect(storage.get(key)).rejects.toThrow(ConfigError);
    }
    await storage.close();
  });

  it('lists by prefix in key order, page by page, from a start key', async () => {
    const { storage } = await make();
    const keys = Array.from({ length: 130 }, (_, i) => `wal/${String(i).padStart(8, '0')}`);
    // '-' < '.' < '/' < '0' in bytes. No key is also the folder of another ('a' beside 'a/b'): see Storage.
    const others = ['a-c', 'a.x', 'a/b', 'a0', 'walrus', 'wal-x', 'z/deep/er/key'];
    const all = [...keys, ...others];
    // Bounded concurrency: a handful of puts at a time.
    for (let i = 0; i < all.length; i += 16) await Promise.all(all.slice(i, i + 16).map((k) => storage.put(k, Buffer.from(k))));
    const listed = async (opts: Parameters<Storage['list']>[0]) => {
      const out: string[] = [];
      for await (const o of storage.list(opts)) out.push(o.key);
      return out;
    };
    expect(await listed({ prefix: 'wal/', pageSize: 25 })).toEqual(keys);
    expect(await listed({})).toEqual(['a-c', 'a.x', 'a/b', 'a0', 'wal-x', ...keys, 'walrus', 'z/deep/er/key']);
    expect(await listed({ prefix: 'wal', pageSize: 7 })).toEqual(['wal-x', ...keys, 'walrus']);
    expect(await listed({ prefix: 'a' })).toEqual(['a-c', 'a.x', 'a/b', 'a0']);
    expect(await listed({ prefix: 'z/de' })).toEqual(['z/deep/er/key']);
    expect(await listed({ prefix: 'nothing/' })).toEqual([]);
    expect(await listed({ prefix: 'wal/', startAfter: 'wal/00000120', pageSize: 4 })).toEqual(keys.slice(121));
    const first = (await storage.list({ prefix: 'wal/' })[Symbol.asyncIterator]().next()).value;
    expect(first).toMatchObject({ key: 'wal/00000000', size: 12 });
    // Breaking out stops the listing.
    let seen = 0;
    for await (const _ of storage.list({ prefix: 'wal/', pageSize: 10 })) if (++seen === 15) break;
    expect(seen).toBe(15);

    await storage.deleteMany([...keys.slice(0, 100), 'never-existed']);
    expect(await listed({ prefix: 'wal/' })).toEqual(keys.slice(100));
    await storage.delete('a.x');
    await storage.delete('a.x'); // missing: still fine
    expect(await storage.stat('a.x')).toBeUndefined();
    await storage.deleteMany([]);
    await storage.close();
  });

  it('keeps the contract callers follow: no key is also the folder of another', async () => {
    const { storage } = await make();
    await storage.put('f/g', Buffer.from('x'));
    // Object storage would accept "f" too; callers must not rely on it. What both agree on:
    expect(await storage.stat('f')).toBeUndefined();
    await expect(storage.get('f')).rejects.toMatchObject({ statusCode: 404 });
    if (storage.kind === 'local')
      await expect(storage.put('f', Buffer.from('y'))).rejects.toMatchObject({ statusCode: 409, operation: 'put' });
    await storage.close();
  });

  it('uploads 40 MiB in 8 MiB parts and gives back the same bytes, whole and across part boundaries', async () => {
    const { storage, leftovers } = await make();
    const data = randomBytes(40 * MiB);
    const put = await storage.put('big/archive.tar', chunked(data));
    expect(put).toEqual({ key: 'big/archive.tar', size: data.length, sha256: sha256(data) });
    expect(sha256(await bytesOf(await storage.get('big/archive.tar')))).toBe(sha256(data));
    const across = { offset: 8 * MiB - 100, length: 8 * MiB + 200 };
    expectSameBytes(
      await bytesOf(await storage.get('big/archive.tar', { range: across })),
      data.subarray(across.offset, across.offset + across.length),
    );
    expect((await storage.stat('big/archive.tar'))?.size).toBe(data.length);
    expect(await leftovers()).toEqual([]);
    await storage.close();
  });

  it('an aborted put leaves no object and nothing pending; an aborted get stops its stream', async () => {
    const { storage, leftovers, raw, multipart } = await make();
    await storage.put('keep', Buffer.from('old'));
    const controller = new AbortController();
    const { body, produced } = stallingBody(20 * MiB);
    const putting = failure(storage.put('keep', body, { signal: controller.signal }));
    // Once the whole 20 MiB were read, two 8 MiB parts have gone out (or been written to the temporary file).
    await vi.waitFor(() => expect(produced()).toBe(20 * MiB), { timeout: 30_000, interval: 20 });
    controller.abort();
    const err = await putting;
    expect(err).toBeInstanceOf(AbortError);
    expect(body.destroyed).toBe(true);
    // The key keeps its previous object, nothing else is stored or pending.
    expect(await text(await storage.get('keep'))).toBe('old');
    expect(await leftovers()).toEqual([]);
    expect(await raw()).toEqual(['keep']);
    // Object storage: the abort hit a multipart upload in progress, which was aborted on the server.
    if (multipart) expect(multipart('keep')).toEqual({ created: true, aborted: true });

    await expect(storage.put('x', Buffer.from('x'), { signal: AbortSignal.abort() })).rejects.toThrow(AbortError);
    expect(await storage.stat('x')).toBeUndefined();

    await storage.put('big', randomBytes(2 * MiB));
    const reading = new AbortController();
    const stream = await storage.get('big', { signal: reading.signal });
    const reader = stream[Symbol.asyncIterator]();
    await reader.next();
    reading.abort();
    await expect(reader.next()).rejects.toThrow(AbortError);
    await storage.close();
  });

  it('a body that fails mid-way fails the put with a StorageError and leaves nothing', async () => {
    const { storage, leftovers, raw } = await make();
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < 12; i++) yield randomBytes(MiB);
        throw new Error('the producer broke');
      })(),
    );
    const err = await failure(storage.put('broken', body));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'put', key: 'broken' });
    expect((err as Error).message).toContain('the producer broke');
    expect(await storage.stat('broken')).toBeUndefined();
    expect(await leftovers()).toEqual([]);
    expect(await raw()).toEqual([]);
    await storage.close();
  });
});

describe('local directory storage', () => {
  it('writes files 0600 and directories 0700', async () => {
    const dir = await mkdtemp(join(runRoot(), 'tmp', 'storage-modes-'));
    const storage = new LocalStorage({ path: join(dir, 'repo') });
    await storage.put('d1/d2/f', Buffer.from('x'));
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(dir, 'repo', 'd1', 'd2', 'f'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'repo', 'd1', 'd2'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'repo'))).mode & 0o777).toBe(0o700);
  });
});

describe('openStorage', () => {
  it('opens a local path and an s3:// address that work alike', async () => {
    const dir = await mkdtemp(join(runRoot(), 'tmp', 'storage-open-'));
    const local = await openStorage(join(dir, 'r'));
    expect(local.kind).toBe('local');
    await local.put('k', Buffer.from('v'));
    expect(await text(await local.get('k'))).toBe('v');
    const s3 = await openStorage(
      `s3://${BUCKET}/open/x?endpoint=${encodeURIComponent(swiftS3.swift.endpoint)}&region=us-east-1&forcePathStyle=true`,
      { s3: { credentials: swiftS3.swift.credentials } },
    );
    expect(s3.kind).toBe('s3');
    expect(s3.location).toBe(`s3://${BUCKET}/open/x/`);
    await s3.put('k', Buffer.from('v'));
    expect(await text(await s3.get('k'))).toBe('v');
    await local[Symbol.asyncDispose]();
    const listed = await swiftS3.admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKET })); // the client is usable
    expect(listed.$metadata.httpStatusCode).toBe(200);
    await s3.close();
  });

  it('reports wrong credentials as a 403 StorageError without the secret', async () => {
    const s3 = await createS3Storage({
      bucket: BUCKET,
      endpoint: swiftS3.swift.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test:tester', secretAccessKey: 'not-the-secret-xyz' },
    });
    const err = await failure(s3.put('k', Buffer.from('v')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ statusCode: 403, retryable: false, operation: 'put' });
    expect((err as Error).message).not.toContain('not-the-secret-xyz');
    await s3.close();
  });
});

describe('S3 storage under injected faults', () => {
  const partRequest = (n: number): RegExp => new RegExp(`[?&]partNumber=${n}(&|$)`);

  it('retries 500, 503 SlowDown, a reset mid-part and a stall, and completes the upload intact', async () => {
    const { storage, leftovers, prefix } = await s3Subject({
      partSizeBytes: 5 * MiB,
      partsInFlight: 2,
      idleTimeoutMs: 1500,
      maxAttempts: 6,
    });
    swiftS3.proxy.clear();
    const before = swiftS3.proxy.hits();
    swiftS3.proxy.inject({
      method: 'POST',
      url: /[?&]uploads(=|&|$)/,
      action: { kind: 'status', status: 503, code: 'ServiceUnavailable' },
    });
    swiftS3.proxy.inject({ method: 'PUT', url: partRequest(1), action: { kind: 'reset', afterBytes: 2 * MiB } });
    swiftS3.proxy.inject({ method: 'PUT', url: partRequest(2), action: { kind: 'status', status: 500, code: 'InternalError' } });
    swiftS3.proxy.inject({ method: 'PUT', url: partRequest(3), action: { kind: 'status', status: 503, code: 'SlowDown' } });
    swiftS3.proxy.inject({ method: 'PUT', url: partRequest(4), action: { kind: 'stall' } });
    const data = randomBytes(22 * MiB);
    const put = await storage.put('faulty', chunked(data));
    expect(put.sha256).toBe(sha256(data));
    expect(swiftS3.proxy.hits() - before).toBe(5);
    expect(sha256(await bytesOf(await storage.get('faulty')))).toBe(sha256(data));
    expect(await leftovers()).toEqual([]);
    expect(prefix).toMatch(/\/$/);
    await storage.close();
  });

  it('retries throttled and failing small requests: put, stat, get, list, delete many', async () => {
    const { storage } = await s3Subject({ idleTimeoutMs: 1500 });
    swiftS3.proxy.clear();
    const before = swiftS3.proxy.hits();
    swiftS3.proxy.inject({ method: 'PUT', action: { kind: 'status', status: 503, code: 'SlowDown' } });
    swiftS3.proxy.inject({ method: 'PUT', action: { kind: 'stall' } });
    await storage.put('small', Buffer.from('payload'));
    swiftS3.proxy.inject({ method: 'HEAD', action: { kind: 'status', status: 500, code: 'InternalError' } });
    expect(await storage.stat('small')).toMatchObject({ size: 7 });
    swiftS3.proxy.inject({ method: 'GET', url: /\/small/, action: { kind: 'stall' } });
    expect(await text(await storage.get('small'))).toBe('payload');
    swiftS3.proxy.inject({ method: 'GET', url: /list-type=2/, action: { kind: 'status', status: 503, code: 'SlowDown' } });
    const keys: string[] = [];
    for await (const o of storage.list()) keys.push(o.key);
    expect(keys).toEqual(['small']);
    swiftS3.proxy.inject({ method: 'POST', url: /[?&]delete(=|&|$)/, action: { kind: 'reset', afterBytes: 0 } });
    await storage.deleteMany(['small']);
    expect(await storage.stat('small')).toBeUndefined();
    expect(swiftS3.proxy.hits() - before).toBe(6);
    await storage.close();
  });

  it('fails cleanly with a retryable StorageError when a part keeps failing, leaving no object and no pending upload', async () => {
    const { storage, leftovers } = await s3Subject({ partSizeBytes: 5 * MiB, partsInFlight: 2, maxAttempts: 3 });
    swiftS3.proxy.clear();
    const before = swiftS3.proxy.hits();
    swiftS3.proxy.inject({
      method: 'PUT',
      url: partRequest(2),
      times: 100,
      action: { kind: 'status', status: 500, code: 'InternalError' },
    });
    let produced = 0;
    const body = Readable.from(
      (function* () {
        // Long enough that the upload would go on for a while after the failure if it did not stop the feed.
        for (let i = 0; i < 400; i++) {
          produced += MiB;
          yield randomBytes(MiB);
        }
      })(),
    );
    const err = await failure(storage.put('doomed', body));
    swiftS3.proxy.clear();
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'put', key: 'doomed', statusCode: 500, retryable: true });
    expect((err as Error).message).toMatch(/InternalError.*HTTP 500, 3 attempts/);
    expect(swiftS3.proxy.hits() - before).toBe(3);
    expect(produced).toBeLessThan(100 * MiB);
    expect(await storage.stat('doomed')).toBeUndefined();
    expect(await leftovers()).toEqual([]);
    await storage.close();
  });

  it('fails cleanly when the multipart upload cannot even be created, and releases the body', async () => {
    const { storage, leftovers } = await s3Subject({ partSizeBytes: 5 * MiB, maxAttempts: 2 });
    swiftS3.proxy.clear();
    swiftS3.proxy.inject({
      method: 'POST',
      url: /[?&]uploads(=|&|$)/,
      times: 2,
      action: { kind: 'status', status: 503, code: 'ServiceUnavailable' },
    });
    const { body } = stallingBody(64 * MiB);
    const err = await failure(storage.put('never', body));
    swiftS3.proxy.clear();
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'put', key: 'never', statusCode: 503, retryable: true });
    expect(body.destroyed).toBe(true);
    expect(await storage.stat('never')).toBeUndefined();
    expect(await leftovers()).toEqual([]);
    await storage.close();
  });

  it('a part corrupted on the way is refused by the server (Content-MD5) and not stored', async () => {
    const { storage, leftovers } = await s3Subject({ partSizeBytes: 5 * MiB, partsInFlight: 2 });
    swiftS3.proxy.clear();
    swiftS3.proxy.inject({ method: 'PUT', url: partRequest(2), action: { kind: 'corrupt' } });
    const err = await failure(storage.put('corrupted', chunked(randomBytes(12 * MiB))));
    swiftS3.proxy.clear();
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'put', statusCode: 400, retryable: false });
    expect((err as Error).message).toMatch(/BadDigest/);
    expect(await storage.stat('corrupted')).toBeUndefined();
    expect(await leftovers()).toEqual([]);
    await storage.close();
  });
});
