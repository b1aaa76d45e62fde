/**
 * Restore rehearsals: prove that a backup restores. {@link rehearse} restores a backup into a private
 * scratch directory, starts it with the PostgreSQL server of its major (never reachable over TCP,
 * never archiving, never following a primary), replays the WAL archive to its end or a target and
 * promotes, then checks the result (every table read, amcheck, page checksums, your SQL checks) and
 * removes everything it created. The result lists every step and the recovery figures.
 *
 * @example
 * ```ts
 * import { rehearse } from 'pg-basebackup/rehearse';
 *
 * const result = await rehearse({
 *   source: { backupDir: '/backups/2026-01-31', walArchive: '/backups/wal' },
 *   checkSql: 'SELECT count(*) > 0 FROM orders;',
 *   timeoutMs: 60 * 60 * 1000,
 * });
 * for (const step of result.steps) console.log(step.name, step.status, step.detail);
 * console.log(`recovery time ${result.figures.recoveryMs} ms, recovery point ${result.figures.lastTransactionTime}`);
 * process.exitCode = result.ok ? 0 : 1;
 * ```
 * @module pg-basebackup/rehearse
 */
export { rehearse } from '../rehearse/rehearse.js';
export type {
  RehearsalFigures,
  RehearsalOptions,
  RehearsalResources,
  RehearsalResult,
  RehearsalSource,
  RehearsalDirectorySource,
  RehearsalRepositorySource,
  RehearsalStep,
  RehearsalStepName,
} from '../rehearse/types.js';
export { findPgBinaries, type FindPgBinariesOptions, type PgBinaries } from '../rehearse/binaries.js';
export { splitSqlStatements } from '../rehearse/sql-split.js';
export { recordRehearsal, rehearsalRecord, type RehearsalRecordOptions } from '../rehearse/record.js';
