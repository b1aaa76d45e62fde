/**
 * A backup repository on a {@link Storage}: its identity record, the catalog of committed backups, the
 * objects of each backup, and the lock that backup and expire hold. {@link openRepository} opens one from
 * its address. The layout is in layout.ts and docs/repository.md.
 * @module
 */
import type { Readable } from 'node:stream';
import { RepositoryError } from '../errors.js';
import { openStorage, type OpenStorageOptions } from '../storage/open.js';
import type { ByteRange, Storage, StorageCallOptions } from '../storage/types.js';
import { isBackupId } from './backup-id.js';
import { sortBackups } from './catalog.js';
import { checkClusterIdentity, decodeRepositoryInfo, encodeRepositoryInfo, type ClusterIdentity, type RepositoryInfo } from './identity.js';
import {
  BACKUPS_PREFIX,
  backupDataPrefix,
  backupObjectKey,
  CATALOG_PREFIX,
  catalogKey,
  idOfBackupObjectKey,
  idOfCatalogKey,
  REPOSITORY_FORMAT_VERSION,
  REPOSITORY_INFO_KEY,
} from './layout.js';
import { acquireLock, type RepositoryLock } from './lock.js';
import { readSmallObject } from './objects.js';
import { decodeBackupRecord, encodeBackupRecord, type BackupRecord } from './record.js';
import { walArchiveOf, type RepositoryWalArchive } from './wal-archive.js';
import { listWalKeys } from './wal-listing.js';

export type { RepositoryWalArchive } from './wal-archive.js';

/** The lock that backups and expire share: one of them changes the repository at a time. */
const REPOSITORY_LOCK = 'repository';

/** Options of {@link openRepository}. */
export interface OpenRepositoryOptions extends OpenStorageOptions {
  /**
   * Use this storage instead of opening one from the address (another backend, or a shared client).
   * The repository closes it when it is closed.
   */
  storage?: Storage | undefined;
  /**
   * Lease of the repository lock, in milliseconds (renewed every third of it). A backup or expire that
   * died on another host blocks the next one for at most this long; one that died on this host does not
   * block at all (its process is seen to be gone).
   * @default 60000
   */
  lockLeaseMs?: number | undefined;
}

/**
 * Open the repository at `address`: a local directory, or `s3://BUCKET/PREFIX?endpoint=...&region=...&forcePathStyle=true`
 * (credentials from the AWS SDK's provider chain, never from the address). Nothing is created until a
 * backup is stored; nothing is contacted until the first call. Throws {@link pg-basebackup/errors!ConfigError} for a bad address.
 *
 * @example
 * ```ts
 * import { openRepository } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('/backups/db1');
 * for (const backup of await repo.listBackups()) console.log(backup.id, backup.type, backup.endTime);
 * ```
 */
export async function openRepository(address: string, options: OpenRepositoryOptions = {}): Promise<Repository> {
  const storage = options.storage ?? (await openStorage(address, options.s3 === undefined ? {} : { s3: options.s3 }));
  return new Repository(storage, options.lockLeaseMs === undefined ? {} : { lockLeaseMs: options.lockLeaseMs });
}

/** A backup repository. Methods fail with `StorageError`, {@link RepositoryError} and the errors they name. */
export class Repository {
  readonly #lockLeaseMs: number | undefined;

  constructor(
    /** Where the repository's objects are. */
    readonly storage: Storage,
    options: { lockLeaseMs?: number | undefined } = {},
  ) {
    this.#lockLeaseMs = options.lockLeaseMs;
  }

  /** Where it is, for messages: a path or `s3://bucket/prefix` (never credentials). */
  get location(): string {
    return this.storage.location;
  }

  /** The format version and the cluster, or `undefined` while nothing was stored yet. */
  async info(options: StorageCallOptions = {}): Promise<RepositoryInfo | undefined> {
    const bytes = await readSmallObject(this.storage, REPOSITORY_INFO_KEY, options);
    return bytes === undefined ? undefined : decodeRepositoryInfo(bytes);
  }

  /**
   * Checks that `cluster` is the one the repository serves, recording it on first use. Throws
   * {@link pg-basebackup/errors!RepositoryMismatchError} for another cluster. Call it with the lock held, so that two first
   * uses cannot both record.
   */
  async claim(cluster: ClusterIdentity, options: StorageCallOptions = {}): Promise<RepositoryInfo> {
    const info = await this.info(options);
    if (info !== undefined) {
      checkClusterIdentity(info.cluster, cluster, this.location);
      if (info.cluster.walSegmentSize !== undefined || cluster.walSegmentSize === undefined) return info;
      // A repository first used before the segment size was recorded learns it now.
      const completed: RepositoryInfo = { ...info, cluster: { ...info.cluster, walSegmentSize: cluster.walSegmentSize } };
      await this.storage.put(REPOSITORY_INFO_KEY, encodeRepositoryInfo(completed), options);
      return completed;
    }
    const created: RepositoryInfo = { formatVersion: REPOSITORY_FORMAT_VERSION, cluster, createdAt: new Date() };
    await this.storage.put(REPOSITORY_INFO_KEY, encodeRepositoryInfo(created), options);
    return created;
  }

  /** Every committed backup, oldest first. A backup without its record (still running, or failed) is not one. */
  async listBackups(options: StorageCallOptions = {}): Promise<BackupRecord[]> {
    await this.info(options); // refuses a repository of a newer format before reading its records
    const records: BackupRecord[] = [];
    for await (const object of this.storage.list({ ...options, prefix: CATALOG_PREFIX })) {
      const id = idOfCatalogKey(object.key);
      if (id === undefined || !isBackupId(id)) continue;
      const bytes = await readSmallObject(this.storage, object.key, options);
      if (bytes !== undefined) records.push(decodeBackupRecord(bytes, id));
    }
    return sortBackups(records);
  }

  /**
   * The WAL archive (`receive-wal --repo`): its extent per timeline and its newest segment. `undefined`
   * while it holds no segment, or while `repository.json` does not record the segment size (no run that
   * knows it has used the repository yet).
   */
  async walArchive(options: StorageCallOptions = {}): Promise<RepositoryWalArchive | undefined> {
    const segmentSize = (await this.info(options))?.cluster.walSegmentSize;
    if (segmentSize === undefined) return undefined;
    return walArchiveOf(await listWalKeys(this.storage, options), segmentSize);
  }

  /** One committed backup's record. Throws {@link RepositoryError} when the repository has none with this id. */
  async getBackup(id: string, options: StorageCallOptions = {}): Promise<BackupRecord> {
    const bytes = isBackupId(id) ? await readSmallObject(this.storage, catalogKey(id), options) : undefined;
    if (bytes === undefined) {
      throw new RepositoryError(`the repository ${this.location} has no backup "${id}"`, {
        key: isBackupId(id) ? catalogKey(id) : undefined,
        advice: 'list the backups with "pgbb list --repo REPO"',
      });
    }
    return decodeBackupRecord(bytes, id);
  }

  /**
   * Commits a backup: writes its catalog record, after every object it lists is stored. Until this
   * resolves the backup does not exist for {@link listBackups}.
   */
  async commitBackup(record: BackupRecord, options: StorageCallOptions = {}): Promise<void> {
    await this.storage.put(catalogKey(record.id), encodeBackupRecord(record), options);
  }

  /** Reads one object of a backup (`base.tar`, `backup_manifest`), whole or a range. */
  async openBackupObject(id: string, name: string, options: StorageCallOptions & { range?: ByteRange } = {}): Promise<Readable> {
    return this.storage.get(backupObjectKey(id, name), options);
  }

  /** Deletes every data object of backup `id` (not its record). */
  async deleteBackupObjects(id: string, options: StorageCallOptions = {}): Promise<void> {
    const keys: string[] = [];
    for await (const object of this.storage.list({ ...options, prefix: backupDataPrefix(id) })) keys.push(object.key);
    if (keys.length > 0) await this.storage.deleteMany(keys, options);
  }

  /**
   * Ids that have data objects but no catalog record: backups that failed or were killed before their
   * commit. Only meaningful with the lock held (otherwise a running backup's objects are among them).
   */
  async uncommittedBackups(options: StorageCallOptions = {}): Promise<string[]> {
    const committed = new Set<string>();
    for await (const object of this.storage.list({ ...options, prefix: CATALOG_PREFIX })) {
      const id = idOfCatalogKey(object.key);
      if (id !== undefined) committed.add(id);
    }
    const orphans = new Set<string>();
    for await (const object of this.storage.list({ ...options, prefix: BACKUPS_PREFIX })) {
      const id = idOfBackupObjectKey(object.key);
      if (id !== undefined && !committed.has(id)) orphans.add(id);
    }
    return [...orphans];
  }

  /**
   * Removes what backups that died before their commit left: the objects of every uncommitted backup,
   * and the leftovers of their interrupted uploads (temporary files, multipart uploads). Call it only
   * with the lock held. Resolves to the ids whose objects were removed.
   */
  async removeUncommitted(options: StorageCallOptions = {}): Promise<string[]> {
    const ids = await this.uncommittedBackups(options);
    for (const id of ids) await this.deleteBackupObjects(id, options);
    await this.storage.removeIncomplete(BACKUPS_PREFIX, options);
    return ids;
  }

  /**
   * Takes the repository lock for `operation` (`backup`, `expire`). Fails with
   * {@link pg-basebackup/errors!RepositoryLockedError} while another live holder has it.
   */
  async lock(
    operation: string,
    options: { signal?: AbortSignal | undefined; onLost?: (err: Error) => void } = {},
  ): Promise<RepositoryLock> {
    return acquireLock(this.storage, REPOSITORY_LOCK, { operation, leaseMs: this.#lockLeaseMs, ...options });
  }

  /** Closes the storage. Idempotent. */
  async close(): Promise<void> {
    await this.storage.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
