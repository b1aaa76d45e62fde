/**
 * pg-basebackup: physical backups of PostgreSQL 13–18 over the streaming
 * replication protocol. This file is the public surface: re-exports only.
 * @module
 */
export * from './errors.js';
export type * from './connection/types.js';
export { REDACTED, describeConnection, redactConnectionString } from './connection/redact.js';
export {
  DEFAULT_BACKUP_LABEL, MANIFEST_CHECKSUM_ALGORITHMS, MAX_RATE_LOWER_KBPS, MAX_RATE_UPPER_KBPS, resolveBaseBackupOptions,
} from './backup/options.js';
export type {
  BaseBackupOptions, CheckpointMode, ManifestChecksumAlgorithm, ResolvedBaseBackupOptions, SlotPlan, WalMethod,
} from './backup/options.js';
export { ReplicationConnection } from './connection/connection.js';
export { identifySystem } from './replication/commands.js';
export type { IdentifySystemResult } from './replication/types.js';
export { formatLsn, parseLsn, type Lsn } from './lsn.js';
export { runBackup } from './backup/run.js';
export type { PlainOutput, RunBackupOptions, RunBackupResult, StreamOutput, TarOutput } from './backup/run.js';
