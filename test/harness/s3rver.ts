/**
 * A second S3 server: s3rver (npm), an S3 API on the file system, run in the test's own process on a free
 * loopback port. Its habits are not Swift's, so code that fits one server's shows here. It is not a
 * complete S3: on Node 17 and later it cannot page a listing (its continuation token uses a cipher
 * OpenSSL 3 refuses: 500), it has no AbortMultipartUpload (405), it answers `Range: bytes=0-0` with the
 * whole object (`Content-Range: bytes 0-(size-1)/size`), and a DeleteObjects of keys in one folder sometimes races with itself (500, retried).
 * Started in the file's beforeAll, stopped in its afterAll.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { makeTempDir } from './run-root.js';

/** What the storage tests need of the server. */
export interface S3rverBucket {
  /** `http://127.0.0.1:PORT` (ready once the file's beforeAll ran). */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  /** s3rver accepts any key pair; these are its documented defaults. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** The keys of the multipart uploads left pending under `prefix` (s3rver keeps each in a directory of its own). */
  pendingUploads(prefix: string): Promise<string[]>;
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

/** Where s3rver keeps a bucket's pending multipart uploads (its `._S3rver_uploads` resource). */
const UPLOADS = '._S3rver_uploads';

/** Starts s3rver with `bucket` in the file's beforeAll, on a directory of the run's, and stops it in its afterAll. */
export function s3rverBucketForFile(bucket: string): S3rverBucket {
  let server: S3rverInstance | undefined;
  let directory = '';
  let endpoint = '';
  beforeAll(async () => {
    // @ts-expect-error no type declarations ship with the package: the constructor's shape is declared above.
    const S3rver = (await import('s3rver')).default as unknown as S3rverConstructor;
    directory = await makeTempDir('s3rver-');
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    get endpoint() {
      return endpoint;
    },
    bucket,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async pendingUploads(prefix: string): Promise<string[]> {
      const root = join(directory, bucket, UPLOADS);
      const ids = await readdir(root).catch(() => [] as string[]);
      const keys = await Promise.all(ids.map((id) => readFile(join(root, id, 'key'), 'utf8').catch(() => '')));
      return keys.filter((k) => k.startsWith(prefix)).sort();
    },
  };
}
