/**
 * Storage for repository tests: a Swift server with one bucket (and an admin client to look at it from the
 * side), started in the file's beforeAll and stopped in its afterAll; the two kinds of repository the
 * tests run on, a local directory and an S3 prefix of that bucket, behind one interface; and what a test
 * reads back from a repository (its keys, an object's bytes).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { decompressArchive } from '../../src/compress/archive.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { makeTempDir } from './run-root.js';
import { startSwift, type SwiftServer } from './swift.js';

/** A Swift server with a bucket, for the tests of one file (ready once its beforeAll ran). */
export interface SwiftBucket {
  readonly swift: SwiftServer;
  readonly bucket: string;
  /** A client with the test account's credentials, for what the code under test does not show. */
  readonly admin: S3Client;
  /** The fault-injecting proxy in front of Swift, when asked for. */
  readonly proxy: FaultProxy;
  /** The repository address of `prefix` in the bucket, reached at `endpoint` (default: Swift itself). */
  address(prefix: string, endpoint?: string): string;
  /** The keys of the multipart uploads left pending under `prefix`. */
  pendingUploads(prefix: string): Promise<string[]>;
}

/**
 * A client with the test account's credentials, for what the code under test does not show (buckets,
 * pending uploads). s3api answers the SDK's default streaming checksums with 501 (see S3-TESTING.md).
 */
export function swiftAdmin(swift: SwiftServer, endpoint = swift.endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: swift.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Starts Swift in the file's beforeAll, creates `bucket` (and, with `faultProxy`, starts a fault-injecting
 * proxy in front of it), and stops them in its afterAll.
 */
export function swiftBucketForFile(bucket: string, options: { faultProxy?: boolean } = {}): SwiftBucket {
  let started: { swift: SwiftServer; admin: S3Client; proxy: FaultProxy | undefined } | undefined;
  beforeAll(async () => {
    const swift = await startSwift();
    const admin = swiftAdmin(swift);
    started = { swift, admin, proxy: undefined };
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    if (options.faultProxy) started.proxy = await startFaultProxy(swift.endpoint);
  }, 150_000);
  afterAll(async () => {
    started?.admin.destroy();
    await started?.proxy?.close();
    await started?.swift.stop();
  });
  const ready = () => {
    if (started === undefined) throw new Error(`Swift and the bucket ${bucket} are ready once beforeAll ran`);
    return started;
  };
  return {
    bucket,
    get swift() {
      return ready().swift;
    },
    get admin() {
      return ready().admin;
    },
    get proxy() {
      const { proxy } = ready();
      if (proxy === undefined) throw new Error('no fault proxy: pass { faultProxy: true }');
      return proxy;
    },
    address(prefix, endpoint = ready().swift.endpoint) {
      return `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=${ready().swift.region}&forcePathStyle=true`;
    },
    async pendingUploads(prefix) {
      const out = await ready().admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      return (out.Uploads ?? []).map((u) => u.Key ?? '');
    },
  };
}

/** How a test opens a {@link RepositoryTarget}. */
export interface OpenTargetOptions {
  /** The lock's lease, in milliseconds (see `OpenRepositoryOptions`). */
  lockLeaseMs?: number;
  /** S3: reach the bucket through this endpoint instead of Swift's own (a fault-injecting proxy). */
  endpoint?: string;
  /** S3: attempts per request. */
  maxAttempts?: number;
}

/** A new, empty repository to test on. */
export interface RepositoryTarget {
  kind: 'local' | 's3';
  /** What `--repo` takes. */
  address: string;
  /** S3: what `--repo` takes to reach the bucket through `endpoint` (a fault-injecting proxy); local: {@link address}. */
  addressVia(endpoint: string): string;
  /** The environment the CLI needs to reach it: S3 credentials come from the SDK's provider chain, as in production. */
  env: Record<string, string>;
  /** Opens it with the library (with the test account's credentials for S3). */
  open(options?: OpenTargetOptions): Promise<Repository>;
  /** What interrupted uploads of backup objects left: temporary files, pending multipart uploads. */
  leftovers(): Promise<string[]>;
}

let prefixSeq = 0;

/** A new, empty repository: a directory that does not exist yet, or a new prefix of `s3.bucket`; `label` names it. */
export async function repositoryTarget(
  kind: 'local' | 's3',
  label: string,
  s3?: { readonly swift: SwiftServer; readonly bucket: string },
): Promise<RepositoryTarget> {
  if (kind === 'local') {
    const address = join(await makeTempDir(label), 'repo');
    return {
      kind,
      address,
      addressVia: () => address,
      env: {},
      open: ({ lockLeaseMs } = {}) => openRepository(address, lockLeaseMs === undefined ? {} : { lockLeaseMs }),
      leftovers: async () =>
        (await readdir(join(address, 'backups'), { recursive: true, withFileTypes: true }).catch(() => []))
          .filter((e) => e.name.startsWith('.pgbb-'))
          .map((e) => join(e.parentPath, e.name)),
    };
  }
  if (s3 === undefined) throw new Error('an S3 repository needs the Swift server and its bucket');
  const { swift, bucket } = s3;
  prefixSeq += 1;
  const prefix = `${label}-${prefixSeq}`;
  const addressVia = (endpoint: string) => `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=${swift.region}&forcePathStyle=true`;
  return {
    kind,
    address: addressVia(swift.endpoint),
    addressVia,
    env: {
      AWS_ACCESS_KEY_ID: swift.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.credentials.secretAccessKey,
      // The SDK warns on Node < 22 about its own future releases; not what the tests look at.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    open: ({ lockLeaseMs, endpoint = swift.endpoint, maxAttempts } = {}) =>
      openRepository(addressVia(endpoint), {
        ...(lockLeaseMs === undefined ? {} : { lockLeaseMs }),
        s3: { credentials: swift.credentials, ...(maxAttempts === undefined ? {} : { maxAttempts }) },
      }),
    leftovers: async () => {
      const admin = swiftAdmin(swift);
      try {
        const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/backups/` }));
        return (out.Uploads ?? []).map((u) => u.Key ?? '');
      } finally {
        admin.destroy();
      }
    },
  };
}

/** The repositories the tests run on, by name, each made new by `make(label)` (see {@link repositoryTarget}). */
export function repositoryTargets(s3: SwiftBucket): [string, (label: string) => Promise<RepositoryTarget>][] {
  return [
    ['local directory', (label) => repositoryTarget('local', label)],
    ['s3 (Swift)', (label) => repositoryTarget('s3', label, s3)],
  ];
}

/** Every key of a repository under `prefix`, sorted. */
export async function repositoryKeys(repo: Repository, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of repo.storage.list({ prefix })) keys.push(o.key);
  return keys.sort();
}

/** An object's bytes, decompressed as its name says. */
export async function objectBytes(repo: Repository, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of decompressArchive(await repo.storage.get(key), key)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}
