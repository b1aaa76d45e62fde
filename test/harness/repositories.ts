/**
 * Storage for repository tests: a Swift server with one bucket (and an admin client to look at it from the
 * side), started in the file's beforeAll and stopped in its afterAll; and the two kinds of repository the
 * tests run on, a local directory and an S3 prefix of that bucket, behind one interface.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { openRepository, type OpenRepositoryOptions, type Repository } from '../../src/repository/repository.js';
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

/** An S3 client for Swift: s3api answers the SDK's default streaming checksums with 501 (see S3-TESTING.md). */
function swiftClient(swift: SwiftServer): S3Client {
  return new S3Client({
    endpoint: swift.endpoint,
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
    const admin = swiftClient(swift);
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

/** A new, empty repository to test on. */
export interface RepositoryTarget {
  /** What `--repo` takes. */
  address: string;
  /** The environment the CLI needs to reach it: S3 credentials come from the SDK's provider chain, as in production. */
  env: Record<string, string>;
  /** Opens it (with the test account's credentials for S3). */
  open(options?: Omit<OpenRepositoryOptions, 's3'>): Promise<Repository>;
  /** What interrupted uploads of backup objects left: temporary files, pending multipart uploads. */
  leftovers(): Promise<string[]>;
}

let prefixSeq = 0;

/**
 * The repositories the tests run on, by name: a directory that does not exist yet, and a new prefix of
 * `s3`'s bucket. `make(label)` makes a new one each time; `label` names its directory or prefix.
 */
export function repositoryTargets(s3: SwiftBucket): [string, (label: string) => Promise<RepositoryTarget>][] {
  return [
    [
      'local directory',
      async (label) => {
        const address = join(await makeTempDir(label), 'repo');
        return {
          address,
          env: {},
          open: (options = {}) => openRepository(address, options),
          leftovers: async () =>
            (await readdir(join(address, 'backups'), { recursive: true, withFileTypes: true }).catch(() => []))
              .filter((e) => e.name.startsWith('.pgbb-'))
              .map((e) => join(e.parentPath, e.name)),
        };
      },
    ],
    [
      's3 (Swift)',
      async (label) => {
        prefixSeq += 1;
        const prefix = `${label}-${prefixSeq}`;
        const address = s3.address(prefix);
        const { credentials } = s3.swift;
        return {
          address,
          env: { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey },
          open: (options = {}) => openRepository(address, { ...options, s3: { credentials } }),
          leftovers: () => s3.pendingUploads(`${prefix}/backups/`),
        };
      },
    ],
  ];
}
