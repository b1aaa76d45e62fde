/**
 * Events of a {@link BackupSession} and the parsing of the server's checksum WARNINGs. The
 * session is a Node `EventEmitter` typed with Node's own generic event map (no extra
 * package: `typed-emitter` is only a dev dependency, and the public types must not need it).
 * @module
 */
import type { ServerNotice } from '../connection/types.js';
import type { Lsn } from '../lsn.js';

/** How the server's start-of-backup checkpoint is taken (`-c fast|spread`). */
export type CheckpointMode = 'fast' | 'spread';

/**
 * The step a backup is in. Phases only move forward; one that does not apply is skipped
 * (reported as 0 ms in {@link BackupPhaseDurations}).
 * - `checkpoint`: BASE_BACKUP was sent and the server is taking its start checkpoint. With the
 *   default `checkpoint: 'spread'` this can take minutes (pg_basebackup: "waiting for checkpoint
 *   to complete").
 * - `data`: the checkpoint completed and the start position arrived; the tablespace archives
 *   flow. WAL fetched with `wal: 'fetch'` arrives here, at the end of `base.tar`.
 * - `wal`: only with `wal: 'stream'`. The tablespace archives are done and the WAL is being
 *   finished: the server's end position, the WAL stream catching up with it, then the spooled
 *   `pg_wal.tar` when the session spools WAL. The manifest, which the server sends before its
 *   end position, arrives during this phase.
 * - `manifest`: only with a manifest. The manifest is being received (without `wal: 'stream'`),
 *   or, after the `wal` phase, handed over; `runBackup` writes it and syncs the output here.
 * - `done`: the backup is complete.
 */
export type BackupPhase = 'checkpoint' | 'data' | 'wal' | 'manifest' | 'done';

/** What {@link BaseBackupOptions.onPhase} and the session's `phase` event receive. */
export interface BackupPhaseEvent {
  /** The phase the backup enters. */
  phase: BackupPhase;
  /** The checkpoint mode the backup asked for (a `spread` checkpoint is the slow one). */
  checkpoint: CheckpointMode;
  /** The backup's start position; from the `data` phase on. */
  startLsn?: Lsn;
  /** The timeline of `startLsn`; from the `data` phase on. */
  timeline?: number;
}

/** Time spent in each phase, in whole milliseconds (0 for a phase that did not apply). */
export interface BackupPhaseDurations {
  /** From BASE_BACKUP sent to the start position received. */
  checkpointMs: number;
  /** The tablespace archives. */
  dataMs: number;
  /** Finishing the streamed WAL (`wal: 'stream'` only). */
  walMs: number;
  /** Receiving (and, in `runBackup`, writing and syncing) the manifest. */
  manifestMs: number;
}

/** Progress of the data transfer. */
export interface BackupProgress {
  /** Archive bytes received so far (all tablespace archives; `pg_wal.tar` is not counted). */
  bytesDone: number;
  /**
   * The server's size estimate (sum of the tablespace sizes, PROGRESS), raised to
   * `bytesDone` when the transfer outgrows it; equal to `bytesDone` in the final event.
   * `undefined` without an estimate (`estimateSize: false`) until the final event.
   */
  totalBytes: number | undefined;
  /** The archive being received, or the spooled `pg_wal.tar` being handed over (`undefined` between archives). */
  archive: { name: string; index: number; bytesDone: number } | undefined;
  /** Archives fully received. */
  archivesDone: number;
  /** Archives the server will send (one per tablespace). */
  archivesTotal: number;
  /** Bytes done according to the server's own progress messages (15+), when it sent some. */
  serverBytesDone: number | undefined;
  /**
   * Bytes of WAL the WAL stream has written so far (`wal: 'stream'`: into the `walSink`, or
   * into the spooled `pg_wal.tar`; segment bytes, tar headers not counted); 0 otherwise. It
   * keeps moving in the `wal` phase, while the stream catches up with the end position. While
   * the session hands over a spooled `pg_wal.tar`, {@link archive} names it.
   */
  walBytesDone: number;
  /** The phase the backup is in. */
  phase: BackupPhase;
  /**
   * True in the last event, once every archive has arrived (with `wal: 'stream'`, once the
   * WAL stream has finished too, and the spooled `pg_wal.tar` was handed over).
   */
  finished: boolean;
}

/**
 * A page checksum failure reported by the server in a WARNING while the data flows.
 * One event per reported block (at most 5 per file: the server then says further failures will
 * not be reported) and, for files with more than one failure, one more with the file's `count`.
 */
export interface ChecksumFailureEvent {
  /** The file as the server names it. */
  file: string;
  /** The failed block, in per-block events. */
  block?: number;
  /** The file's total failures, in the per-file summary event. */
  count?: number;
}

/** Event map of {@link BackupSession} (listener argument tuples). */
export interface BackupSessionEventMap {
  /** Throttled to `progressIntervalMs`, plus a final event with `finished: true`. */
  progress: [BackupProgress];
  /**
   * The backup entered a phase. Listeners attached after {@link startBackup} resolved miss
   * `checkpoint` and `data`; use the `onPhase` option to see every phase.
   */
  phase: [BackupPhaseEvent];
  /** A NoticeResponse from either connection (WARNING, NOTICE...). */
  notice: [ServerNotice];
  /** A data page checksum failure reported by the server. */
  'checksum-failure': [ChecksumFailureEvent];
  /** Something went wrong that does not fail the backup (e.g. a slot could not be dropped in cleanup). */
  warning: [Error];
}

// basebackup.c messages (not localized only when lc_messages is English; the final XX001 error
// is what makes the backup fail, these only add detail).
const BLOCK_RE = /^checksum verification failed in file "(.+)", block (\d+): calculated [0-9A-Fa-f]+ but expected [0-9A-Fa-f]+$/;
const FURTHER_RE = /^further checksum verification failures in file "(.+)" will not be reported$/;
const FILE_TOTAL_RE = /^file "(.+)" has a total of (\d+) checksum verification failures?$/;
const TOTAL_RE = /^(\d+) total checksum verification failures?$/;

/** What a server notice says about page checksums, if anything. */
export type ChecksumNotice =
  | { kind: 'block'; file: string; block: number }
  | { kind: 'further'; file: string }
  | { kind: 'file-total'; file: string; count: number }
  | { kind: 'total'; count: number };

/**
 * Recognise basebackup.c's checksum WARNINGs (English messages only).
 * @example
 * ```ts
 * parseChecksumNotice('checksum verification failed in file "./base/5/16384", block 0: calculated 1A2B but expected 3C4D')
 * // { kind: 'block', file: './base/5/16384', block: 0 }
 * ```
 */
export function parseChecksumNotice(message: string): ChecksumNotice | undefined {
  let m = BLOCK_RE.exec(message);
  if (m) return { kind: 'block', file: m[1]!, block: Number(m[2]) };
  m = FURTHER_RE.exec(message);
  if (m) return { kind: 'further', file: m[1]! };
  m = FILE_TOTAL_RE.exec(message);
  if (m) return { kind: 'file-total', file: m[1]!, count: Number(m[2]) };
  m = TOTAL_RE.exec(message);
  if (m) return { kind: 'total', count: Number(m[1]) };
  return undefined;
}
