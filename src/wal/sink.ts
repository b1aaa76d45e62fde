/**
 * The destination of streamed WAL. The streamer ({@link startWalStream}) drives a
 * {@link WalSink} one call at a time (never two calls in flight): open a segment, write
 * its bytes in order, flush, close it, repeat; history files arrive between segments.
 *
 * Implementations: {@link DirectoryWalSink} (a `pg_wal` directory, as pg_receivewal and
 * `pg_basebackup -Fp -Xstream` write it) and {@link TarWalSink} (`pg_wal.tar`, as
 * `pg_basebackup -Ft -Xstream` writes it).
 * @module
 */

/** What {@link WalSink.openSegment} is told about the segment to write. */
export interface WalSegmentTarget {
  /** The 24-character segment file name (`XLogFileName`), without any suffix. */
  name: string;
  /** WAL segment size in bytes (the file is always this long when complete). */
  segmentSize: number;
  /**
   * Offset inside the segment where the first write lands. The streamer always starts
   * segments at 0 (START_REPLICATION is sent at a segment boundary, as pg_receivewal does);
   * other values are for callers resuming a segment they wrote themselves.
   */
  startOffset: number;
}

/**
 * How a segment is closed.
 * - `complete`: all `segmentSize` bytes were written. It gets its final name (renamed from the
 *   partial suffix) and, if the sink marks done, an `archive_status/<name>.done`.
 * - `partial`: incomplete, kept under its partial name (pg_receivewal's `.partial`), so a later
 *   run can resume it. Padded to full size like every segment file.
 * - `padded`: incomplete, but given its final name, zero-padded to the full segment size and
 *   without `.done`. pg_basebackup does this with the last segment of `-Xstream` (it streams with
 *   no partial suffix), and recovery reads the zeros as the end of WAL.
 */
export type WalSegmentCloseMode = 'complete' | 'partial' | 'padded';

/** What a backup session learned from the server, given to {@link WalSink.prepare}. */
export interface WalServerSettings {
  /**
   * The server's data directory allows group read (`data_directory_mode` 0750, initdb
   * `--allow-group-access`): pg_basebackup then creates the backup's files 0640 and
   * directories 0750, WAL included.
   */
  groupReadable: boolean;
  /** WAL segment size in bytes (`SHOW wal_segment_size`). */
  segmentSize: number;
}

/**
 * A destination for streamed WAL. Calls are sequential: the caller awaits each promise
 * before the next call. A rejected promise leaves the sink in an undefined state; the
 * caller then calls {@link WalSink.abort}.
 */
export interface WalSink {
  /**
   * Optional. Called once by a backup session (`startBackup`) with the server's settings, before
   * BASE_BACKUP is sent and so before the first {@link WalSink.openSegment}: the place to
   * create the destination with the modes the server implies. A rejection fails the backup
   * before it starts.
   */
  prepare?(settings: WalServerSettings): Promise<void>;
  /**
   * Start writing a segment. Only one segment is open at a time.
   * @throws StateError when a segment is already open.
   */
  openSegment(target: WalSegmentTarget): Promise<void>;
  /**
   * Write `data` at the current position of the open segment and advance it. `data` may be
   * a view into a network buffer: the sink must be done with it (or have copied it) when the
   * promise resolves. Resolves once the bytes are handed to the destination (written to the
   * file, or accepted by the stream without exceeding its buffer): this is the backpressure.
   * @throws StateError when no segment is open or the write would run past the segment end.
   */
  write(data: Buffer): Promise<void>;
  /**
   * Optional. `true` when {@link WalSink.write} has written `data` out or copied it by the time its
   * promise resolves, and keeps no reference to it: the streamer then lets the connection reuse the
   * receive buffer under each message once it is written, which keeps the memory of a long stream
   * flat. Leave it unset for a sink that hands `data` to a stream's buffer (the stream may still hold
   * it): the receive buffers are then left to the garbage collector.
   * @default false
   */
  readonly writesDataAtOnce?: boolean;
  /**
   * Make everything written so far durable. Resolves only when it is (fsync for files);
   * the streamer reports the WAL as flushed to the server only after this resolves.
   * Resolves `false` when the destination cannot make part of a segment durable (a compressed
   * file, an object store that takes whole segments): the flush position then advances only
   * when {@link WalSink.closeSegment} resolves.
   */
  flush(): Promise<void | false>;
  /**
   * Close the open segment (durably), naming it according to `mode`. Resolves `false` when closing
   * did not make the WAL durable where the flush position counts (an archiver that stores only
   * complete segments, keeping an incomplete one in a local spool): the flush position then stays
   * where it was.
   */
  closeSegment(mode: WalSegmentCloseMode): Promise<void | false>;
  /**
   * Store a timeline history file (`%08X.history`) given by TIMELINE_HISTORY, durably, plus
   * `archive_status/<name>.done` when the sink marks done (as pg_receivewal/pg_basebackup do).
   * Called between segments only.
   */
  writeHistoryFile(name: string, content: Buffer): Promise<void>;
  /**
   * End of the stream: no open segment remains. Writes what closes the destination (the tar
   * terminator) and makes the directory entries durable.
   */
  finish(): Promise<void>;
  /**
   * Give up: drop what is incomplete (the open segment) and release resources. Idempotent;
   * never rejects for cleanup problems it can ignore.
   */
  abort(reason?: unknown): Promise<void>;
}
