/**
 * The WAL sink a caller may hand to {@link startBackup} for `wal: 'stream'`.
 * (Placeholder until src/wal/streamer.ts lands; then this re-exports its sink type.)
 * @module
 */

/** Receives streamed WAL segments. */
export type BackupWalSink = object;
