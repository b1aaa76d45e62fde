/**
 * Typed results of the replication commands in commands.ts.
 * @module
 */
import type { Lsn } from '../lsn.js';

/** Options every replication command accepts. */
export interface CommandOptions {
  /** Aborts the command; the connection is destroyed (the protocol cannot cancel a command in flight). */
  signal?: AbortSignal;
}

/** `IDENTIFY_SYSTEM`. */
export interface IdentifySystemResult {
  /** The cluster's 64-bit system identifier in decimal (too large for a JS number). */
  systemId: string;
  /** Current timeline (on a standby: the timeline being replayed). */
  timeline: number;
  /** Current WAL flush position (on a standby: the replay position). */
  xlogPos: Lsn;
  /** Database name: `null` on a physical replication connection. */
  dbName: string | null;
}

/** One line of a timeline history file. */
export interface TimelineHistoryEntry {
  /** The timeline that was left. */
  parentTli: number;
  /** Where the next timeline branched off `parentTli`. */
  switchLsn: Lsn;
  /** Free text PostgreSQL wrote (e.g. `no recovery target specified`). */
  reason: string;
}

/** `TIMELINE_HISTORY tli`. */
export interface TimelineHistory {
  /** `%08X.history`. */
  fileName: string;
  /** The file's bytes exactly as the server sent them; write these to pg_wal/. */
  content: Buffer;
  /** The parsed lines, oldest first (comments and blank lines skipped). */
  entries: TimelineHistoryEntry[];
}

/** Options of `createReplicationSlot`. */
export interface CreateReplicationSlotOptions extends CommandOptions {
  /** Slot name: lower-case letters, digits and underscores, at most 63 characters (PostgreSQL's rule). */
  name: string;
  /** Drop the slot automatically when this connection ends. @default false */
  temporary?: boolean;
  /** Reserve WAL at once, so the slot holds WAL from its creation on (pg_basebackup does). @default true */
  reserveWal?: boolean;
}

/** What `CREATE_REPLICATION_SLOT` returns for a physical slot. */
export interface CreatedReplicationSlot {
  slotName: string;
  /**
   * `consistent_point`: for a physical slot the server reports `0/0` or NULL (it is meaningful for
   * logical slots only); `null` when NULL.
   */
  consistentPoint: Lsn | null;
}

/** Options of `dropReplicationSlot`. */
export interface DropReplicationSlotOptions extends CommandOptions {
  /** Wait for a slot in use to become free instead of failing at once. @default false */
  wait?: boolean;
}

/** `READ_REPLICATION_SLOT` (15+) for an existing slot. */
export interface ReplicationSlotInfo {
  /** `physical` (the server refuses to read logical slots). */
  slotType: string;
  /** Oldest WAL the slot still needs; `null` when it has not reserved WAL yet. */
  restartLsn: Lsn | null;
  /** Timeline of `restartLsn`; `null` when it has not reserved WAL yet. */
  restartTli: number | null;
}
