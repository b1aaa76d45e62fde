/**
 * Recovery: making a backup start as a standby (the `primary_conninfo` line and the recovery settings
 * pg_basebackup `-R` writes, and the name of the `standby.signal` file), and restoring a backup for
 * point-in-time recovery ({@link restoreBackup}, {@link restoreWalFile}, also in the root entry point)
 * with its recovery targets, pre-flight and settings.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises';
 * import { join } from 'node:path';
 * import { recoveryConfigContents, STANDBY_SIGNAL_FILE } from 'pg-basebackup/recovery';
 *
 * const dir = '/var/lib/postgresql/standby';
 * await writeFile(join(dir, STANDBY_SIGNAL_FILE), '', { mode: 0o600 });
 * const settings = recoveryConfigContents({ primaryConninfo: 'host=db user=replicator', slotName: 'standby1' });
 * await writeFile(join(dir, 'postgresql.auto.conf'), settings, { flag: 'a', mode: 0o600 });
 * ```
 * @module pg-basebackup/recovery
 */
export {
  buildPrimaryConninfo,
  recoveryConfigContents,
  STANDBY_SIGNAL_FILE,
  type PrimaryConninfoOptions,
} from '../recovery/standby.js';
export { defaultPgbbCommand, restoreBackup, type RestoreEvent, type RestoreOptions, type RestoreResult } from '../recovery/restore.js';
export {
  findArchivedWal,
  restoreWalFile,
  walFileKind,
  type RestoreWalOptions,
  type RestoreWalResult,
} from '../recovery/restore-wal.js';
export type { RecoveryTarget } from '../recovery/wal-targets.js';
export type { TargetAction } from '../recovery/recovery-settings.js';
export type { TargetTimeline } from '../recovery/preflight.js';
export { preflightRestore, type PreflightOptions, type PreflightResult, type TimelineStep } from '../recovery/preflight.js';
export { RecoveryTargetFinder, type TargetResolution } from '../recovery/wal-targets.js';
export {
  parseTargetTime,
  parseTargetTimeline,
  parseTargetXid,
  RECOVERY_SIGNAL_FILE,
  recoveryAutoConf,
  repositoryRestoreCommandLine,
  restoreCommandLine,
  type RecoverySettings,
} from '../recovery/recovery-settings.js';
export type { CheckedSegment } from '../recovery/segment-check.js';
export {
  ARCHIVE_SUFFIXES,
  directoryWalArchive,
  pickArchivedName,
  type ArchivedWalFile,
  type WalArchiveOpenOptions,
  type WalArchiveSource,
} from '../recovery/wal-source.js';
export { MAX_RECORD_BODY, type WalRecord } from '../verify/wal-check.js';
