// An S3 repository for the repository cases: the Swift server the tests use (Debian's packages,
// S3 API on loopback), one bucket, and a way to empty a prefix between runs so that every backup run
// uploads into an empty repository as a first backup would.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { openStorage } from '../../src/storage/open.js';
import { startSwift, type SwiftServer } from '../../test/harness/swift.js';

const BUCKET = 'bench';

export interface BenchRepository {
  /** The `--repo` address of `prefix` in the bucket. */
  address(prefix: string): string;
  /** What the CLI needs in its environment (credentials come through the SDK's provider chain). */
  env: Record<string, string>;
  /** Deletes every object under `prefix`. */
  clear(prefix: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchRepository(): Promise<BenchRepository> {
  // The SDK warns on Node < 22 about its own future releases, in the middle of the bench's log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const swift: SwiftServer = await startSwift();
  const admin = new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: swift.credentials,
    // Swift's s3api answers the SDK's default streaming checksums with 501.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } finally {
    admin.destroy();
  }
  const address = (prefix: string) => `s3://${BUCKET}/${prefix}?endpoint=${swift.endpoint}&region=${swift.region}&forcePathStyle=true`;
  return {
    address,
    env: {
      AWS_ACCESS_KEY_ID: swift.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.credentials.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    async clear(prefix) {
      const storage = await openStorage(address(prefix), { s3: { credentials: swift.credentials } });
      try {
        const keys: string[] = [];
        for await (const o of storage.list()) keys.push(o.key);
        if (keys.length > 0) await storage.deleteMany(keys);
      } finally {
        await storage.close();
      }
    },
    stop: () => swift.stop(),
  };
}
