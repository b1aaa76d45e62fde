/**
 * The repository's own record, `repository.json`: its format version and the one cluster it serves
 * (system identifier and major version, recorded on first use). Pure.
 * @module
 */
import { RepositoryError, RepositoryMismatchError } from '../errors.js';
import { encodeRecord, RecordReader } from './json.js';
import { REPOSITORY_FORMAT_VERSION, REPOSITORY_INFO_KEY } from './layout.js';

/** The cluster a repository serves. */
export interface ClusterIdentity {
  /** The database system identifier (IDENTIFY_SYSTEM's `systemid`), a 64-bit number in decimal. */
  systemIdentifier: string;
  /** The PostgreSQL major version (`17`). */
  majorVersion: number;
  /**
   * The WAL segment size in bytes (`SHOW wal_segment_size`), recorded by the first run that knows it:
   * listing and expiring archived WAL name segments with it.
   */
  walSegmentSize?: number | undefined;
}

/** What `repository.json` holds. */
export interface RepositoryInfo {
  /** The repository format version (see docs/repository.md). */
  formatVersion: number;
  /** The cluster the repository serves. */
  cluster: ClusterIdentity;
  /** When the repository was first used. */
  createdAt: Date;
}

/** `repository.json`'s bytes. */
export function encodeRepositoryInfo(info: RepositoryInfo): Buffer {
  return encodeRecord({
    formatVersion: info.formatVersion,
    systemIdentifier: info.cluster.systemIdentifier,
    majorVersion: info.cluster.majorVersion,
    ...(info.cluster.walSegmentSize === undefined ? {} : { walSegmentSize: info.cluster.walSegmentSize }),
    createdAt: info.createdAt.toISOString(),
  });
}

/**
 * Decodes `repository.json`. Throws {@link RepositoryError} when it is not of the documented shape or its
 * format version is newer than {@link REPOSITORY_FORMAT_VERSION}.
 */
export function decodeRepositoryInfo(bytes: Uint8Array | string): RepositoryInfo {
  const r = RecordReader.parse(REPOSITORY_INFO_KEY, bytes);
  const formatVersion = r.integer('formatVersion', 1);
  if (formatVersion > REPOSITORY_FORMAT_VERSION) {
    throw new RepositoryError(
      `the repository has format version ${formatVersion}, and this pg-basebackup reads up to version ${REPOSITORY_FORMAT_VERSION}`,
      { key: REPOSITORY_INFO_KEY, advice: 'upgrade pg-basebackup to use this repository' },
    );
  }
  const systemIdentifier = r.string('systemIdentifier');
  if (!/^[0-9]{1,20}$/.test(systemIdentifier)) r.fail('systemIdentifier', 'expected a decimal number');
  return {
    formatVersion,
    cluster: {
      systemIdentifier,
      majorVersion: r.integer('majorVersion', 1),
      ...(r.has('walSegmentSize') ? { walSegmentSize: r.integer('walSegmentSize', 1) } : {}),
    },
    createdAt: r.date('createdAt'),
  };
}

/**
 * Throws {@link pg-basebackup/errors!RepositoryMismatchError} unless `actual` is the cluster the repository serves. A new major
 * version of the same cluster (pg_upgrade keeps the system identifier) is refused too: its backups and WAL
 * are not interchangeable with the old ones.
 */
export function checkClusterIdentity(expected: ClusterIdentity, actual: ClusterIdentity, location: string): void {
  // The segment size is fixed at initdb: with the same system identifier it cannot differ, so it is not compared.
  if (expected.systemIdentifier === actual.systemIdentifier && expected.majorVersion === actual.majorVersion) return;
  const what =
    expected.systemIdentifier !== actual.systemIdentifier
      ? `system identifier ${actual.systemIdentifier}, and the repository serves ${expected.systemIdentifier}`
      : `PostgreSQL ${actual.majorVersion}, and the repository serves PostgreSQL ${expected.majorVersion}`;
  throw new RepositoryMismatchError(`the repository ${location} belongs to another cluster: this server has ${what}`, {
    expected,
    actual,
    advice: "use this cluster's own repository, or a new one (an empty directory or S3 prefix)",
  });
}
