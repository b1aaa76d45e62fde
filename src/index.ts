/**
 * pg-basebackup: physical backups of PostgreSQL 13–18 over the streaming replication protocol.
 *
 * This root entry point holds what an application needs to take a backup ({@link runBackup}, or
 * {@link startBackup} and a sink for control over each archive), verify it ({@link verifyBackup}),
 * combine an incremental chain ({@link combineBackups}), read and print LSNs, and catch errors
 * ({@link isPgBackupError}, {@link PgBackupError} and the errors applications usually handle).
 * The building blocks live in subpath entry points: `pg-basebackup/connection`, `/replication`,
 * `/wal`, `/tar`, `/manifest`, `/compress`, `/recovery`, and `/errors` (every error class).
 *
 * @example
 * ```ts
 * import { formatLsn, isPgBackupError, runBackup } from 'pg-basebackup';
 *
 * try {
 *   const result = await runBackup({
 *     connection: 'postgresql://replicator@db.example.com/',
 *     output: { format: 'plain', directory: '/backups/2025-01-01' },
 *   });
 *   console.log(`backup from ${formatLsn(result.startLsn)} to ${formatLsn(result.endLsn)}`);
 * } catch (err) {
 *   if (isPgBackupError(err)) console.error(JSON.stringify(err));
 *   throw err;
 * }
 * ```
 * @module pg-basebackup
 */

// Taking a backup.
export { runBackup } from './backup/run.js';
export type { PlainOutput, RunBackupOptions, RunBackupResult, SinkOutput, StreamOutput, TarOutput } from './backup/run.js';
export type { BaseBackupOptions, CheckpointMode, ManifestChecksumAlgorithm, WalMethod } from './backup/options.js';
export { startBackup, BackupSession } from './backup/session.js';
export type { BackupResult, BackupSessionState, BackupStats } from './backup/session.js';
export { BackupArchive } from './backup/archive.js';
export type { ArchiveChunks, ArchiveConsumption, BackupTablespace, PipeToOptions } from './backup/archive.js';
export type {
  BackupPhase,
  BackupPhaseDurations,
  BackupPhaseEvent,
  BackupProgress,
  BackupSessionEventMap,
  ChecksumFailureEvent,
} from './backup/events.js';

// Where the archives go.
export { DirectorySink, type DirectorySinkOptions } from './sinks/directory.js';
export { TarFilesSink, type TarFilesSinkOptions } from './sinks/tar-files.js';
export { WritableSink, type WritableSinkOptions } from './sinks/writable.js';
export { parseTablespaceMapping, tablespaceMappingFrom } from './sinks/tablespace-mapping.js';
export type { ArchiveInfo, ArchiveStream, BackupSink, InjectedFile, Injection, SinkCallOptions } from './sinks/types.js';

// Archiving WAL continuously (pg_receivewal's job); the segment stores and archive naming are in pg-basebackup/wal.
export { receiveWal, type ReceiverPhase, type ReceiveWalOptions, type WalReceiver } from './archive/receive.js';
export type * from './archive/events.js';

// Restoring: a backup into a new data directory with its recovery settings, and restore_command over a
// WAL archive (the targets, the pre-flight and the recovery settings are in pg-basebackup/recovery).
export { restoreBackup, type RestoreEvent, type RestoreOptions, type RestoreResult } from './recovery/restore.js';
export { restoreWalFile, type RestoreWalOptions, type RestoreWalResult } from './recovery/restore-wal.js';
export type { RecoveryTarget } from './recovery/wal-targets.js';
export type { TargetAction } from './recovery/recovery-settings.js';
export type { TargetTimeline } from './recovery/preflight.js';

// Verifying and combining backups.
export { verifyBackup, verifyBackupAll } from './verify/verify.js';
export type {
  ArchiveCompression,
  ArchiveOpener,
  ArchiveRef,
  VerifyFinding,
  VerifyFindingKind,
  VerifyOptions,
  VerifyProgress,
  VerifyRun,
  VerifySummary,
} from './verify/types.js';
export { combineBackups } from './combine/combine.js';
export type { CombinedTablespace, CombineOptions, CombineResult } from './combine/types.js';

// LSNs as PostgreSQL prints them (the rest of the LSN arithmetic is in pg-basebackup/wal).
export { formatLsn, parseLsn, type FormatLsnOptions, type Lsn } from './lsn.js';

// Errors: the base class, the narrowing helper, and the classes applications usually catch by class.
// pg-basebackup/errors exports every class; these are the same objects, so `instanceof` agrees.
export {
  AbortError,
  AuthenticationError,
  ChecksumFailureError,
  ConfigError,
  ConnectionError,
  isPgBackupError,
  PgBackupError,
  ServerError,
} from './errors.js';
export type {
  AnyPgBackupError,
  ChecksumFailureReport,
  PgBackupErrorByCode,
  PgBackupErrorCode,
  PgBackupErrorJson,
  PgBackupErrorOptions,
  ServerMessageFields,
} from './errors.js';

// Types the options above refer to, so that code using the root alone can name them.
export type { ChannelBindingMode, ConnectionOptions, ServerNotice, SslMode } from './connection/types.js';
export type { CompressionAlgorithm, CompressionInput, CompressionLocation, CompressionSpec } from './compress/spec.js';
export type { TarEntry, TarEntryBody, TarSource } from './tar/extract.js';
export type { TarEntryType, TarHeader, TarHeaderFormat } from './tar/header.js';
export type { BackupManifest, ManifestFile, ManifestWalRange } from './manifest/types.js';
