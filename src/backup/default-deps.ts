/**
 * The real implementations of {@link BackupDeps}: the replication connection, the
 * replication commands and the WAL streamer.
 * @module
 */
import { ReplicationConnection } from '../connection/connection.js';
import { createReplicationSlot, dropReplicationSlot, identifySystem, show, uploadManifest } from '../replication/commands.js';
import { startWalStream } from '../wal/streamer.js';
import type { BackupDeps } from './deps.js';

const signalOpt = (signal: AbortSignal | undefined): { signal?: AbortSignal } => (signal ? { signal } : {});

/** The dependencies {@link startBackup} uses. */
export const defaultBackupDeps: BackupDeps = {
  connect: (options) => ReplicationConnection.connect(options),
  identifySystem: async (conn, signal) => {
    const r = await identifySystem(conn, signalOpt(signal));
    return { systemId: r.systemId, timeline: r.timeline };
  },
  show: (conn, name, signal) => show(conn, name, signalOpt(signal)),
  createPhysicalSlot: async (conn, name, { temporary, signal }) => {
    await createReplicationSlot(conn, { name, temporary, reserveWal: true, ...signalOpt(signal) });
  },
  dropSlot: (conn, name, { wait, signal }) => dropReplicationSlot(conn, name, { wait, ...signalOpt(signal) }),
  uploadManifest: (conn, manifest, signal) => uploadManifest(conn, manifest, signalOpt(signal)),
  startWalStream: (p) =>
    startWalStream({
      connection: p.connection,
      startLsn: p.startLsn,
      timeline: p.timeline,
      segmentSize: p.segmentSize,
      ...(p.slotName !== undefined ? { slotName: p.slotName } : {}),
      statusIntervalMs: p.statusIntervalMs,
      sink: p.sink,
      signal: p.signal,
      // pg_basebackup -Xstream: the last, incomplete segment gets its final name, zero-padded.
      finalizeLastSegment: 'rename-padded',
    }),
};
