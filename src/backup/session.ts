/**
 * A streamed base backup: {@link startBackup} runs BASE_BACKUP and hands back a
 * {@link BackupSession} once the server has taken its checkpoint and listed the
 * tablespaces; the caller then pulls the archives (backpressure reaches the socket), the
 * manifest and the result.
 *
 * Session states (STYLE practice 6):
 * ```
 * started ─→ archives ─→ manifest ─→ end-position ─→ done
 *    └──────────┴────────────┴─────────────┴──→ failed (error, abort, close before done)
 * ```
 * - started: the start row and the tablespace header arrived (startBackup resolved).
 * - archives: tablespace archives are flowing.
 * - manifest: the manifest is flowing.
 * - end-position: the end row arrived; the WAL stream (if any) is finishing.
 * - done: BASE_BACKUP completed and the WAL stream finished.
 *
 * Everything the server sends goes through one pump (the private `nextEvent`); it
 * reads the connection only when a consumer asks for more, so nothing is buffered beyond one
 * message (the manifest excepted: it is small and bounded).
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BufferedMessages } from '../connection/connection.js';
import type { ConnectionOptions, ReplicationConnectionApi, ServerNotice } from '../connection/types.js';
import {
  AbortError, ChecksumFailureError, ConfigError, ConnectionClosedError, IoError, PgBackupError, ProtocolError, ServerError, StateError,
  UnsupportedServerError, WalStreamError, type ChecksumFailureReport,
} from '../errors.js';
import { uploadManifest, withIncrementalAdvice } from '../replication/commands.js';
import type { Lsn } from '../lsn.js';
import { SqlState } from '../protocol/codes.js';
import { parseWalSegmentSize, segmentStartOf } from '../wal/segments.js';
import { TarWalSink } from '../wal/tar-sink.js';
import type { WalSink } from '../wal/sink.js';
import { BackupArchive, type ArchiveController, type BackupTablespace } from './archive.js';
import { buildBaseBackupCommand } from './command.js';
import { checkServerCompression, mapServerCompressionError } from '../compress/server.js';
import { defaultBackupDeps } from './default-deps.js';
import type { BackupDeps, BackupWalStream } from './deps.js';
import { parseChecksumNotice, type BackupProgress, type BackupSessionEventMap } from './events.js';
import { resolveBaseBackupOptions, type BaseBackupOptions, type ResolvedBaseBackupOptions } from './options.js';
import { ProgressTracker } from './progress.js';
import { BaseBackupResponseParser, type BackupResponseEvent } from './response.js';

// The supported range is the one server-version policy (src/server-version.ts), re-exported here.
import { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR } from '../server-version.js';
export { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR };

/** The session's lifecycle state; see the module documentation. */
export type BackupSessionState = 'started' | 'archives' | 'manifest' | 'end-position' | 'done' | 'failed';

/** Byte counts of a finished backup. */
export interface BackupStats {
  /** Bytes received per archive, in order (`pg_wal.tar` included when spooled). */
  archives: { name: string; bytes: number }[];
  /** Sum of the tablespace archives' bytes (`pg_wal.tar` excluded). */
  totalBytes: number;
  /** Bytes of the spooled `pg_wal.tar`, when WAL was spooled. */
  walBytes: number | undefined;
  /** From `startBackup()` to the end of BASE_BACKUP and of the WAL stream. */
  durationMs: number;
}

/** What {@link BackupSession.result} resolves to. */
export interface BackupResult {
  startLsn: Lsn;
  startTimeline: number;
  endLsn: Lsn;
  endTimeline: number;
  /** The backup manifest (JSON bytes), unless `manifest: false`. */
  manifest: Buffer | undefined;
  stats: BackupStats;
  /** Page checksum failures the server reported (always empty when `result()` resolves). */
  checksumFailures: ChecksumFailureReport[];
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Per-archive bookkeeping of the pump. */
interface ArchiveState {
  archive: BackupArchive;
  bytes: number;
  ended: boolean;
  /** Data was thrown away by a drain: a reader that resumes must not see a silent gap. */
  discarded: boolean;
}

/** What {@link BackupSession}'s synchronous pull returns when the caller has to wait. */
const PENDING = Symbol('pending');
/** {@link BackupSession} internal: nothing queued, a message must be read. */
const NONE_QUEUED = Symbol('none queued');

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * A base backup in progress. Get one from {@link startBackup}.
 *
 * @example
 * ```ts
 * await using session = await startBackup({ connection: 'host=db user=replicator', checkpoint: 'fast' });
 * for await (const archive of session.archives()) {
 *   await archive.pipeTo(createWriteStream(`/backups/${archive.name}`));
 * }
 * const { endLsn, manifest } = await session.result();
 * ```
 */
export class BackupSession extends EventEmitter<BackupSessionEventMap> {
  readonly #opts: ResolvedBaseBackupOptions;
  readonly #deps: BackupDeps;
  readonly #startedAt = performance.now();
  #conn: ReplicationConnectionApi | undefined;
  #walConn: ReplicationConnectionApi | undefined;
  #wal: BackupWalStream | undefined;
  readonly #walAbort = new AbortController();
  #spoolDir: string | undefined;
  #spoolFile: string | undefined;
  /** Open for writing from {@link #prepareWalStream} until the WAL stream ended. */
  #spoolHandle: FileHandle | undefined;
  #spoolStream: Writable | undefined;
  #createdSlot: string | undefined;
  #createdSlotConfirmed = false;
  #slotName: string | undefined;

  #parser: BaseBackupResponseParser | undefined;
  #iter: AsyncIterator<unknown> | undefined;
  /** The connection iterator's `takeBuffered()`, when it has one (see `BufferedMessages`). */
  #takeBuffered: (() => IteratorResult<unknown> | undefined) | undefined;
  /** {@link #nextEvent} calls not yet settled: the synchronous path waits behind them. */
  #pulling = 0;
  readonly #queue: BackupResponseEvent[] = [];
  #streamEnded = false;
  #pumpBusy: Promise<void> = Promise.resolve();

  #state: BackupSessionState = 'started';
  #failure: Error | undefined;
  readonly #failed = deferred<never>();
  /** The reject functions of pending {@link #guard} calls; {@link destroy} calls them. */
  readonly #guards = new Set<(err: unknown) => void>();
  #checksumError: ChecksumFailureError | undefined;
  readonly #checksumFiles = new Map<string, ChecksumFailureReport>();
  #checksumTotal: number | undefined;

  #systemIdentifier = '';
  #serverVersionNum = 0;
  #serverMajor = 0;
  #walSegmentSize = 0;
  #groupReadable = false;
  #startLsn: Lsn | undefined;
  #startTimeline = 0;
  #endLsn: Lsn | undefined;
  #endTimeline = 0;
  #tablespaces: BackupTablespace[] = [];
  readonly #endRow = deferred<void>();
  readonly #archiveStats: { name: string; bytes: number }[] = [];
  #current: ArchiveState | undefined;
  #archivesSeen = 0;
  #manifestChunks: Buffer[] | undefined;
  #manifest: Buffer | undefined;
  #walBytes: number | undefined;
  readonly #progress: ProgressTracker;

  #archivesCalled = false;
  #consumerActive = false;
  #consumerIdle = deferred<void>();
  #resultPromise: Promise<BackupResult> | undefined;
  #finalized: Promise<void> | undefined;
  #cleanup: Promise<void> | undefined;
  #durationMs: number | undefined;
  readonly #onAbort = (): void => {
    const reason: unknown = this.#opts.signal?.reason;
    // Say why when the caller did ("interrupted by SIGINT" from the CLI); a bare abort() gives
    // a DOMException named AbortError, which adds nothing.
    const why = reason instanceof Error && reason.name !== 'AbortError' || reason instanceof AbortError ? `: ${reason.message}` : '';
    this.destroy(new AbortError(`the backup was aborted${why}`, { cause: reason }));
  };
  readonly #onNotice = (notice: ServerNotice): void => {
    this.#handleNotice(notice);
  };
  readonly #onWalNotice = (notice: ServerNotice): void => {
    this.#opts.onNotice?.(notice);
    this.emit('notice', notice);
  };
  readonly #onClose = (error: Error | undefined): void => {
    if (this.#state === 'done' || this.#failure) return;
    // The pump notices too, but only when someone pulls: fail pending and future calls now.
    if (!this.#streamEnded) this.destroy(error ?? new ConnectionClosedError('the server closed the backup connection'));
  };

  /** @internal Use {@link startBackup}. */
  constructor(options: ResolvedBaseBackupOptions, deps: BackupDeps) {
    super();
    this.#opts = options;
    this.#deps = deps;
    this.#progress = new ProgressTracker(options.progressIntervalMs);
  }

  /** The cluster's system identifier (IDENTIFY_SYSTEM `systemid`), in decimal. */
  get systemIdentifier(): string {
    return this.#systemIdentifier;
  }
  /** `server_version_num`, e.g. 170002. */
  get serverVersionNum(): number {
    return this.#serverVersionNum;
  }
  /** The backup's start position (the checkpoint's redo location). */
  get startLsn(): Lsn {
    return this.#startLsn!;
  }
  /** The timeline of {@link startLsn}. */
  get startTimeline(): number {
    return this.#startTimeline;
  }
  /** The end position, once the server has sent it. */
  get endLsn(): Lsn | undefined {
    return this.#endLsn;
  }
  /** Tablespaces in server order: user tablespaces first, the data directory last. */
  get tablespaces(): readonly BackupTablespace[] {
    return this.#tablespaces;
  }
  /** WAL segment size in bytes (`SHOW wal_segment_size`). */
  get walSegmentSize(): number {
    return this.#walSegmentSize;
  }
  /** Whether the data directory allows group read (`data_directory_mode` 0750). Restores should keep it. */
  get groupReadable(): boolean {
    return this.#groupReadable;
  }
  /** The replication slot the WAL stream uses, if any. */
  get slotName(): string | undefined {
    return this.#slotName;
  }
  /** The lifecycle state. */
  get state(): BackupSessionState {
    return this.#state;
  }
  /** Current progress (the same object shape as the `progress` events). */
  get progress(): BackupProgress {
    return this.#progress.snapshot();
  }
  /** Checksum failures reported so far. */
  get checksumFailures(): ChecksumFailureReport[] {
    return [...this.#checksumFiles.values()].map((f) => ({ ...f, blocks: [...f.blocks] }));
  }

  // ---------------------------------------------------------------------------------------
  // Start

  /** @internal Connects, checks the server, prepares WAL streaming and starts BASE_BACKUP. */
  async start(): Promise<void> {
    const o = this.#opts;
    const signal = o.signal;
    if (signal?.aborted) throw new AbortError('the backup was aborted before it started', { cause: signal.reason });
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    try {
      // Incremental (17+): read the prior manifest before connecting, so a bad path costs nothing.
      const priorManifest = o.incrementalManifest === undefined ? undefined : await readPriorManifest(o.incrementalManifest);
      const conn = await this.#guard(this.#deps.connect(o.connection));
      this.#conn = conn;
      conn.on('notice', this.#onNotice);
      conn.on('close', this.#onClose);
      this.#serverVersionNum = conn.serverVersionNum;
      this.#serverMajor = conn.serverMajor;
      if (conn.serverMajor < MIN_SERVER_MAJOR || conn.serverMajor > MAX_SERVER_MAJOR) {
        throw new UnsupportedServerError(`the server runs PostgreSQL ${conn.parameters.get('server_version') ?? conn.serverVersionNum}, ` +
          `but pg-basebackup supports PostgreSQL ${MIN_SERVER_MAJOR} to ${MAX_SERVER_MAJOR}`);
      }
      // Server-side compression on 13/14: refused before anything is sent or any file is made.
      checkServerCompression(o.compression, conn.serverMajor);
      const identity = await this.#guard(this.#deps.identifySystem(conn, this.#walAbort.signal));
      this.#systemIdentifier = identity.systemId;
      this.#walSegmentSize = parseWalSegmentSize(await this.#guard(this.#deps.show(conn, 'wal_segment_size', this.#walAbort.signal)));
      const mode = await this.#guard(this.#deps.show(conn, 'data_directory_mode', this.#walAbort.signal));
      const modeBits = Number.parseInt(mode, 8);
      if (!Number.isInteger(modeBits)) throw new ProtocolError(`the server reported data_directory_mode ${JSON.stringify(mode)}, not an octal mode`);
      this.#groupReadable = (modeBits & 0o040) !== 0;

      if (priorManifest !== undefined) {
        // pg_basebackup: UPLOAD_MANIFEST on the backup connection, before BASE_BACKUP (INCREMENTAL).
        if (conn.serverMajor < 17) {
          throw new UnsupportedServerError(`incremental backups need PostgreSQL 17 or newer; this server runs ` +
            `${conn.parameters.get('server_version') ?? conn.serverVersionNum}: take a full backup instead`);
        }
        const upload = this.#deps.uploadManifest ?? ((c, m, sig) => uploadManifest(c, m, sig ? { signal: sig } : {}));
        await this.#guard(upload(conn, priorManifest, this.#walAbort.signal));
      }

      if (o.wal === 'stream') await this.#prepareWalStream(identity.systemId);

      this.#parser = new BaseBackupResponseParser(conn.serverMajor);
      const command = buildBaseBackupCommand(o, conn.serverMajor);
      this.#iter = conn.stream(command)[Symbol.asyncIterator]();
      const take = (this.#iter as Partial<BufferedMessages>).takeBuffered;
      if (typeof take === 'function') this.#takeBuffered = take;
      // Run the pump until the header is in: start row (WAL streaming starts there), tablespaces.
      while (this.#tablespaces.length === 0) {
        const ev = await this.#nextEvent();
        if (ev === undefined) throw new ProtocolError('the BASE_BACKUP response ended before the tablespace header');
      }
    } catch (err) {
      const failure = this.#failure ?? asError(err);
      // A server built without the method refuses BASE_BACKUP before its first row: say what to do.
      const error = mapServerCompressionError(failure, o.compression) ?? failure;
      this.destroy(error);
      await this.#cleanup;
      throw error;
    }
  }

  async #prepareWalStream(systemId: string): Promise<void> {
    const o = this.#opts;
    // Before anything else of the stream: a sink that creates files (a plain backup's pg_wal)
    // needs the server's group access first, and a local failure should cost no connection.
    if (o.walSink?.prepare) {
      await this.#guard(o.walSink.prepare({ groupReadable: this.#groupReadable, segmentSize: this.#walSegmentSize }));
    }
    const walConn = await this.#guard(this.#deps.connect(o.connection));
    this.#walConn = walConn;
    walConn.on('notice', this.#onWalNotice);
    // Like pg_basebackup's ReceiveXlogStream: both connections must reach the same cluster.
    const walIdentity = await this.#guard(this.#deps.identifySystem(walConn, this.#walAbort.signal));
    if (walIdentity.systemId !== systemId) {
      throw new ProtocolError(`the WAL streaming connection reached a different cluster (system identifier ${walIdentity.systemId}, expected ${systemId})`);
    }
    const plan = o.slot;
    if (plan.kind === 'temporary') {
      // pg_basebackup's name: unique per walsender, gone when the connection closes.
      this.#slotName = `pg_basebackup_${walConn.backendPid}`;
      await this.#guard(this.#deps.createPhysicalSlot(walConn, this.#slotName, { temporary: true, signal: this.#walAbort.signal }));
    } else if (plan.kind === 'create') {
      // Recorded before the command is sent: a failure or abort while it is in flight must still
      // drop the slot, since the server completes CREATE_REPLICATION_SLOT even if we hang up.
      this.#createdSlot = plan.name;
      this.#createdSlotConfirmed = false;
      await this.#guard(this.#deps.createPhysicalSlot(walConn, plan.name, { temporary: false, signal: this.#walAbort.signal }));
      this.#createdSlotConfirmed = true;
      this.#slotName = plan.name;
    } else if (plan.kind === 'existing') {
      this.#slotName = plan.name;
    }
    if (o.walSink === undefined) {
      const parent = o.tempDir ?? tmpdir();
      try {
        this.#spoolDir = await mkdtemp(join(parent, 'pgbb-wal-'));
        this.#spoolFile = join(this.#spoolDir, 'pg_wal.tar');
        // Opened here (async) rather than as a path stream, so the sink can fsync this handle.
        this.#spoolHandle = await open(this.#spoolFile, 'w', 0o600);
      } catch (err) {
        const path = this.#spoolFile ?? parent;
        throw new IoError(`could not create the WAL spool "${path}": ${asError(err).message}; ` +
          'set tempDir to a writable directory with room for the WAL of the backup', {
          cause: err, path, syscallCode: (err as NodeJS.ErrnoException).code,
        });
      }
    }
  }

  #startWalStream(startLsn: Lsn, timeline: number): void {
    const walConn = this.#walConn;
    if (!walConn || this.#wal) return;
    let sink: WalSink;
    if (this.#opts.walSink) sink = this.#opts.walSink;
    else {
      // pg_basebackup -Ft -Xstream's pg_wal.tar: segments by their final names plus .done markers.
      const handle = this.#spoolHandle!;
      // A permanent slot's restart_lsn follows the flush position we report, and the server may
      // then recycle that WAL: report it only once it is on disk (fsync of the spool), as
      // walmethods.c's tar method does. A temporary slot ends with the connection, so the
      // spool's durability does not matter to the server.
      const permanent = this.#opts.slot.kind === 'create' || this.#opts.slot.kind === 'existing';
      // autoClose off: the handle outlives end() so sync() still works; #closeSpool closes it.
      this.#spoolStream = handle.createWriteStream({ autoClose: false });
      sink = new TarWalSink({
        output: this.#spoolStream,
        markDone: true,
        ...(permanent ? { sync: () => handle.sync() } : {}),
      });
    }
    const stream = this.#deps.startWalStream({
      connection: walConn,
      startLsn: segmentStartOf(startLsn, this.#walSegmentSize),
      timeline,
      segmentSize: this.#walSegmentSize,
      systemIdentifier: this.#systemIdentifier,
      slotName: this.#slotName,
      statusIntervalMs: this.#opts.statusIntervalMs,
      sink,
      signal: this.#walAbort.signal,
    });
    const done = stream.done.catch((err: unknown) => {
      throw walFailure(err);
    });
    this.#wal = { setEndLsn: (lsn) => stream.setEndLsn(lsn), done };
    done.catch((err: unknown) => {
      this.destroy(asError(err));
    });
  }

  // ---------------------------------------------------------------------------------------
  // The pump

  /**
   * Rejects as soon as the session fails, whatever `p` does. Not `Promise.race` with
   * {@link #failed}: that promise stays pending for the whole backup, and every race adds a
   * reaction to it that keeps the race's settled promise (and so its value) reachable, so each
   * message of the response, with the socket chunk it views, would live until the session ended
   * (hundreds of MB of heap and GC time on a large backup).
   */
  #guard<T>(p: Promise<T>): Promise<T> {
    if (this.#failure) {
      p.catch(() => {});
      return Promise.reject(this.#failure);
    }
    return new Promise<T>((resolve, reject) => {
      this.#guards.add(reject);
      p.then((v) => {
        this.#guards.delete(reject);
        resolve(v);
      }, (err: unknown) => {
        this.#guards.delete(reject);
        reject(err);
      });
    });
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  /** The next response event, or undefined once the response is complete. Serialized. */
  #nextEvent(): Promise<BackupResponseEvent | undefined> {
    this.#pulling++;
    const run = this.#pumpBusy.then(() => this.#pull());
    this.#pumpBusy = run.then(() => {
      this.#pulling--;
    }, () => {
      this.#pulling--;
    });
    return run;
  }

  /**
   * The next response event if it is at hand without waiting (queued, or parsed from a message the
   * connection has buffered whole), undefined once the response is complete, {@link PENDING} when
   * the caller must await {@link #nextEvent}. Most CopyData messages of a backup arrive many to a
   * socket read, so this spares the promises of the pump for all but the first of them.
   */
  #nextEventNow(): BackupResponseEvent | undefined | typeof PENDING {
    if (this.#pulling > 0) return PENDING;
    for (;;) {
      const queued = this.#dequeue();
      if (queued !== NONE_QUEUED) return queued;
      if (this.#takeBuffered === undefined) return PENDING;
      let r: IteratorResult<unknown> | undefined;
      try {
        r = this.#takeBuffered();
      } catch (err) {
        this.#onResponseError(err);
        return undefined;
      }
      if (r === undefined) return PENDING;
      this.#accept(r);
    }
  }

  /**
   * The next queued event (observed), undefined once the response is complete, {@link NONE_QUEUED}
   * when a message must be read first. Throws the session's failure.
   */
  #dequeue(): BackupResponseEvent | undefined | typeof NONE_QUEUED {
    this.#throwIfFailed();
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      this.#observe(queued);
      return queued;
    }
    return this.#streamEnded ? undefined : NONE_QUEUED;
  }

  async #pull(): Promise<BackupResponseEvent | undefined> {
    for (;;) {
      const queued = this.#dequeue();
      if (queued !== NONE_QUEUED) return queued;
      let r: IteratorResult<unknown>;
      try {
        r = await this.#guard(this.#iter!.next());
      } catch (err) {
        this.#onResponseError(err);
        return undefined;
      }
      this.#accept(r);
    }
  }

  /** A message of the response (or its end) into the parser; its events go to the queue. */
  #accept(r: IteratorResult<unknown>): void {
    if (r.done) {
      this.#streamEnded = true;
      try {
        this.#parser!.finish();
      } catch (err) {
        this.destroy(asError(err));
        throw err;
      }
      return;
    }
    try {
      for (const ev of this.#parser!.push(r.value as Parameters<BaseBackupResponseParser['push']>[0])) this.#queue.push(ev);
    } catch (err) {
      this.destroy(asError(err));
      throw err;
    }
  }

  /**
   * The response iterator failed. Returns (the response is then over) only for a page checksum
   * failure reported in place of the final CommandComplete; throws anything else, the session destroyed.
   */
  #onResponseError(err: unknown): void {
    this.#throwIfFailed();
    if (err instanceof ServerError && err.sqlState === SqlState.DataCorrupted && this.#parser!.state === 'completion') {
      // basebackup.c: after the end row, ERRCODE_DATA_CORRUPTED in place of CommandComplete.
      // Every byte arrived; the backup is complete but untrustworthy.
      this.#streamEnded = true;
      this.#checksumError = new ChecksumFailureError(this.checksumFailures, this.#checksumTotal, { cause: err });
      return;
    }
    const error = err instanceof PgBackupError ? err : new ConnectionClosedError('the backup connection failed', { cause: err });
    this.destroy(error);
    throw error;
  }

  /** Side effects of every event, whoever pulled it. */
  #observe(ev: BackupResponseEvent): void {
    switch (ev.type) {
      case 'start':
        this.#startLsn = ev.lsn;
        this.#startTimeline = ev.timeline;
        if (this.#opts.wal === 'stream') this.#startWalStream(ev.lsn, ev.timeline);
        break;
      case 'tablespaces':
        this.#tablespaces = ev.tablespaces.map((t) => ({
          oid: t.oid,
          location: t.location,
          estimatedBytes: t.sizeKb === null ? undefined : t.sizeKb * 1024,
        }));
        this.#progress.setTablespaces(ev.tablespaces.map((t) => t.sizeKb));
        break;
      case 'archive-start': {
        this.#state = 'archives';
        const st = { bytes: 0, ended: false, discarded: false } as ArchiveState;
        st.archive = new BackupArchive({
          name: ev.name,
          index: ev.index,
          kind: 'tablespace',
          tablespace: this.#tablespaces[ev.index] ?? null,
          // basebackup_copy.c (15+) ends every archive with two zero blocks; 13/14 do not.
          serverTerminated: this.#serverMajor >= 15,
          controller: this.#serverArchiveController(st),
        });
        this.#current = st;
        this.#archivesSeen++;
        this.#progress.startArchive(ev.name, ev.index);
        break;
      }
      case 'archive-data':
        this.#current!.bytes += ev.data.length;
        if (this.#progress.addBytes(ev.data.length)) this.#emitProgress();
        break;
      case 'archive-end':
        this.#current!.ended = true;
        this.#archiveStats.push({ name: ev.name, bytes: this.#current!.bytes });
        if (this.#progress.endArchive()) this.#emitProgress();
        break;
      case 'progress':
        if (this.#serverMajor >= 15) this.#progress.serverProgress(ev.bytesDone);
        break;
      case 'manifest-start':
        this.#state = 'manifest';
        this.#manifestChunks = [];
        break;
      case 'manifest-data':
        // Views of socket chunks: copy, since the manifest is kept until the end.
        this.#manifestChunks!.push(Buffer.from(ev.data));
        break;
      case 'manifest-end':
        this.#manifest = Buffer.concat(this.#manifestChunks!);
        this.#manifestChunks = undefined;
        break;
      case 'end':
        this.#state = 'end-position';
        this.#endLsn = ev.lsn;
        this.#endTimeline = ev.timeline;
        this.#progress.finish();
        this.#emitProgress();
        this.#wal?.setEndLsn(ev.lsn);
        this.#endRow.resolve();
        break;
      case 'complete':
        break;
    }
  }

  #emitProgress(): void {
    this.emit('progress', this.#progress.snapshot());
  }

  #handleNotice(notice: ServerNotice): void {
    this.#opts.onNotice?.(notice);
    this.emit('notice', notice);
    const parsed = parseChecksumNotice(notice.message);
    if (!parsed) return;
    if (parsed.kind === 'total') {
      this.#checksumTotal = parsed.count;
      return;
    }
    let report = this.#checksumFiles.get(parsed.file);
    if (!report) {
      report = { file: parsed.file, blocks: [], count: 0 };
      this.#checksumFiles.set(parsed.file, report);
    }
    if (parsed.kind === 'block') {
      report.blocks.push(parsed.block);
      report.count = Math.max(report.count, report.blocks.length);
      this.emit('checksum-failure', { file: parsed.file, block: parsed.block });
    } else if (parsed.kind === 'file-total') {
      report.count = parsed.count;
      this.emit('checksum-failure', { file: parsed.file, count: parsed.count });
    }
  }

  #serverArchiveController(st: ArchiveState): ArchiveController {
    const session = this;
    return {
      async *open() {
        for (;;) {
          if (st.discarded) {
            throw new StateError(`archive ${st.archive.name} was discarded: the session moved on to the next archive before it was read`);
          }
          if (st.ended) break;
          let ev = session.#nextEventNow();
          if (ev === PENDING) ev = await session.#nextEvent();
          if (ev === undefined) throw new ProtocolError(`the BASE_BACKUP response ended inside archive ${st.archive.name}`);
          if (ev.type === 'archive-data') yield ev.data;
          else if (ev.type === 'archive-end') break;
          else if (ev.type !== 'progress') throw new ProtocolError(`unexpected ${ev.type} inside archive ${st.archive.name}`);
        }
        // 13/14 send no end-of-archive marker (pg_basebackup appends it for servers before 15).
        if (!st.archive.serverTerminated) yield Buffer.alloc(1024);
      },
      discard: () => session.#drainArchive(st),
      bytesReceived: () => st.bytes,
    };
  }

  async #drainArchive(st: ArchiveState): Promise<void> {
    while (!st.ended) {
      const ev = await this.#nextEvent();
      if (ev === undefined) throw new ProtocolError(`the BASE_BACKUP response ended inside archive ${st.archive.name}`);
      if (ev.type === 'archive-data') st.discarded = true;
    }
  }

  /** Pulls until the response is complete. Throws the checksum error, if any. */
  async #drainToEnd(): Promise<void> {
    if (this.#current) await this.#drainArchive(this.#current);
    while ((await this.#nextEvent()) !== undefined) {
      if (this.#current && !this.#current.ended) this.#current.discarded = true;
    }
    if (this.#checksumError) throw this.#checksumError;
  }

  async #drainToEndRow(): Promise<void> {
    while (this.#endLsn === undefined) {
      const ev = await this.#nextEvent();
      if (ev === undefined) break;
      if (ev.type === 'archive-data' && this.#current) this.#current.discarded = true;
    }
  }

  async #waitWal(): Promise<void> {
    if (this.#wal) await this.#guard(this.#wal.done);
    this.#throwIfFailed();
  }

  // ---------------------------------------------------------------------------------------
  // Public consumption API

  /**
   * The archives, one per tablespace in server order (user tablespaces first, `base.tar`
   * last), then `pg_wal.tar` when streamed WAL was spooled. Call once. Asking for the next
   * archive discards what is left of the current one.
   *
   * A page checksum failure does not end this iteration with an error (every byte arrived);
   * {@link result} rejects with `ChecksumFailureError`.
   * @throws StateError when called twice, or after {@link result}/{@link manifest} already drained the data.
   */
  archives(): AsyncIterableIterator<BackupArchive> {
    if (this.#archivesCalled) throw new StateError('archives() can be called only once per session');
    if (this.#archivesSeen > 0 || this.#resultPromise) {
      throw new StateError('archives() must be called before result() or manifest() consume the backup data');
    }
    this.#archivesCalled = true;
    this.#consumerActive = true;
    this.#consumerIdle = deferred<void>();
    return this.#archiveIterator();
  }

  async *#archiveIterator(): AsyncGenerator<BackupArchive, void, undefined> {
    try {
      for (;;) {
        if (this.#current) await this.#drainArchive(this.#current);
        let next: BackupArchive | undefined;
        for (;;) {
          const ev = await this.#nextEvent();
          if (ev === undefined || ev.type === 'end') break;
          if (ev.type === 'archive-start') {
            next = this.#current!.archive;
            break;
          }
        }
        if (!next) break;
        yield next;
      }
      if (this.#spoolFile) {
        await this.#drainToEndRow();
        await this.#waitWal();
        yield await this.#spoolArchive();
      }
      // Everything arrived: release the connections now rather than wait for result()/close().
      // A checksum failure is for result() to report.
      await this.#finishSession();
    } finally {
      this.#consumerActive = false;
      this.#consumerIdle.resolve();
    }
  }

  async #closeSpool(): Promise<void> {
    const handle = this.#spoolHandle;
    this.#spoolHandle = undefined;
    // The stream holds a reference on the handle until destroyed: close() would wait for it.
    this.#spoolStream?.destroy();
    this.#spoolStream = undefined;
    await handle?.close().catch(() => {});
  }

  async #spoolArchive(): Promise<BackupArchive> {
    await this.#closeSpool();
    const file = this.#spoolFile!;
    const size = (await stat(file)).size;
    this.#walBytes = size;
    this.#archiveStats.push({ name: 'pg_wal.tar', bytes: size });
    let stream: ReturnType<typeof createReadStream> | undefined;
    const controller: ArchiveController = {
      async *open() {
        stream = createReadStream(file, { highWaterMark: 256 * 1024 });
        try {
          for await (const chunk of stream) yield chunk as Buffer;
        } finally {
          stream.destroy();
        }
      },
      async discard() {
        stream?.destroy();
      },
      bytesReceived: () => size,
    };
    return new BackupArchive({
      name: 'pg_wal.tar', index: this.#archiveStats.length - 1, kind: 'wal', tablespace: null, serverTerminated: true, controller,
    });
  }

  async #waitForConsumer(until?: Promise<void>): Promise<void> {
    if (!this.#consumerActive) return;
    await Promise.race([this.#consumerIdle.promise, this.#failed.promise, ...(until ? [until] : [])]);
  }

  /**
   * The backup manifest (JSON bytes), or undefined with `manifest: false`. While
   * {@link archives} is being iterated this waits for the manifest to pass by; otherwise
   * it reads (and discards) the archives up to it.
   */
  async manifest(): Promise<Buffer | undefined> {
    await this.#waitForConsumer(this.#endRow.promise);
    this.#throwIfFailed();
    if (this.#endLsn === undefined) await this.#drainToEndRow();
    this.#throwIfFailed();
    return this.#manifest;
  }

  /**
   * Waits for the end of the backup: the end position, the final CommandComplete, the end
   * of the WAL stream. While {@link archives} is being iterated it waits for that iteration
   * to finish; otherwise it reads and discards what is left.
   * @throws ChecksumFailureError when the server reported page checksum failures (the data was complete).
   * @throws AbortError after `signal`, {@link close} or {@link destroy}.
   */
  result(): Promise<BackupResult> {
    this.#resultPromise ??= this.#computeResult();
    return this.#resultPromise;
  }

  async #computeResult(): Promise<BackupResult> {
    await this.#waitForConsumer();
    this.#throwIfFailed();
    const checksumError = await this.#finishSession();
    if (checksumError) throw checksumError;
    return {
      startLsn: this.#startLsn!,
      startTimeline: this.#startTimeline,
      endLsn: this.#endLsn!,
      endTimeline: this.#endTimeline,
      manifest: this.#manifest,
      stats: {
        archives: this.#archiveStats.map((a) => ({ ...a })),
        totalBytes: this.#archiveStats.filter((a) => a.name !== 'pg_wal.tar' || this.#spoolFile === undefined)
          .reduce((n, a) => n + a.bytes, 0),
        walBytes: this.#walBytes,
        durationMs: this.#durationMs ?? performance.now() - this.#startedAt,
      },
      checksumFailures: this.checksumFailures,
    };
  }

  /**
   * Reads the rest of the response, waits for the WAL stream and closes the connections. Page
   * checksum failures do not stop this: the data is complete, only untrustworthy, so the session
   * ends normally (a slot created with createSlot is kept, as after success) and the error is
   * returned for the caller to report.
   */
  async #finishSession(): Promise<ChecksumFailureError | undefined> {
    let checksumError: ChecksumFailureError | undefined;
    try {
      await this.#drainToEnd();
    } catch (err) {
      if (!(err instanceof ChecksumFailureError)) throw err;
      checksumError = err;
    }
    await this.#waitWal();
    await this.#finalize();
    return checksumError;
  }

  /** Success: close both connections, remove the spool. Idempotent. */
  #finalize(): Promise<void> {
    this.#finalized ??= (async () => {
      this.#durationMs = performance.now() - this.#startedAt;
      this.#state = 'done';
      this.#opts.signal?.removeEventListener('abort', this.#onAbort);
      await Promise.allSettled([this.#conn?.close(), this.#walConn?.close()]);
      await this.#closeSpool();
      if (this.#spoolDir) await rm(this.#spoolDir, { recursive: true, force: true });
    })();
    return this.#finalized;
  }

  // ---------------------------------------------------------------------------------------
  // Ending

  /**
   * Stop at once: both connections are destroyed, every pending or later call rejects with
   * `error` (default: an AbortError), a slot this session created with `createSlot` is
   * dropped, the WAL spool is removed. Idempotent; does nothing after success.
   */
  destroy(error?: Error): void {
    if (this.#failure || this.#state === 'done') return;
    const err = error ?? new AbortError('the backup session was destroyed');
    this.#failure = err;
    this.#state = 'failed';
    this.#failed.reject(err);
    for (const reject of this.#guards) reject(err);
    this.#guards.clear();
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#walAbort.abort(err);
    this.#conn?.destroy(err);
    this.#walConn?.destroy(err);
    this.#endRow.reject(err);
    this.#cleanup = this.#cleanupAfterFailure();
  }

  async #cleanupAfterFailure(): Promise<void> {
    // Let the WAL stream settle (it was told to stop) before the files go.
    if (this.#wal) await Promise.race([this.#wal.done.catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (this.#createdSlot !== undefined) await this.#dropCreatedSlot(this.#createdSlot);
    await this.#closeSpool();
    if (this.#spoolDir) await rm(this.#spoolDir, { recursive: true, force: true }).catch(() => {});
  }

  async #dropCreatedSlot(name: string): Promise<void> {
    const connOpts: ConnectionOptions = { ...this.#opts.connection };
    delete connOpts.signal;
    connOpts.signal = AbortSignal.timeout(30_000);
    let conn: ReplicationConnectionApi | undefined;
    try {
      conn = await this.#deps.connect(connOpts);
      for (let attempt = 1; ; attempt++) {
        try {
          // WAIT: the walsender that used the slot may still be exiting.
          await this.#deps.dropSlot(conn, name, { wait: true, signal: connOpts.signal });
          break;
        } catch (err) {
          if (!(err instanceof ServerError && err.sqlState === SqlState.UndefinedObject)) throw err;
          // Not there (yet). If our CREATE was cut off in flight, the old walsender may still be
          // running it: look again for a little while; a confirmed slot that is gone was dropped.
          if (this.#createdSlotConfirmed || attempt >= 15) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } catch (err) {
      this.emit('warning', new PgBackupError('ERR_PGBB_CONNECTION',
        `could not drop the replication slot "${name}" created for this failed backup: drop it by hand ` +
        `(SELECT pg_drop_replication_slot('${name}')) or it will keep WAL on the server`, { cause: err }));
    } finally {
      await conn?.close().catch(() => {});
    }
  }

  /**
   * For a caller that threw a completed backup away afterwards (runBackup failing while it
   * writes the manifest or syncs the files): drop the slot this session created with
   * `createSlot`, which success keeps. Does nothing before completion (a failure drops it
   * anyway) or without such a slot. Never rejects; a slot it cannot drop is a `warning` event.
   */
  async discardCreatedSlot(): Promise<void> {
    const name = this.#createdSlot;
    if (this.#state !== 'done' || name === undefined) return;
    this.#createdSlot = undefined;
    await this.#dropCreatedSlot(name);
  }

  /**
   * End the session. Before the backup completed this aborts it cleanly (as {@link destroy}
   * with an AbortError) and waits for the cleanup; after completion it only releases the
   * connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state === 'done') {
      await this.#finalize();
      return;
    }
    if (!this.#failure && this.#streamEnded && this.#endLsn !== undefined) {
      // Everything arrived; only the WAL stream may be running: let it finish properly.
      try {
        await this.#waitWal();
        await this.#finalize();
        return;
      } catch {
        // fall through to destroy
      }
    }
    this.destroy(new AbortError('the backup session was closed before the backup completed'));
    await this.#cleanup;
  }

  /** `await using session = await startBackup(...)`: {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Start a streamed base backup: connect, check the server (13–18), run IDENTIFY_SYSTEM and
 * the SHOWs the backup needs, prepare WAL streaming (a second connection and a slot), send
 * BASE_BACKUP, and resolve once the server has taken its checkpoint and listed the
 * tablespaces.
 *
 * @throws ConfigError for invalid options; UnsupportedServerError; ServerError (e.g. no
 *   REPLICATION privilege, slot exists); ConnectionError; AbortError.
 * @example
 * ```ts
 * const session = await startBackup({ connection: { host: 'db', user: 'replicator' }, wal: 'fetch' });
 * const label = `backup from ${formatLsn(session.startLsn)}`;
 * const names: string[] = [];
 * for await (const archive of session.archives()) {
 *   for await (const entry of archive.entries()) names.push(`${archive.name}:${entry.header.name}`);
 * }
 * await session.result();
 * ```
 */
export async function startBackup(options: BaseBackupOptions = {}): Promise<BackupSession> {
  return startBackupWith(defaultBackupDeps, options);
}

/** @internal {@link startBackup} with injected dependencies (tests). */
export async function startBackupWith(deps: BackupDeps, options: BaseBackupOptions = {}): Promise<BackupSession> {
  const resolved = resolveBaseBackupOptions(options);
  const session = new BackupSession(resolved, deps);
  try {
    await session.start();
  } catch (err) {
    // summarize_wal off, a manifest of another cluster, missing WAL summaries: say what to do.
    if (resolved.incrementalManifest !== undefined && err instanceof ServerError) throw withIncrementalAdvice(err);
    throw err;
  }
  return session;
}

/**
 * The WAL stream's error as the backup reports it. The walsender terminated (SQLSTATE class 57:
 * pg_terminate_backend, shutdown), its connection lost or garbled: a WalStreamError that says the
 * WAL connection failed, the original as its cause. Errors that already say what to do (a
 * missing slot at START_REPLICATION, a full disk, an abort) pass unchanged.
 */
function walFailure(err: unknown): Error {
  const e = asError(err);
  const interrupted = (e instanceof ServerError && e.sqlState.startsWith('57')) || e instanceof ConnectionClosedError ||
    e instanceof ProtocolError;
  if (!interrupted) return e;
  return new WalStreamError(`the WAL streaming connection of the backup failed (${e.message}): the backup needs all WAL ` +
    'from its start to its end, so it was abandoned; take it again', { cause: e });
}

/** The prior backup's manifest for an incremental backup: the bytes given, or the file read. */
async function readPriorManifest(source: Buffer | string): Promise<Buffer> {
  if (Buffer.isBuffer(source)) return source;
  try {
    return await readFile(source);
  } catch (err) {
    throw new ConfigError(`cannot read the prior backup's manifest ${JSON.stringify(source)} for the incremental backup ` +
      `(${(err as NodeJS.ErrnoException).code ?? String(err)}): give the path of its backup_manifest file`, { cause: err });
  }
}
