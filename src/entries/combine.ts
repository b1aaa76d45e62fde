/**
 * Combining a full backup and its incremental backups into a full backup, as pg_combinebackup does:
 * {@link combineBackups}, also in the root entry point. This entry point reaches neither the connection
 * nor the backup code.
 *
 * @example
 * ```ts
 * import { combineBackups } from 'pg-basebackup/combine';
 *
 * const result = await combineBackups({ backups: ['/backups/full', '/backups/incr1'], output: '/backups/combined' });
 * console.log(`${result.filesCopied} files copied, ${result.filesReconstructed} reconstructed`);
 * ```
 * @module pg-basebackup/combine
 */
export { combineBackups } from '../combine/combine.js';
export type { CombinedTablespace, CombineOptions, CombineResult } from '../combine/types.js';
