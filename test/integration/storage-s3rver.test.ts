/**
 * The S3 storage on a second server, s3rver (see test/harness/s3rver.ts for what it lacks): what works
 * alike on Swift (multipart puts, whole and ranged gets, stat, a one-page listing, deletes), and two of
 * its habits that our code must survive rather than pass on: a ranged GET answered with the whole object
 * is refused (handed on, those bytes would land where the range belongs), and a put whose body broke
 * reports the body's failure, not the server's refusal to abort the multipart upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { createS3Storage } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/types.js';
import { s3rverBucketForFile } from '../harness/s3rver.js';

const MiB = 1024 * 1024;
const server = s3rverBucketForFile('pgbb-second');
let seq = 0;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function storage(): Promise<Storage> {
  seq += 1;
  return createS3Storage({
    bucket: server.bucket,
    prefix: `s${seq}/`,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: server.credentials,
    partSizeBytes: 5 * MiB,
    partsInFlight: 3,
  });
}

describe('S3 storage on s3rver', () => {
  it('multipart puts, whole and ranged gets, stat, listing and deletes work as on Swift', async () => {
    const s = await storage();
    const data = randomBytes(17 * MiB + 123);
    // Uneven pieces across the 5 MiB parts.
    const put = await s.put('a/big.bin', Readable.from([data.subarray(0, 9_000_000), data.subarray(9_000_000)]));
    expect(put).toEqual({ key: 'a/big.bin', size: data.length, sha256: sha256(data) });
    expect(sha256(await bytesOf(await s.get('a/big.bin')))).toBe(sha256(data));
    for (const [offset, length] of [
      [1000, 5000],
      [5 * MiB - 10, 20],
      [17 * MiB, 1000],
    ] as const) {
      const got = await bytesOf(await s.get('a/big.bin', { range: { offset, length } }));
      expect(sha256(got)).toBe(sha256(data.subarray(offset, offset + length)));
    }
    await s.put('a/small.json', Buffer.from('{}'));
    expect(await s.stat('a/small.json')).toMatchObject({ key: 'a/small.json', size: 2 });
    const listed: [string, number][] = [];
    for await (const o of s.list({ prefix: 'a/' })) listed.push([o.key, o.size]);
    expect(listed).toEqual([
      ['a/big.bin', data.length],
      ['a/small.json', 2],
    ]);
    await s.deleteMany(['a/big.bin', 'a/small.json']);
    const left: string[] = [];
    for await (const o of s.list()) left.push(o.key);
    expect(left).toEqual([]);
    await s.close();
  });

  it('a ranged GET answered with the whole object is refused, not handed on', async () => {
    const s = await storage();
    const data = randomBytes(100_000);
    await s.put('r', data);
    // s3rver answers bytes=0-0 with all 100,000 bytes (and says so in Content-Range).
    const err = await s.get('r', { range: { offset: 0, length: 1 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'get', key: 'r' });
    expect((err as Error).message).toBe(
      'storage get "r" failed: the server answered another byte range (asked bytes 0-0, answered "bytes 0-99999/100000"): this storage server cannot serve ranged reads',
    );
    await s.close();
  });

  it('a put whose body breaks reports the body, not the server refusing to abort the upload', async () => {
    const s = await storage();
    const body = Readable.from(
      (async function* () {
        yield randomBytes(12 * MiB);
        throw new Error('the producer broke');
      })(),
    );
    const err = await s.put('broken', body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toContain('the producer broke');
    expect(await s.stat('broken')).toBeUndefined();
    await s.close();
  });
});
