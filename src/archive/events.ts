/**
 * The events {@link receiveWal} yields, in the order they happen. Every LSN is an {@link Lsn}
 * (a bigint); `formatLsn` prints it.
 * @module
 */
import type { Lsn } from '../lsn.js';

/** Connected and about to stream. */
export interface ConnectedEvent {
  type: 'connected';
  /** The server's system identifier (checked again on every reconnection). */
  systemId: string;
  /** `server_version`, e.g. `17.2`. */
  serverVersion: string;
  /** The server's current timeline. */
  serverTimeline: number;
  /** Where streaming starts (a segment start) and on which timeline. */
  startLsn: Lsn;
  startTimeline: number;
  /**
   * Why there: `archive` after the archive's newest complete segment (or at its newest
   * `.partial`), `slot` at the slot's restart position (15+), `server` at the server's
   * current position.
   */
  startFrom: 'archive' | 'slot' | 'server';
  /** With `startFrom: 'archive'`, the file that decided it. */
  basedOn?: string;
}

/** A segment file was opened for writing (as `.partial`). */
export interface SegmentStartedEvent {
  type: 'segment-started';
  /** The 24-character segment name. */
  segment: string;
  timeline: number;
  /** First LSN of the segment. */
  startLsn: Lsn;
}

/** A segment is complete and durable under its final name. */
export interface SegmentCompletedEvent {
  type: 'segment-completed';
  segment: string;
  timeline: number;
  /** The segment's LSN range: `[startLsn, endLsn)`. */
  startLsn: Lsn;
  endLsn: Lsn;
  /**
   * SHA-256 (hex) of the segment's uncompressed bytes: compare with the server's `pg_wal` file.
   * Absent when the archiver was started with `segmentChecksums: false`.
   */
  sha256?: string;
}

/**
 * A segment was left incomplete, under its `.partial` name: at the end of the run, at a
 * disconnection (it is streamed again from its start after reconnecting), or as the last
 * segment of a timeline the server left (it stays `.partial` for good, as pg_receivewal leaves it).
 */
export interface SegmentPartialEvent {
  type: 'segment-partial';
  segment: string;
  timeline: number;
  startLsn: Lsn;
  /** Position after the last byte written. */
  endLsn: Lsn;
}

/** A timeline history file was stored. */
export interface HistoryFileEvent {
  type: 'history-file';
  /** `%08X.history`. */
  name: string;
  timeline: number;
}

/** The server was promoted (or followed a promoted upstream): streaming goes on on the next timeline. */
export interface TimelineSwitchEvent {
  type: 'timeline-switch';
  from: number;
  to: number;
  /** Where the new timeline branched off. */
  switchLsn: Lsn;
  /** Where streaming resumes (the switch point's segment start). */
  restartLsn: Lsn;
}

/** A standby status update was sent. */
export interface StatusReportedEvent {
  type: 'status-reported';
  /** WAL received and handed to the store. */
  write: Lsn;
  /** WAL the store made durable; 0 when flush is not reported (no slot and not synchronous). */
  flush: Lsn;
}

/** The connection failed; the next attempt comes after `delayMs`. */
export interface ReconnectingEvent {
  type: 'reconnecting';
  /** Consecutive failed attempts (1 for the first retry). */
  attempt: number;
  delayMs: number;
  /** Why. */
  error: Error;
}

/** A warning that does not stop archiving (e.g. a damaged file in the archive, skipped). */
export interface ReceiveWarningEvent {
  type: 'warning';
  message: string;
}

/** The last event: archiving ended normally. */
export interface StoppedEvent {
  type: 'stopped';
  /** `end-lsn`: the end position was reached; `stopped`: `stop()` was called; `aborted`: the signal was aborted. */
  reason: 'end-lsn' | 'stopped' | 'aborted';
  /** Position after the last WAL byte received, if streaming had started. */
  position: Lsn | undefined;
  timeline: number | undefined;
}

/** What {@link receiveWal} yields. Narrow on `type`. */
export type ReceiveWalEvent =
  | ConnectedEvent
  | SegmentStartedEvent
  | SegmentCompletedEvent
  | SegmentPartialEvent
  | HistoryFileEvent
  | TimelineSwitchEvent
  | StatusReportedEvent
  | ReconnectingEvent
  | ReceiveWarningEvent
  | StoppedEvent;
