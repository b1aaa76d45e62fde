/**
 * What a backup session needs from the layers below it, as one small interface, so the
 * session can be driven by a scripted connection in unit tests. The real implementations
 * live in default-deps.ts.
 * @module
 */
import type { ConnectionOptions, ReplicationConnectionApi } from '../connection/types.js';
import type { Lsn } from '../lsn.js';
import type { WalSink } from '../wal/sink.js';

/** IDENTIFY_SYSTEM, as the session uses it. */
export interface SystemIdentity {
  /** `systemid`: the cluster's 64-bit system identifier, in decimal. */
  systemId: string;
  timeline: number;
}

/** Parameters of the WAL stream a `wal: 'stream'` backup runs beside the data transfer. */
export interface BackupWalStreamParams {
  connection: ReplicationConnectionApi;
  /** Segment-aligned start position (the backup's start LSN rounded down to its segment). */
  startLsn: Lsn;
  timeline: number;
  segmentSize: number;
  systemIdentifier: string;
  slotName: string | undefined;
  statusIntervalMs: number;
  sink: WalSink;
  signal: AbortSignal;
}

/** A running WAL stream. */
export interface BackupWalStream {
  /** The backup's end LSN: the stream stops once it has written WAL up to it. */
  setEndLsn(lsn: Lsn): void;
  /** Settles when the stream has stopped and the sink is finished (rejects on failure). */
  readonly done: Promise<unknown>;
}

/** The session's dependencies. */
export interface BackupDeps {
  connect(options: ConnectionOptions): Promise<ReplicationConnectionApi>;
  identifySystem(conn: ReplicationConnectionApi, signal?: AbortSignal): Promise<SystemIdentity>;
  /** `SHOW name`, the raw text value. */
  show(conn: ReplicationConnectionApi, name: string, signal?: AbortSignal): Promise<string>;
  /** `CREATE_REPLICATION_SLOT "name" [TEMPORARY] PHYSICAL RESERVE_WAL`. */
  createPhysicalSlot(conn: ReplicationConnectionApi, name: string, options: { temporary: boolean; signal?: AbortSignal }): Promise<void>;
  /** `DROP_REPLICATION_SLOT "name" [WAIT]`. */
  dropSlot(conn: ReplicationConnectionApi, name: string, options: { wait: boolean; signal?: AbortSignal }): Promise<void>;
  startWalStream(params: BackupWalStreamParams): BackupWalStream;
  /**
   * `UPLOAD_MANIFEST` with the prior backup's manifest (incremental backups, 17+). Optional so
   * that scripted test dependencies without it keep working; the session falls back to the
   * replication command.
   */
  uploadManifest?(conn: ReplicationConnectionApi, manifest: Buffer, signal?: AbortSignal): Promise<void>;
}
