// Shared by the repository integration tests: a Swift S3 server with one bucket for the file, and
// repositories on a local directory or under a fresh prefix of that bucket, as the CLI and the library
// address them.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { decompressArchive } from '../../src/compress/archive.js';
import { makeTempDir, startSwift, type SwiftServer } from '../harness/index.js';

/** A client for the test's own checks (buckets, pending uploads), set up for Swift's S3 API. */
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

/** The file's Swift server, with `bucket` created, once beforeAll ran; stopped in afterAll. */
export function useSwiftBucket(bucket: string): { readonly swift: SwiftServer } {
  let swift: SwiftServer | undefined;
  beforeAll(async () => {
    swift = await startSwift();
    const admin = swiftAdmin(swift);
    try {
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      admin.destroy();
    }
  }, 180_000);
  afterAll(async () => {
    await swift?.stop();
  });
  return {
    get swift(): SwiftServer {
      if (swift === undefined) throw new Error('Swift runs once beforeAll ran');
      return swift;
    },
  };
}

/** A repository for one test: its address, the environment the CLI needs for it, and a library handle. */
export interface RepositoryTarget {
  /** `local` or `s3`. */
  kind: 'local' | 's3';
  /** The address given to `--repo`. */
  address: string;
  /** Environment for the CLI (S3 credentials through the SDK's provider chain). */
  env: Record<string, string>;
  /** Opens it with the library (through `endpoint` instead of Swift's own, e.g. a fault proxy). */
  open(o?: { endpoint?: string; maxAttempts?: number }): Promise<Repository>;
}

let seq = 0;

/** A new, empty repository: a directory, or a prefix of `bucket` on `swift`. */
export async function repositoryTarget(
  kind: 'local' | 's3',
  name: string,
  s3?: { swift: SwiftServer; bucket: string },
): Promise<RepositoryTarget> {
  if (kind === 'local') {
    const address = join(await makeTempDir(name), 'repo');
    return { kind, address, env: {}, open: () => openRepository(address) };
  }
  if (s3 === undefined) throw new Error('an S3 repository needs the Swift server and bucket');
  const { swift, bucket } = s3;
  seq += 1;
  const prefix = `${name}-${process.pid}-${seq}`;
  const addressVia = (endpoint: string) => `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=${swift.region}&forcePathStyle=true`;
  return {
    kind,
    address: addressVia(swift.endpoint),
    env: {
      AWS_ACCESS_KEY_ID: swift.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.credentials.secretAccessKey,
      // The SDK warns on Node < 22 about its own future releases; not what the tests look at.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    open: (o = {}) =>
      openRepository(addressVia(o.endpoint ?? swift.endpoint), {
        s3: { credentials: swift.credentials, ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }) },
      }),
  };
}

/** Every key of a repository, sorted. */
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

/** A `pgbb` process started from the built CLI with a minimal environment plus `env`. */
export function spawnPgbb(cliPath: string, args: readonly string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}
