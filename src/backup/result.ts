/**
 * What a backup session reports: its lifecycle state and, once complete, its result and
 * statistics. Re-exported by session.ts, where they have always been imported from.
 * @module
 */
import type { ChecksumFailureReport } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { BackupPhaseDurations } from './events.js';

/**
 * The session's lifecycle state (STYLE practice 6):
 * ```
 * started ─→ archives ─→ manifest ─→ end-position ─→ done
 *    └──────────┴────────────┴─────────────┴──→ failed (error, abort, close before done)
 * ```
 * - `started`: the start row and the tablespace header arrived (startBackup resolved).
 * - `archives`: tablespace archives are flowing.
 * - `manifest`: the manifest is flowing.
 * - `end-position`: the end row arrived; the WAL stream (if any) is finishing.
 * - `done`: BASE_BACKUP completed and the WAL stream finished.
 *
 * The {@link BackupPhase} reported to `onPhase` is the coarser, user-facing view of the same road.
 */
export type BackupSessionState = 'started' | 'archives' | 'manifest' | 'end-position' | 'done' | 'failed';

/** Byte counts and timings of a finished backup. */
export interface BackupStats {
  /** Bytes received per archive, in order (`pg_wal.tar` included when spooled). */
  archives: { name: string; bytes: number }[];
  /** Sum of the tablespace archives' bytes (`pg_wal.tar` excluded). */
  totalBytes: number;
  /** Bytes of the spooled `pg_wal.tar`, when WAL was spooled. */
  walBytes: number | undefined;
  /** Whole milliseconds spent in each phase (see {@link BackupPhase}). */
  phases: BackupPhaseDurations;
  /**
   * Whole milliseconds from `startBackup()` to the end of BASE_BACKUP and of the WAL stream
   * (connecting and preparing the WAL stream included, so more than the sum of the phases).
   */
  durationMs: number;
}

/** What {@link BackupSession.result} resolves to. */
export interface BackupResult {
  startLsn: Lsn;
  startTimeline: number;
  endLsn: Lsn;
  endTimeline: number;
  /** The backup manifest (JSON bytes), unless `manifest: false`. */
  manifest: Buffer | undefined;
  stats: BackupStats;
  /** Page checksum failures the server reported (always empty when `result()` resolves). */
  checksumFailures: ChecksumFailureReport[];
}
