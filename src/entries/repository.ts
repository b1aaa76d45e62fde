/**
 * Backup repositories on a local directory or S3-compatible object storage: {@link openRepository}, the
 * catalog records of committed backups, the repository lock, and the {@link Storage} interface with its
 * local and S3 implementations (implement it to add another backend). The layout and the JSON of the
 * records are documented in docs/repository.md.
 *
 * @example
 * ```ts
 * import { openRepository, pitrWindow } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('s3://backups/db1?endpoint=http://127.0.0.1:8080&forcePathStyle=true');
 * const backups = await repo.listBackups();
 * for (const b of backups) console.log(b.id, b.type, b.endTime.toISOString());
 * console.log(pitrWindow(backups).from?.time);
 * ```
 * @module pg-basebackup/repository
 */
export { openRepository, Repository, type OpenRepositoryOptions, type RepositoryWalArchive } from '../repository/repository.js';
export { backupToRepository, type RepositoryBackupOptions, type RepositoryBackupResult } from '../repository/backup.js';
export { MANIFEST_OBJECT, RepositoryBackupSink, type RepositoryBackupSinkOptions } from '../repository/backup-sink.js';
export { acquireLock, type AcquireLockOptions, type LockHolder, type RepositoryLock } from '../repository/lock.js';
export {
  backupRecordJson,
  decodeBackupRecord,
  encodeBackupRecord,
  postgresVersionText,
  type BackupObject,
  type BackupRecord,
  type BackupRecordJson,
  type BackupType,
  type BackupWalMethod,
} from '../repository/record.js';
export { backupIdFor, isBackupId } from '../repository/backup-id.js';
export {
  checkClusterIdentity,
  decodeRepositoryInfo,
  encodeRepositoryInfo,
  type ClusterIdentity,
  type RepositoryInfo,
} from '../repository/identity.js';
export {
  backupDue,
  newestFullBackup,
  pitrWindow,
  sortBackups,
  type BackupDue,
  type PitrPoint,
  type PitrWindow,
} from '../repository/catalog.js';
export {
  repositoryListing,
  type BackupSummaryJson,
  type PitrPointJson,
  type RehearsalSummaryJson,
  type RepositoryListingJson,
  type WalArchiveJson,
  type WalTimelineJson,
} from '../repository/listing.js';
export {
  decodeRehearsalRecord,
  encodeRehearsalRecord,
  isRehearsalId,
  rehearsalIdFor,
  rehearsalRecordJson,
  type RehearsalRecord,
  type RehearsalRecordJson,
  type RehearsalStepRecord,
} from '../repository/rehearsal-record.js';
export {
  backupFailureRecordJson,
  decodeBackupFailureRecord,
  encodeBackupFailureRecord,
  type BackupFailureRecord,
  type BackupFailureRecordJson,
} from '../repository/failure-record.js';
export {
  commitRehearsal,
  listBackupFailures,
  listRehearsals,
  recordBackupFailure,
  unreadableRecordWarning,
  type HistoryReadOptions,
  type UnreadableHistoryRecord,
} from '../repository/history.js';
export { RepositoryWalStore, type RepositoryWalStoreOptions } from '../repository/wal-store.js';
export { defaultWalSpoolDirectory } from '../repository/wal-spool.js';
export { parseDuration } from '../repository/duration.js';
export { expireRepository, type ExpireOptions, type ExpireResult } from '../repository/expire.js';
export { expiryJson, type ExpiryJson, type ExpiryStateJson } from '../repository/expiry-json.js';
export {
  verifyRepository,
  type RepositoryFinding,
  type RepositoryFindingKind,
  type RepositoryVerifyOptions,
  type RepositoryVerifyResult,
} from '../repository/verify-repository.js';
export type { ParsedWalKey, WalGap, WalKeyCompression, WalTimelineExtent } from '../repository/wal-keys.js';
export { planExpiry, type ExpiryInput, type ExpiryPlan, type ExpiryState, type RetentionPolicy } from '../repository/retention.js';
export { planHistoryExpiry, type HistoryExpiry } from '../repository/history-retention.js';
export { walArchiveEnd, type StoredWalKey } from '../repository/wal-archive.js';
export { REPOSITORY_FORMAT_VERSION } from '../repository/layout.js';
export * from '../storage/index.js';
export { repositoryWalArchive } from '../repository/wal-source.js';
export { restoreFromRepository, type RepositoryRestoreOptions, type RepositoryRestoreResult } from '../repository/restore.js';
export { backupChain, newestBackupBefore, type BackupBound } from '../repository/select.js';
