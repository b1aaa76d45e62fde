/**
 * Combining PostgreSQL 17+ incremental backups into a full backup (`pg_combinebackup`).
 * @module
 */
export { combineBackups } from './combine.js';
export type { CombineOptions, CombineResult, CombinedTablespace } from './types.js';
export {
  encodeIncrementalFile, incrementalHeaderLength, IncrementalHeaderReader, parseIncrementalHeader, DEFAULT_BLOCK_SIZE,
  DEFAULT_RELSEG_BLOCKS, INCREMENTAL_MAGIC, INCREMENTAL_PREFIX, type IncrementalHeader, type IncrementalLayout,
} from './incremental-file.js';
export { planReconstruction, type PlanSource, type ReconstructionPlan, type ReconstructionRun } from './plan.js';
export { combinedBackupLabel, parseBackupLabel, type BackupLabelInfo } from './backup-label.js';
