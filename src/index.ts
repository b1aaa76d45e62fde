/**
 * pg-basebackup: physical backups of PostgreSQL 13–18 over the streaming
 * replication protocol. This file is the public surface: re-exports only.
 * @module
 */
export * from './errors.js';
export type * from './connection/types.js';
export { REDACTED, describeConnection, redactConnectionString } from './connection/redact.js';
export {
  DEFAULT_BACKUP_LABEL, MANIFEST_CHECKSUM_ALGORITHMS, MAX_RATE_LOWER_KBPS, MAX_RATE_UPPER_KBPS, resolveBaseBackupOptions,
} from './backup/options.js';
export type {
  BaseBackupOptions, CheckpointMode, ManifestChecksumAlgorithm, ResolvedBaseBackupOptions, SlotPlan, WalMethod,
} from './backup/options.js';
export { ReplicationConnection } from './connection/connection.js';
export { identifySystem } from './replication/commands.js';
export type { IdentifySystemResult } from './replication/types.js';
export { formatLsn, parseLsn, type Lsn } from './lsn.js';
export { runBackup } from './backup/run.js';
export type { PlainOutput, RunBackupOptions, RunBackupResult, StreamOutput, TarOutput } from './backup/run.js';

// The streaming backup session.
export { startBackup, BackupSession, MIN_SERVER_MAJOR, MAX_SERVER_MAJOR } from './backup/session.js';
export type { BackupResult, BackupStats, BackupSessionState } from './backup/session.js';
export { BackupArchive } from './backup/archive.js';
export type { BackupTablespace, ArchiveConsumption, PipeToOptions } from './backup/archive.js';
export { parseChecksumNotice } from './backup/events.js';
export type { BackupProgress, ChecksumFailureEvent, BackupSessionEventMap, ChecksumNotice } from './backup/events.js';

// Replication commands.
export {
  show, timelineHistory, parseTimelineHistory, createReplicationSlot, dropReplicationSlot, readReplicationSlot,
  quoteIdentifier, quoteLiteral,
} from './replication/commands.js';
export type {
  CommandOptions, TimelineHistory, TimelineHistoryEntry, CreateReplicationSlotOptions, CreatedReplicationSlot,
  DropReplicationSlotOptions, ReplicationSlotInfo,
} from './replication/types.js';

// LSNs and WAL segments.
export { lsn, compareLsn, lsnAdd, lsnSubtract, lsnDiff, isLsnText, INVALID_LSN, type FormatLsnOptions } from './lsn.js';
export {
  parseWalSegmentSize, isValidWalSegmentSize, segmentNumber, segmentOffset, segmentStartLsn, segmentStartOf, segmentFileName,
  segmentFileNameForLsn, parseSegmentFileName, isSegmentFileName, timelineHistoryFileName, MIN_WAL_SEGMENT_SIZE,
  MAX_WAL_SEGMENT_SIZE, DEFAULT_WAL_SEGMENT_SIZE,
} from './wal/segments.js';

// WAL streaming and its destinations.
export { startWalStream } from './wal/streamer.js';
export type { WalStream, WalStreamOptions, WalStreamResult, TimelineHistoryFile } from './wal/streamer.js';
export type { WalSink, WalSegmentTarget, WalSegmentCloseMode, WalServerSettings } from './wal/sink.js';
export { DirectoryWalSink, type DirectoryWalSinkOptions } from './wal/directory-sink.js';
export { TarWalSink, type TarWalSinkOptions } from './wal/tar-sink.js';

// Tar and output sinks.
export { extractTar, readBody, TarExtractor } from './tar/extract.js';
export type { TarEntry, TarEntryBody, ExtractOptions } from './tar/extract.js';
export { DirectorySink, type DirectorySinkOptions } from './sinks/directory.js';
export { TarFilesSink, stdoutSink, type TarFilesSinkOptions } from './sinks/tar-files.js';
export { WritableSink, type WritableSinkOptions } from './sinks/writable.js';
export { parseTablespaceMapping, tablespaceMappingFrom } from './sinks/tablespace-mapping.js';
export type { BackupSink, ArchiveInfo, SinkCallOptions, Injection, InjectedFile } from './sinks/types.js';

// Connection parameters and recovery configuration.
export { parseConnectionString } from './connection/conninfo.js';
export { resolveConnectionOptions } from './connection/options.js';
export { lookupPgpass } from './connection/pgpass.js';
export { buildPrimaryConninfo, recoveryConfigContents, STANDBY_SIGNAL_FILE } from './recovery/standby.js';

// Backup manifests and verification.
export { crc32c, crc32cUpdate, crc32cFinal, CRC32C_INIT } from './manifest/crc32c.js';
export {
  createChecksum, parseChecksumAlgorithm, CHECKSUM_LENGTHS, MANIFEST_FILE_CHECKSUM_ALGORITHMS,
  type ChecksumContext, type ManifestFileChecksumAlgorithm,
} from './manifest/checksum.js';
export { ManifestParser, parseManifest, pathKeyFromBytes, type ManifestParseOptions } from './manifest/parse.js';
export {
  ManifestBuilder, buildManifest, escapeManifestString, formatManifestTime,
  type ManifestBuildFile, type ManifestBuildInput, type ManifestBuildOptions,
} from './manifest/build.js';
export type { BackupManifest, ManifestFile, ManifestWalRange } from './manifest/types.js';
export { verifyBackup, verifyBackupAll } from './verify/verify.js';
export type {
  ArchiveCompression, ArchiveOpener, ArchiveRef, VerifyFinding, VerifyFindingKind, VerifyOptions, VerifyProgress,
  VerifyRun, VerifySummary,
} from './verify/types.js';
export { ALWAYS_IGNORED, classifyArchive, defaultArchiveOpener, isIgnored, type ArchiveKind } from './verify/sources.js';
export { WalRangeChecker, XLOG_PAGE_MAGIC, majorForPageMagic, type WalRangeCheckOptions, type WalRangeCheckResult } from './verify/wal-check.js';
export { readControlFile, type ControlFileInfo } from './verify/control-file.js';

// Types referenced by the API above.
export type { TarSource } from './tar/extract.js';
export type { TarHeader, TarHeaderFormat, TarEntryType } from './tar/header.js';
export type { PgpassResult, PgpassKey } from './connection/pgpass.js';
export { pgpassHostName, pgpassKeyFor } from './connection/pgpass.js';
export type { ParsedSegmentName } from './wal/segments.js';
export type * from './protocol/messages.js';
export type { PrimaryConninfoOptions } from './recovery/standby.js';
export { DEFAULT_PORT, DEFAULT_SOCKET_DIRS, type SystemHooks } from './connection/env.js';
export { MAX_TESTED_SERVER_MAJOR, type ConnectionTuning } from './connection/connection.js';
export { findStreamingStart } from './wal/resume.js';
export type { WalDirectoryEntry, StreamingStart, FindStreamingStartOptions } from './wal/resume.js';
export { FeedbackTracker, type FeedbackOptions, type StatusUpdateValues } from './wal/feedback.js';

// Compression: specs (-Z grammar), parallel client-side compressors, decompressors, server-side options.
export {
  COMPRESSION_ALGORITHMS, COMPRESSION_LEVEL_RANGE, COMPRESSION_SUFFIX, DEFAULT_COMPRESSION_LEVEL, NO_COMPRESSION,
  algorithmFromFileName, compressedArchiveName, compressionDetailText, effectiveLevel, parseCompressOption,
  resolveCompression, uncompressedArchiveName, validateCompressionSpec,
} from './compress/spec.js';
export type {
  CompressionAlgorithm, CompressionInput, CompressionLocation, CompressionOptions, CompressionSpec,
} from './compress/spec.js';
export { DEFAULT_CHUNK_BYTES, ParallelCompressor, createCompressor, type CompressorOptions } from './compress/parallel.js';
export { algorithmOf, decompressorFor, type DecompressorOptions } from './compress/decompress.js';
export {
  compressArchive, compressedOutput, decompressArchive, pipeThrough, type CompressedOutputOptions,
} from './compress/archive.js';
export { CompressionPool, DEFAULT_MAX_THREADS, defaultThreadCount, sharedCompressionPool, type ChunkResult } from './compress/worker.js';
export type { ChunkCodecConfig } from './compress/codec.js';
export { compressionSupport, hasBuiltinZstd, type CompressionSupport } from './compress/backends.js';
export { Lz4FrameDecoder, decodeLz4Block, type Lz4FrameDecoderOptions } from './compress/lz4-frame.js';
export { XxHash32, xxhash32 } from './compress/xxhash32.js';
export {
  SERVER_COMPRESSION_MIN_MAJOR, checkServerCompression, mapServerCompressionError, serverCompressionOptions,
  type ServerCompressionOption,
} from './compress/server.js';

// Incremental backups (17+) and combining them (pg_combinebackup).
export { uploadManifest, withIncrementalAdvice, type UploadManifestOptions } from './replication/commands.js';
export { combineBackups } from './combine/combine.js';
export type { CombineOptions, CombineResult, CombinedTablespace } from './combine/types.js';
export {
  encodeIncrementalFile, incrementalHeaderLength, IncrementalHeaderReader, parseIncrementalHeader, DEFAULT_BLOCK_SIZE,
  DEFAULT_RELSEG_BLOCKS, INCREMENTAL_MAGIC, INCREMENTAL_PREFIX, type IncrementalHeader, type IncrementalLayout,
} from './combine/incremental-file.js';
export { planReconstruction, type PlanSource, type ReconstructionPlan, type ReconstructionRun } from './combine/plan.js';
export { combinedBackupLabel, parseBackupLabel, type BackupLabelInfo } from './combine/backup-label.js';
export { TarStructureChecker } from './tar/check.js';

// Restore: a backup into a new data directory with recovery settings, and restore_command over a WAL archive.
export { restoreWalFile, findArchivedWal, walFileKind, type RestoreWalOptions, type RestoreWalResult } from './recovery/restore-wal.js';
export { restoreBackup, defaultPgbbCommand, type RestoreOptions, type RestoreResult, type RestoreEvent } from './recovery/restore.js';
export { preflightRestore, type PreflightOptions, type PreflightResult, type TargetTimeline, type TimelineStep } from './recovery/preflight.js';
export { RecoveryTargetFinder, type RecoveryTarget, type TargetResolution } from './recovery/wal-targets.js';
export {
  RECOVERY_SIGNAL_FILE, parseTargetTime, parseTargetTimeline, parseTargetXid, recoveryAutoConf, restoreCommandLine,
  type RecoverySettings, type TargetAction,
} from './recovery/recovery-settings.js';
export { MAX_RECORD_BODY, type WalRecord } from './verify/wal-check.js';
export type { CheckedSegment } from './recovery/segment-check.js';
