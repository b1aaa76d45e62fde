/**
 * Write-ahead log: streaming it from a server ({@link startWalStream}) into a {@link WalSink}
 * (a directory of segments like pg_receivewal's, or a tar file), finding where to resume
 * ({@link findStreamingStart}), WAL segment names and arithmetic, and archiving WAL continuously
 * ({@link receiveWal}, also in the root entry point). LSNs themselves are in `pg-basebackup/lsn`.
 *
 * @example
 * ```ts
 * import { ReplicationConnection } from 'pg-basebackup/connection';
 * import { identifySystem, show } from 'pg-basebackup/replication';
 * import { DirectoryWalSink, parseWalSegmentSize, segmentStartOf, startWalStream } from 'pg-basebackup/wal';
 *
 * const connection = await ReplicationConnection.connect({ connectionString: 'host=db user=replicator' });
 * const { xlogPos, timeline } = await identifySystem(connection);
 * const segmentSize = parseWalSegmentSize(await show(connection, 'wal_segment_size'));
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * const stream = startWalStream({
 *   connection, timeline, segmentSize, startLsn: segmentStartOf(xlogPos, segmentSize),
 *   sink: new DirectoryWalSink({ directory: '/archive/wal' }), signal: controller.signal,
 * });
 * await stream.done; // ends when aborted, or when the server ends the timeline
 * ```
 * @module pg-basebackup/wal
 */
export { startWalStream } from '../wal/streamer.js';
export type { TimelineHistoryFile, WalStream, WalStreamOptions, WalStreamResult } from '../wal/streamer.js';
export type { WalSegmentCloseMode, WalSegmentTarget, WalServerSettings, WalSink } from '../wal/sink.js';
export { DirectoryWalSink, type DirectoryWalSinkOptions } from '../wal/directory-sink.js';
export { TarWalSink, type TarWalSinkOptions } from '../wal/tar-sink.js';
export { findStreamingStart } from '../wal/resume.js';
export type { FindStreamingStartOptions, StreamingStart, WalDirectoryEntry } from '../wal/resume.js';
export type { FeedbackOptions, StatusUpdateValues } from '../wal/feedback.js';
export {
  DEFAULT_WAL_SEGMENT_SIZE,
  isSegmentFileName,
  isValidWalSegmentSize,
  MAX_WAL_SEGMENT_SIZE,
  MIN_WAL_SEGMENT_SIZE,
  parseSegmentFileName,
  parseWalSegmentSize,
  segmentFileName,
  segmentFileNameForLsn,
  segmentNumber,
  segmentOffset,
  segmentStartLsn,
  segmentStartOf,
  timelineHistoryFileName,
  type ParsedSegmentName,
} from '../wal/segments.js';
export { isRetryable, receiveWal, type ReceiverPhase, type ReceiveWalOptions, type WalReceiver } from '../archive/receive.js';
export type * from '../archive/events.js';
export { DirectoryWalStore, type DirectoryWalStoreOptions, type WalSegmentStore, type WalServerIdentity } from '../archive/store.js';
export { CompressedSegmentSink, type CompressedSegmentSinkOptions } from '../archive/compressed-sink.js';
export { findArchiveStart, type ArchiveFile, type ArchiveStart, type FindArchiveStartOptions } from '../archive/start.js';
export { archiveSegmentFileName, PARTIAL_SUFFIX, parseArchiveFileName, type ArchiveFileName } from '../archive/names.js';
