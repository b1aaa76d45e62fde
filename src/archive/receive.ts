/**
 * Continuous WAL archiving: pg_receivewal's job, as a library call ({@link receiveWal}) that
 * yields typed events and runs for as long as the caller iterates.
 *
 * One run is a loop of sessions, each a state machine:
 * `connecting` (connect, IDENTIFY_SYSTEM, system identifier and segment size checked against
 * the previous session) → `positioning` (where to start: after the archive's newest complete
 * segment, else the slot's restart position on 15+, else the server's position) → `streaming`
 * (START_REPLICATION through {@link startWalStream}, timeline switches followed) → `backoff`
 * (a retryable failure: wait, capped exponential, then `connecting` again) or `stopped`.
 * Every session starts from what the archive holds, so a session that died mid-segment
 * streams that segment again from its start: no gap and no torn segment, whatever the failure.
 *
 * Failures that reconnecting cannot fix end the run: a server newer than supported, another
 * system identifier, a gap in the archive ({@link WalArchiveGapError}), bad options, file-system
 * errors, storage errors that are not transient, authentication failures. A transient storage
 * error (`StorageError` with `retryable`, after the storage's own retries) starts a new session.
 * Why one file of this size: the session states above share the connection, the start point and the
 * event queue; the segment store, naming, start search and compression are in their own files.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { MAX_SERVER_MAJOR, ReplicationConnection } from '../connection/connection.js';
import type { ConnectionOptions, ReplicationConnectionApi } from '../connection/types.js';
import type { CompressionInput, CompressionSpec } from '../compress/spec.js';
import {
  AbortError,
  ConfigError,
  ConnectionClosedError,
  ConnectionError,
  ConnectTimeoutError,
  ServerError,
  StorageError,
  UnsupportedServerError,
  WalStreamError,
} from '../errors.js';
import { formatLsn, lsnAdd, lsnSubtract, type Lsn } from '../lsn.js';
import { identifySystem, readReplicationSlot, show } from '../replication/commands.js';
import { parseSegmentFileName, parseWalSegmentSize, segmentFileNameForLsn, segmentStartLsn, segmentStartOf } from '../wal/segments.js';
import type { WalSink } from '../wal/sink.js';
import { startWalStream, type WalStream } from '../wal/streamer.js';
import { WalArchiveGapError, WalArchiveMismatchError } from '../errors.js';
import type { ConnectedEvent, ReceiveWalEvent } from './events.js';
import { findArchiveStart, type ArchiveFile } from './start.js';
import { DirectoryWalStore, type WalSegmentStore } from './store.js';

/** Options of {@link receiveWal}. */
export interface ReceiveWalOptions {
  /** The server: connection options or a libpq connection string / URI. */
  connection: ConnectionOptions | string;
  /**
   * The archive directory (pg_receivewal `-D`), as a {@link DirectoryWalStore}. Give this or
   * `store`.
   */
  directory?: string;
  /** Where segments go, instead of `directory` (e.g. object storage). */
  store?: WalSegmentStore;
  /** With `directory`: compress each segment (`'gzip'`, `'lz4:1'`, `'zstd'`). @default none */
  compression?: CompressionInput | CompressionSpec;
  /** With `directory`: fsync what is written (`false` is pg_receivewal's `--no-sync`). @default true */
  fsync?: boolean;
  /**
   * Stream through this physical replication slot, which must exist: the server keeps WAL until
   * it is archived, and the flush position is reported (moving the slot).
   */
  slotName?: string;
  /** Stop once WAL up to this position is archived (pg_receivewal `--endpos`). */
  endLsn?: Lsn;
  /**
   * Milliseconds between standby status updates; 0: only when the server asks. Below the
   * server's `wal_sender_timeout`.
   * @default 10000
   */
  statusIntervalMs?: number;
  /**
   * Flush and report after every write, so the archiver can be a synchronous standby
   * (pg_receivewal `--synchronous`). The flush position is then reported even without a slot.
   * @default false
   */
  synchronous?: boolean;
  /**
   * Reconnect after a lost connection or a server restart. `false` ends the run with the error
   * instead (pg_receivewal `--no-loop`).
   * @default true
   */
  reconnect?: boolean;
  /** Delay before the first reconnection attempt, doubled on each failure up to `maxReconnectDelayMs`. @default 1000 */
  reconnectDelayMs?: number;
  /** The longest wait between two reconnection attempts. @default 30000 */
  maxReconnectDelayMs?: number;
  /**
   * A session fails (and reconnects) when the server sends nothing for this long while streaming:
   * a server that hangs without closing the connection is not waited for forever. Status updates
   * ask the server for a reply, so a healthy idle server answers well within it. With
   * `statusIntervalMs: 0` give it explicitly, above the server's `wal_sender_timeout` / 2.
   * @default 60000, or 3 × statusIntervalMs when that is larger; none when statusIntervalMs is 0
   */
  serverTimeoutMs?: number;
  /**
   * Compute the SHA-256 of every segment's uncompressed bytes for its `segment-completed` event.
   * Hashing costs about as much CPU as writing the WAL uncompressed: turn it off when nothing reads
   * the checksums (pg_receivewal computes none).
   * @default true
   */
  segmentChecksums?: boolean;
  /**
   * Stops archiving: the session ends cleanly (the last status update tells the server, and a
   * slot, how far the archive got; the open segment stays `.partial`, durable), a `stopped`
   * event with reason `aborted` is yielded and the iteration ends without an error.
   */
  signal?: AbortSignal;
}

/** A running archiver: iterate it for events; see {@link receiveWal}. */
export interface WalReceiver extends AsyncIterableIterator<ReceiveWalEvent>, AsyncDisposable {
  /** End archiving cleanly (as an aborted `signal` does, with reason `stopped`); resolves when the run has ended. */
  stop(): Promise<void>;
  /** The current phase. */
  readonly phase: ReceiverPhase;
}

/** Size of XLogLongPageHeaderData, enough to read the system identifier and segment size. */
const LONG_HEADER_BYTES = 40;
/** `xlp_info` flag of a long page header (the first page of a segment). */
const XLP_LONG_HEADER = 0x0002;

/** Where a {@link WalReceiver} is in its life cycle (see the module documentation). */
export type ReceiverPhase = 'idle' | 'connecting' | 'positioning' | 'streaming' | 'backoff' | 'stopped';

interface StartPoint {
  startLsn: Lsn;
  timeline: number;
  from: 'archive' | 'slot' | 'server';
  basedOn?: string;
}

function isGapError(err: unknown): boolean {
  return err instanceof ServerError && /requested WAL segment .* has already been removed/.test(err.serverMessage);
}

/**
 * Whether reconnecting can help. Broken connections, server shutdowns and restarts, a server
 * still starting, too many connections, and a slot still held by our previous walsender (it
 * notices the dead connection only at its own timeout) are retried; anything about the
 * options, the data, the archive or the server's identity is not.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof WalArchiveGapError || err instanceof WalArchiveMismatchError) return false;
  // A transient storage failure that outlasted the storage's own retries (a server down for a while):
  // the next session streams the unstored segment again, which the slot kept on the server.
  if (err instanceof StorageError) return err.retryable;
  if (err instanceof ServerError) {
    if (isGapError(err)) return false;
    const s = err.sqlState;
    return s.startsWith('57') || s.startsWith('08') || s === '53300' || s === '55006';
  }
  return (
    err instanceof ConnectionError ||
    err instanceof ConnectTimeoutError ||
    err instanceof ConnectionClosedError ||
    err instanceof WalStreamError
  );
}

class Receiver implements WalReceiver {
  readonly #o: ReceiveWalOptions;
  readonly #store: WalSegmentStore;
  readonly #queue: ReceiveWalEvent[] = [];
  #wake: (() => void) | undefined;
  #finished = false;
  #failure: unknown;
  #started: Promise<void> | undefined;
  #phase: ReceiverPhase = 'idle';
  #stopReason: 'stopped' | 'aborted' | undefined;
  /** Aborts connecting, the setup commands and the backoff wait (not the stream: it is stopped). */
  readonly #pause = new AbortController();
  #stream: WalStream | undefined;
  #systemId: string | undefined;
  #segmentSize: number | undefined;
  #position: Lsn | undefined;
  #timeline: number | undefined;

  constructor(options: ReceiveWalOptions) {
    if ((options.directory === undefined) === (options.store === undefined)) {
      throw new ConfigError('receiveWal needs exactly one of directory and store');
    }
    if (options.store !== undefined && (options.compression !== undefined || options.fsync !== undefined)) {
      throw new ConfigError('compression and fsync are options of the directory store: configure the given store instead');
    }
    for (const [k, v] of [
      ['statusIntervalMs', options.statusIntervalMs],
      ['reconnectDelayMs', options.reconnectDelayMs],
      ['maxReconnectDelayMs', options.maxReconnectDelayMs],
    ] as const) {
      if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new ConfigError(`${k} must be a number ≥ 0, got ${v}`);
    }
    if (options.serverTimeoutMs !== undefined && !(options.serverTimeoutMs > 0)) {
      throw new ConfigError(`serverTimeoutMs must be > 0, got ${options.serverTimeoutMs}`);
    }
    this.#o = options;
    this.#store =
      options.store ??
      new DirectoryWalStore({
        directory: options.directory!,
        ...(options.compression !== undefined ? { compression: options.compression } : {}),
        ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
      });
  }

  get phase(): ReceiverPhase {
    return this.#phase;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ReceiveWalEvent>> {
    this.#start();
    for (;;) {
      const ev = this.#queue.shift();
      if (ev !== undefined) return { done: false, value: ev };
      if (this.#finished) {
        if (this.#failure !== undefined) {
          const err = this.#failure;
          this.#failure = undefined;
          throw err;
        }
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async return(): Promise<IteratorResult<ReceiveWalEvent>> {
    await this.stop();
    this.#queue.length = 0;
    return { done: true, value: undefined };
  }

  async stop(): Promise<void> {
    this.#requestStop('stopped');
    // A failure is reported by next(); stop() only waits for the end.
    await this.#started?.catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #start(): void {
    if (this.#started !== undefined || this.#finished) return;
    const signal = this.#o.signal;
    const onAbort = (): void => this.#requestStop('aborted');
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#started = this.#run()
      .then(
        () => undefined,
        (err: unknown) => {
          this.#failure = err;
        },
      )
      .finally(() => {
        signal?.removeEventListener('abort', onAbort);
        this.#phase = 'stopped';
        this.#finished = true;
        this.#notify();
      });
  }

  #requestStop(reason: 'stopped' | 'aborted'): void {
    this.#stopReason ??= reason;
    if (this.#started === undefined) {
      // Never iterated: nothing runs, nothing to clean up.
      this.#finished = true;
      return;
    }
    this.#pause.abort(new AbortError('WAL archiving was stopped'));
    void this.#stream?.stop().catch(() => undefined);
  }

  #emit(ev: ReceiveWalEvent): void {
    this.#queue.push(ev);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #stopped(reason: 'end-lsn' | 'stopped' | 'aborted'): void {
    this.#emit({ type: 'stopped', reason, position: this.#position, timeline: this.#timeline });
  }

  async #run(): Promise<void> {
    await this.#store.prepare();
    let attempt = 0;
    for (;;) {
      if (this.#stopReason !== undefined) return this.#stopped(this.#stopReason);
      let progressed = false;
      try {
        const ended = await this.#session(() => {
          progressed = true;
        });
        if (ended === 'end-lsn') return this.#stopped('end-lsn');
        return this.#stopped(this.#stopReason ?? 'stopped');
      } catch (err) {
        if (this.#stopReason !== undefined && (err instanceof AbortError || isRetryable(err))) {
          return this.#stopped(this.#stopReason);
        }
        if (!isRetryable(err) || this.#o.reconnect === false) throw err;
        attempt = progressed ? 1 : attempt + 1;
        const first = this.#o.reconnectDelayMs ?? 1000;
        const delayMs = Math.min(first * 2 ** (attempt - 1), this.#o.maxReconnectDelayMs ?? 30_000);
        this.#emit({ type: 'reconnecting', attempt, delayMs, error: err as Error });
        this.#phase = 'backoff';
        await this.#sleep(delayMs);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#pause.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One connection: returns how it ended cleanly, or throws. */
  async #session(onProgress: () => void): Promise<'end-lsn' | 'stopped'> {
    this.#phase = 'connecting';
    const input = typeof this.#o.connection === 'string' ? { connectionString: this.#o.connection } : this.#o.connection;
    const signal = this.#pause.signal;
    const conn = await ReplicationConnection.connect({ ...input, signal });
    try {
      const major = conn.serverMajor;
      if (major > MAX_SERVER_MAJOR) {
        throw new UnsupportedServerError(
          `the server runs PostgreSQL ${conn.parameters.get('server_version') ?? conn.serverVersionNum}, newer than ` +
            `${MAX_SERVER_MAJOR}, the newest this version of pg-basebackup archives WAL from: upgrade pg-basebackup`,
        );
      }
      const id = await identifySystem(conn, { signal });
      if (id.dbName !== null) {
        throw new ConfigError(
          `the replication connection is unexpectedly database specific (database "${id.dbName}"): ` +
            'WAL archiving needs a physical replication connection; remove replication=database from the connection string',
        );
      }
      if (this.#systemId !== undefined && id.systemId !== this.#systemId) {
        throw new WalArchiveMismatchError(
          `the server's system identifier changed from ${this.#systemId} to ${id.systemId}: ` +
            'it is another cluster, whose WAL does not belong in this archive; archive it into another directory',
        );
      }
      const segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size', { signal }));
      if (this.#segmentSize !== undefined && segmentSize !== this.#segmentSize) {
        throw new WalArchiveMismatchError(`the server's WAL segment size changed from ${this.#segmentSize} to ${segmentSize} bytes`);
      }
      this.#systemId = id.systemId;
      this.#segmentSize = segmentSize;
      await this.#store.checkServer?.({ systemIdentifier: id.systemId, majorVersion: major, segmentSize });

      this.#phase = 'positioning';
      const start = await this.#startPoint(conn, id.xlogPos, id.timeline, segmentSize);
      this.#position ??= start.startLsn;
      this.#timeline ??= start.timeline;
      const connected: ConnectedEvent = {
        type: 'connected',
        systemId: id.systemId,
        serverVersion: conn.parameters.get('server_version') ?? String(conn.serverVersionNum),
        serverTimeline: id.timeline,
        startLsn: start.startLsn,
        startTimeline: start.timeline,
        startFrom: start.from,
        ...(start.basedOn !== undefined ? { basedOn: start.basedOn } : {}),
      };
      this.#emit(connected);
      if (this.#o.endLsn !== undefined && start.startLsn >= this.#o.endLsn) return 'end-lsn';
      if (this.#stopReason !== undefined) return 'stopped';

      this.#phase = 'streaming';
      const interval = this.#o.statusIntervalMs ?? 10_000;
      // Without periodic updates nothing asks the server to speak: only its own keepalives (every
      // half wal_sender_timeout, which may be off) would arrive, so no default timeout then.
      const serverTimeoutMs = this.#o.serverTimeoutMs ?? (interval > 0 ? Math.max(60_000, 3 * interval) : undefined);
      const stream = startWalStream({
        connection: conn,
        startLsn: start.startLsn,
        timeline: start.timeline,
        segmentSize,
        ...(this.#o.slotName !== undefined ? { slotName: this.#o.slotName } : {}),
        ...(this.#o.endLsn !== undefined ? { endLsn: this.#o.endLsn } : {}),
        statusIntervalMs: interval,
        synchronous: this.#o.synchronous ?? false,
        ...(serverTimeoutMs !== undefined ? { serverTimeoutMs } : {}),
        finalizeLastSegment: 'keep-partial',
        sink: this.#trackingSink(this.#store.openSink(), segmentSize, onProgress),
        onTimelineSwitch: (s) => {
          this.#timeline = s.to;
          this.#emit({ type: 'timeline-switch', from: s.from, to: s.to, switchLsn: s.switchLsn, restartLsn: s.restartLsn });
        },
        onStatusSent: (s) => this.#emit({ type: 'status-reported', write: s.write, flush: s.flush }),
      });
      this.#stream = stream;
      if (this.#stopReason !== undefined) void stream.stop().catch(() => undefined);
      try {
        const result = await stream.done;
        this.#position = result.position;
        this.#timeline = result.timeline;
        return result.reason;
      } catch (err) {
        if (isGapError(err) && start.from === 'archive') throw await this.#gapError(conn, start, segmentSize, err);
        throw err;
      } finally {
        this.#stream = undefined;
      }
    } finally {
      await conn.close().catch(() => conn.destroy());
    }
  }

  /** pg_receivewal's order: the archive, then the slot (15+), then the server's position. */
  async #startPoint(conn: ReplicationConnectionApi, serverPos: Lsn, serverTimeline: number, segmentSize: number): Promise<StartPoint> {
    const files = await this.#store.list();
    const found = await findArchiveStart(files, {
      segmentSize,
      uncompressedBytes: (f) => this.#store.uncompressedBytes(f),
      onSkip: (f, reason) => this.#emit({ type: 'warning', message: `skipping "${f.name}" in the archive: ${reason}` }),
    });
    if (found !== undefined) {
      const file = files.find((f) => f.name === found.basedOn);
      if (file !== undefined) await this.#checkArchiveIdentity(file, segmentSize);
      return { startLsn: found.startLsn, timeline: found.timeline, from: 'archive', basedOn: found.basedOn };
    }
    if (this.#o.slotName !== undefined && conn.serverMajor >= 15) {
      const slot = await readReplicationSlot(conn, this.#o.slotName, { signal: this.#pause.signal });
      if (slot === null) {
        throw new ConfigError(
          `the server has no replication slot "${this.#o.slotName}": create it first (pgbb receive-wal ` +
            '--create-slot), or archive without --slot',
        );
      }
      if (slot.slotType !== 'physical') {
        throw new ConfigError(`replication slot "${this.#o.slotName}" is ${slot.slotType}: WAL archiving needs a physical slot`);
      }
      if (slot.restartLsn !== null && slot.restartTli !== null) {
        return { startLsn: segmentStartOf(slot.restartLsn, segmentSize), timeline: slot.restartTli, from: 'slot' };
      }
    }
    return { startLsn: segmentStartOf(serverPos, segmentSize), timeline: serverTimeline, from: 'server' };
  }

  /**
   * The archive must hold this server's WAL: the long header on the first page of the segment
   * the archive resumes from carries the system identifier and the segment size (xlog_internal.h,
   * XLogLongPageHeaderData). A segment with no page written yet (a zero-filled .partial) says nothing.
   */
  async #checkArchiveIdentity(file: ArchiveFile, segmentSize: number): Promise<void> {
    if (this.#store.readSegmentStart === undefined) return;
    const head = await this.#store.readSegmentStart(file, LONG_HEADER_BYTES);
    if (head.length < LONG_HEADER_BYTES || (head.readUInt16LE(2) & XLP_LONG_HEADER) === 0) return;
    const systemId = head.readBigUInt64LE(24).toString();
    const pageSegmentSize = head.readUInt32LE(32);
    if (systemId !== this.#systemId || pageSegmentSize !== segmentSize) {
      throw new WalArchiveMismatchError(
        `the archive in ${this.#store.description} holds WAL of another cluster ("${file.name}": system identifier ` +
          `${systemId}, segment size ${pageSegmentSize}; the server: ${this.#systemId ?? '?'}, ${segmentSize}): archive ` +
          'this server into another directory',
      );
    }
  }

  /** The archive's next segment is gone from the server: name the hole. */
  async #gapError(conn: ReplicationConnectionApi, start: StartPoint, segmentSize: number, cause: unknown): Promise<WalArchiveGapError> {
    let to: Lsn | undefined;
    if (this.#o.slotName !== undefined && conn.serverMajor >= 15) {
      // The failed START_REPLICATION left the connection ready for another command.
      const slot = await readReplicationSlot(conn, this.#o.slotName).catch(() => null);
      if (slot?.restartLsn != null && slot.restartLsn > start.startLsn) to = segmentStartOf(slot.restartLsn, segmentSize);
    }
    const firstMissing = segmentFileNameForLsn(start.timeline, start.startLsn, segmentSize);
    const lastMissing = to === undefined ? undefined : segmentFileNameForLsn(start.timeline, lsnSubtract(to, 1), segmentSize);
    const archive = this.#store.description;
    return gapError({ from: start.startLsn, to, firstMissing, lastMissing, archive, cause });
  }

  /** The store's sink, observed: segment events with checksums, and progress for the backoff. */
  #trackingSink(sink: WalSink, segmentSize: number, onProgress: () => void): WalSink {
    let open: { segment: string; timeline: number; startLsn: Lsn; hash: Hash | undefined; bytes: number } | undefined;
    const checksums = this.#o.segmentChecksums ?? true;
    return {
      openSegment: async (t) => {
        await sink.openSegment(t);
        const parsed = parseSegmentFileName(t.name, segmentSize);
        const timeline = parsed?.timeline ?? 0;
        const startLsn = segmentStartLsn(parsed?.segno ?? 0n, segmentSize);
        open = { segment: t.name, timeline, startLsn, hash: checksums ? createHash('sha256') : undefined, bytes: 0 };
        onProgress();
        this.#emit({ type: 'segment-started', segment: t.name, timeline, startLsn });
      },
      writesDataAtOnce: sink.writesDataAtOnce === true,
      write: async (data) => {
        await sink.write(data);
        if (open) {
          open.hash?.update(data);
          open.bytes += data.length;
          this.#position = lsnAdd(open.startLsn, open.bytes);
        }
      },
      flush: () => sink.flush(),
      closeSegment: async (mode) => {
        const durable = await sink.closeSegment(mode);
        const seg = open;
        open = undefined;
        if (!seg) return durable;
        const endLsn = lsnAdd(seg.startLsn, seg.bytes);
        if (mode === 'complete') {
          this.#emit({
            type: 'segment-completed',
            segment: seg.segment,
            timeline: seg.timeline,
            startLsn: seg.startLsn,
            endLsn,
            ...(seg.hash ? { sha256: seg.hash.digest('hex') } : {}),
          });
        } else {
          this.#emit({ type: 'segment-partial', segment: seg.segment, timeline: seg.timeline, startLsn: seg.startLsn, endLsn });
        }
        return durable;
      },
      writeHistoryFile: async (name, content) => {
        await sink.writeHistoryFile(name, content);
        this.#emit({ type: 'history-file', name, timeline: Number.parseInt(name.slice(0, 8), 16) });
      },
      finish: () => sink.finish(),
      abort: async (reason) => {
        await sink.abort(reason);
        const seg = open;
        open = undefined;
        if (seg) {
          this.#emit({
            type: 'segment-partial',
            segment: seg.segment,
            timeline: seg.timeline,
            startLsn: seg.startLsn,
            endLsn: lsnAdd(seg.startLsn, seg.bytes),
          });
        }
      },
    };
  }
}

/**
 * Archive WAL continuously, as pg_receivewal does: into a directory (or any
 * {@link WalSegmentStore}), segment by segment, `.partial` until complete, following timeline
 * switches, reconnecting after failures, until `endLsn`, {@link WalReceiver.stop} or `signal`.
 * Nothing runs until the first `next()`; the iteration yields {@link ReceiveWalEvent}s, ends
 * after a `stopped` event, and throws the error that ended the run otherwise (see the module
 * documentation for which errors end it). Breaking out of the loop stops cleanly.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * process.once('SIGTERM', () => ac.abort());
 * for await (const ev of receiveWal({ connection: 'host=db user=archiver', directory: '/archive/wal',
 *   slotName: 'archiver', compression: 'lz4', signal: ac.signal })) {
 *   if (ev.type === 'segment-completed') log(`${ev.segment} ${ev.sha256}`);
 * }
 * ```
 */
export function receiveWal(options: ReceiveWalOptions): WalReceiver {
  return new Receiver(options);
}

/** The gap error, its message naming the missing segments and range and what to do. */
function gapError(o: {
  from: Lsn;
  to?: Lsn | undefined;
  firstMissing: string;
  lastMissing?: string | undefined;
  archive: string;
  cause?: unknown;
}): WalArchiveGapError {
  const several = o.lastMissing !== undefined && o.lastMissing !== o.firstMissing;
  const range = several
    ? `segments ${o.firstMissing} to ${o.lastMissing} (${formatLsn(o.from)} to ${formatLsn(o.to ?? o.from)})`
    : `segment ${o.firstMissing} (from ${formatLsn(o.from)})`;
  return new WalArchiveGapError(
    `the archive in ${o.archive} has a gap: ${range} ${several ? 'are' : 'is'} missing, and the ` +
      'server has already removed that WAL. Archiving cannot continue without a hole: take a new base backup and archive ' +
      'into a new directory, or copy the missing segments into the archive from another source; stream through a ' +
      'replication slot (--slot) so that the server keeps WAL until it is archived.',
    { cause: o.cause, missingFrom: o.from, missingTo: o.to },
  );
}
