// The two kinds of repository the repository tests run against: a local directory, and a prefix of a
// bucket on the Swift S3 server, each addressed as users address them and opened through the library.
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { makeTempDir, type SwiftServer } from '../harness/index.js';

/** One repository of a test. */
export interface RepositoryTarget {
  /** What `--repo` takes. */
  address: string;
  /** What a pgbb process needs in its environment to reach it (S3 credentials, as the SDK's provider chain reads them). */
  env: Record<string, string>;
  open(): Promise<Repository>;
}

/** An S3 client of the Swift server, with the checksum settings Swift needs. */
export function swiftAdminClient(swift: SwiftServer): S3Client {
  return new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: swift.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates `bucket` on the Swift server. */
export async function createSwiftBucket(swift: SwiftServer, bucket: string): Promise<void> {
  const admin = swiftAdminClient(swift);
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    admin.destroy();
  }
}

let seq = 0;

/** A fresh local-directory repository. */
export async function localTarget(name: string): Promise<RepositoryTarget> {
  const address = join(await makeTempDir(name), 'repo');
  return { address, env: {}, open: () => openRepository(address) };
}

/** A fresh repository under a new prefix of `bucket` on the Swift server. */
export function swiftTarget(swift: SwiftServer, bucket: string, name: string): RepositoryTarget {
  seq += 1;
  const address = `s3://${bucket}/${name}-${seq}?endpoint=${swift.endpoint}&region=${swift.region}&forcePathStyle=true`;
  return {
    address,
    env: {
      AWS_ACCESS_KEY_ID: swift.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.credentials.secretAccessKey,
      // The SDK warns on Node < 22 about its own future releases; not what the tests look at.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    open: () => openRepository(address, { s3: { credentials: swift.credentials } }),
  };
}
