/**
 * Replication commands on a {@link ReplicationConnection}, each returning a typed result:
 * `IDENTIFY_SYSTEM`, `SHOW`, `TIMELINE_HISTORY`, `CREATE_REPLICATION_SLOT`, `DROP_REPLICATION_SLOT`,
 * `READ_REPLICATION_SLOT` and `UPLOAD_MANIFEST` (incremental backups, PostgreSQL 17+).
 *
 * @example
 * ```ts
 * import { ReplicationConnection } from 'pg-basebackup/connection';
 * import { createReplicationSlot, identifySystem, show } from 'pg-basebackup/replication';
 *
 * const conn = await ReplicationConnection.connect({ connectionString: 'host=db user=replicator' });
 * try {
 *   const { systemId, timeline } = await identifySystem(conn);
 *   const segmentSize = await show(conn, 'wal_segment_size');
 *   await createReplicationSlot(conn, { name: 'archiver', reserveWal: true });
 *   console.log(systemId, timeline, segmentSize);
 * } finally {
 *   await conn.close();
 * }
 * ```
 * @module pg-basebackup/replication
 */
export type { ReplicationConnection } from '../connection/connection.js';
export {
  createReplicationSlot,
  dropReplicationSlot,
  identifySystem,
  parseTimelineHistory,
  readReplicationSlot,
  show,
  timelineHistory,
  uploadManifest,
  type UploadManifestOptions,
} from '../replication/commands.js';
export type {
  CommandOptions,
  CreatedReplicationSlot,
  CreateReplicationSlotOptions,
  DropReplicationSlotOptions,
  IdentifySystemResult,
  ReplicationSlotInfo,
  TimelineHistory,
  TimelineHistoryEntry,
} from '../replication/types.js';
