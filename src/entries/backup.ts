/**
 * Taking a backup ({@link runBackup}, also in the root entry point), tablespace mappings, and the limits
 * and defaults of backup options, for programs that check a user's input before a backup starts (as
 * `pgbb backup` does, to answer with pg_basebackup's messages).
 *
 * @example
 * ```ts
 * import { MANIFEST_CHECKSUM_ALGORITHMS, MAX_RATE_LOWER_KBPS, MAX_RATE_UPPER_KBPS } from 'pg-basebackup/backup';
 *
 * const rate = 8192;
 * if (rate < MAX_RATE_LOWER_KBPS || rate > MAX_RATE_UPPER_KBPS) throw new Error('rate out of range');
 * console.log(MANIFEST_CHECKSUM_ALGORITHMS.join(', '));
 * ```
 * @module pg-basebackup/backup
 */
export {
  DEFAULT_BACKUP_LABEL,
  MANIFEST_CHECKSUM_ALGORITHMS,
  MAX_RATE_LOWER_KBPS,
  MAX_RATE_UPPER_KBPS,
} from '../backup/options.js';
export type { BaseBackupOptions, CheckpointMode, ManifestChecksumAlgorithm, WalMethod } from '../backup/options.js';
export { runBackup } from '../backup/run.js';
export type { PlainOutput, RunBackupOptions, RunBackupResult, SinkOutput, StreamOutput, TarOutput } from '../backup/run.js';
export { parseTablespaceMapping, tablespaceMappingFrom } from '../sinks/tablespace-mapping.js';
