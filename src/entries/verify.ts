/**
 * Verifying a backup on disk against its manifest, as pg_verifybackup does: {@link verifyBackup}, also
 * in the root entry point. This entry point reaches neither the connection nor the backup code.
 *
 * @example
 * ```ts
 * import { verifyBackup } from 'pg-basebackup/verify';
 *
 * const run = verifyBackup({ backupDir: '/backups/base' });
 * for await (const finding of run) console.error(`${finding.kind}: ${finding.message}`);
 * if (!run.summary?.ok) process.exitCode = 1;
 * ```
 * @module pg-basebackup/verify
 */
export { verifyBackup, verifyBackupAll } from '../verify/verify.js';
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
} from '../verify/types.js';
