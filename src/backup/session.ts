/**
 * A streamed base backup: {@link startBackup} runs BASE_BACKUP and hands back a
 * {@link BackupSession} once the server has taken its checkpoint and listed the
 * tablespaces; the caller then pulls the archives (backpressure reaches the socket), the
 * manifest and the result.
 *
 * The session owns the BASE_BACKUP side: the backup connection, its response (read by one
 * {@link ResponsePump}, only when a consumer asks for more), the archives, progress and phases.
 * With `wal: 'stream'` a {@link WalCompanion} runs the WAL stream beside it on a second
 * connection. Neither touches the file system: the WAL spool is a sink of src/wal.
 * Why one file of this size: the public session (its state machine, archives, manifest, result, close and
 * destroy); the reply pump, transfer, WAL companion, phases and failure handling are in their own files.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { ReplicationConnectionApi, ServerNotice } from '../connection/types.js';
import {
  AbortError,
  type ChecksumFailureError,
  ConnectionClosedError,
  ProtocolError,
  ServerError,
  StateError,
  UnsupportedServerError,
  type ChecksumFailureReport,
} from '../errors.js';
import { readPriorManifest } from '../manifest/prior.js';
import { uploadManifest, withIncrementalAdvice } from '../replication/commands.js';
import type { Lsn } from '../lsn.js';
import { parseWalSegmentSize } from '../wal/segments.js';
import type { BackupArchive, BackupTablespace } from './archive.js';
import { ChecksumReports } from './checksums.js';
import { buildBaseBackupCommand } from './command.js';
import { checkServerCompression, mapServerCompressionError } from '../compress/server.js';
import { defaultBackupDeps } from './default-deps.js';
import type { BackupDeps } from './deps.js';
import type { BackupPhase, BackupPhaseEvent, BackupProgress, BackupSessionEventMap } from './events.js';
import { asError, deferred, FailureLatch } from './failure.js';
import { resolveBaseBackupOptions, type BaseBackupOptions, type ResolvedBaseBackupOptions } from './options.js';
import { PhaseClock } from './phases.js';
import type { BackupResult, BackupSessionState } from './result.js';
import { ProgressTracker } from './progress.js';
import { BaseBackupResponseParser } from './response.js';
import { BackupTransfer } from './transfer.js';
import { WalCompanion } from './wal-companion.js';

// The supported range is the one server-version policy (src/server-version.ts), re-exported here.
import { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR } from '../server-version.js';
export { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR };

export type { BackupResult, BackupSessionState, BackupStats } from './result.js';

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
  readonly #latch = new FailureLatch();
  /** Aborted when the session fails: stops the commands in flight and the WAL stream. */
  readonly #abort = new AbortController();
  readonly #phases = new PhaseClock();
  readonly #progress: ProgressTracker;
  readonly #checksums = new ChecksumReports();
  #conn: ReplicationConnectionApi | undefined;
  #wal: WalCompanion | undefined;
  #transfer: BackupTransfer | undefined;
  #done = false;
  #checksumError: ChecksumFailureError | undefined;
  #systemIdentifier = '';
  #serverVersionNum = 0;
  #walSegmentSize = 0;
  #groupReadable = false;
  #walBytes: number | undefined;

  #archivesCalled = false;
  #consumerActive = false;
  #consumerIdle = deferred<void>();
  #resultPromise: Promise<BackupResult> | undefined;
  #finalized: Promise<void> | undefined;
  #cleanup: Promise<void> | undefined;
  readonly #onAbort = (): void => {
    const reason: unknown = this.#opts.signal?.reason;
    // Say why when the caller did ("interrupted by SIGINT" from the CLI); a bare abort() gives
    // a DOMException named AbortError, which adds nothing.
    const why = (reason instanceof Error && reason.name !== 'AbortError') || reason instanceof AbortError ? `: ${reason.message}` : '';
    this.destroy(new AbortError(`the backup was aborted${why}`, { cause: reason }));
  };
  readonly #onNotice = (notice: ServerNotice): void => {
    this.#opts.onNotice?.(notice);
    this.emit('notice', notice);
    const failure = this.#checksums.note(notice.message);
    if (failure) this.emit('checksum-failure', failure);
  };
  readonly #onClose = (error: Error | undefined): void => {
    if (this.#done || this.#latch.failure) return;
    // The pump notices too, but only when someone pulls: fail pending and future calls now.
    if (!this.#transfer?.ended) this.destroy(error ?? new ConnectionClosedError('the server closed the backup connection'));
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
    return this.#transfer!.startLsn!;
  }
  /** The timeline of {@link startLsn}. */
  get startTimeline(): number {
    return this.#transfer?.startTimeline ?? 0;
  }
  /** The end position, once the server has sent it. */
  get endLsn(): Lsn | undefined {
    return this.#transfer?.endLsn;
  }
  /** Tablespaces in server order: user tablespaces first, the data directory last. */
  get tablespaces(): readonly BackupTablespace[] {
    return this.#transfer?.tablespaces ?? [];
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
    return this.#wal?.slotName;
  }
  /** The lifecycle state. */
  get state(): BackupSessionState {
    if (this.#latch.failure) return 'failed';
    if (this.#done) return 'done';
    return this.#transfer?.state ?? 'started';
  }
  /** The phase the backup is in (`data` once {@link startBackup} resolved). */
  get phase(): BackupPhase {
    return this.#phases.phase ?? 'checkpoint';
  }
  /** Current progress (the same object shape as the `progress` events). */
  get progress(): BackupProgress {
    return this.#progress.snapshot();
  }
  /** Checksum failures reported so far. */
  get checksumFailures(): ChecksumFailureReport[] {
    return this.#checksums.reports();
  }

  // ---------------------------------------------------------------------------------------
  // Start

  /** @internal Connects, checks the server, prepares WAL streaming and starts BASE_BACKUP. */
  async start(): Promise<void> {
    const o = this.#opts;
    const signal = o.signal;
    if (signal?.aborted) throw new AbortError('the backup was aborted before it started', { cause: signal.reason });
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    const stop = this.#abort.signal;
    const guard = <T>(p: Promise<T>): Promise<T> => this.#latch.guard(p);
    try {
      // Incremental (17+): read the prior manifest before connecting, so a bad path costs nothing.
      const priorManifest = o.incrementalManifest === undefined ? undefined : await readPriorManifest(o.incrementalManifest);
      const conn = await guard(this.#deps.connect(o.connection));
      this.#conn = conn;
      conn.on('notice', this.#onNotice);
      conn.on('close', this.#onClose);
      this.#serverVersionNum = conn.serverVersionNum;
      if (conn.serverMajor < MIN_SERVER_MAJOR || conn.serverMajor > MAX_SERVER_MAJOR) {
        throw new UnsupportedServerError(
          `the server runs PostgreSQL ${conn.parameters.get('server_version') ?? conn.serverVersionNum}, ` +
            `but pg-basebackup supports PostgreSQL ${MIN_SERVER_MAJOR} to ${MAX_SERVER_MAJOR}`,
        );
      }
      // Server-side compression on 13/14: refused before anything is sent or any file is made.
      checkServerCompression(o.compression, conn.serverMajor);
      const identity = await guard(this.#deps.identifySystem(conn, stop));
      this.#systemIdentifier = identity.systemId;
      this.#walSegmentSize = parseWalSegmentSize(await guard(this.#deps.show(conn, 'wal_segment_size', stop)));
      const mode = await guard(this.#deps.show(conn, 'data_directory_mode', stop));
      const modeBits = Number.parseInt(mode, 8);
      if (!Number.isInteger(modeBits))
        throw new ProtocolError(`the server reported data_directory_mode ${JSON.stringify(mode)}, not an octal mode`);
      this.#groupReadable = (modeBits & 0o040) !== 0;

      if (priorManifest !== undefined) {
        // pg_basebackup: UPLOAD_MANIFEST on the backup connection, before BASE_BACKUP (INCREMENTAL).
        if (conn.serverMajor < 17) {
          throw new UnsupportedServerError(
            `incremental backups need PostgreSQL 17 or newer; this server runs ` +
              `${conn.parameters.get('server_version') ?? conn.serverVersionNum}: take a full backup instead`,
          );
        }
        const upload = this.#deps.uploadManifest ?? ((c, m, sig) => uploadManifest(c, m, sig ? { signal: sig } : {}));
        await guard(upload(conn, priorManifest, stop));
      }

      if (o.wal === 'stream') {
        this.#wal = new WalCompanion({
          options: o,
          deps: this.#deps,
          latch: this.#latch,
          signal: stop,
          onNotice: (notice) => {
            this.#opts.onNotice?.(notice);
            this.emit('notice', notice);
          },
          onWarning: (warning) => this.emit('warning', warning),
          onFailure: (error) => this.destroy(error),
          onWalBytes: (n) => {
            if (this.#progress.addWalBytes(n)) this.#emitProgress();
          },
        });
        await this.#wal.prepare({ systemId: identity.systemId, groupReadable: this.#groupReadable, segmentSize: this.#walSegmentSize });
      }

      const iter = conn.stream(buildBaseBackupCommand(o, conn.serverMajor))[Symbol.asyncIterator]();
      this.#transfer = new BackupTransfer(iter, new BaseBackupResponseParser(conn.serverMajor), conn.serverMajor, {
        latch: this.#latch,
        fail: (error) => this.destroy(error),
        progress: this.#progress,
        emitProgress: () => this.#emitProgress(),
        enterPhase: (phase) => this.#enterPhase(phase),
        streamsWal: this.#wal !== undefined,
        onStart: (lsn, timeline) => this.#wal?.start(lsn, timeline),
        onEnd: (lsn) => this.#wal?.setEndLsn(lsn),
      });
      // The server now takes its checkpoint: with 'spread' this is the long, silent wait.
      this.#enterPhase('checkpoint');
      // Run the pump until the header is in: start row (WAL streaming starts there), tablespaces.
      await this.#transfer.readHeader();
    } catch (err) {
      const failure = this.#latch.failure ?? asError(err);
      // A server built without the method refuses BASE_BACKUP before its first row: say what to do.
      const error = mapServerCompressionError(failure, o.compression) ?? failure;
      this.destroy(error);
      await this.#cleanup;
      throw error;
    }
  }

  #enterPhase(phase: BackupPhase): void {
    if (!this.#phases.enter(phase)) return;
    this.#progress.setPhase(phase);
    const t = this.#transfer;
    const event: BackupPhaseEvent = {
      phase,
      checkpoint: this.#opts.checkpoint,
      ...(t?.startLsn !== undefined ? { startLsn: t.startLsn, timeline: t.startTimeline } : {}),
    };
    this.#opts.onPhase?.(event);
    this.emit('phase', event);
  }

  #emitProgress(): void {
    this.emit('progress', this.#progress.snapshot());
  }

  async #waitWal(): Promise<void> {
    if (this.#wal) await this.#wal.wait();
    this.#latch.throwIfFailed();
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
    if ((this.#transfer?.archivesSeen ?? 0) > 0 || this.#resultPromise) {
      throw new StateError('archives() must be called before result() or manifest() consume the backup data');
    }
    this.#archivesCalled = true;
    this.#consumerActive = true;
    this.#consumerIdle = deferred<void>();
    return this.#archiveIterator();
  }

  async *#archiveIterator(): AsyncGenerator<BackupArchive, void, undefined> {
    try {
      const transfer = this.#transfer!;
      for (let next = await transfer.nextArchive(); next; next = await transfer.nextArchive()) yield next;
      if (this.#wal?.spool) {
        await transfer.drainToEndRow();
        await this.#waitWal();
        const stats = transfer.archiveStats;
        const spooled = await this.#wal.spooledArchive(stats.length, this.#progress, () => this.#emitProgress());
        this.#walBytes = spooled.bytes;
        stats.push({ name: 'pg_wal.tar', bytes: spooled.bytes });
        yield spooled.archive;
      }
      // Everything arrived: release the connections now rather than wait for result()/close().
      // A checksum failure is for result() to report.
      await this.#finishSession();
    } finally {
      this.#consumerActive = false;
      this.#consumerIdle.resolve();
    }
  }

  async #waitForConsumer(until?: Promise<void>): Promise<void> {
    if (!this.#consumerActive) return;
    await Promise.race([this.#consumerIdle.promise, this.#latch.failed, ...(until ? [until] : [])]);
  }

  /**
   * The backup manifest (JSON bytes), or undefined with `manifest: false`. While
   * {@link archives} is being iterated this waits for the manifest to pass by; otherwise
   * it reads (and discards) the archives up to it.
   */
  async manifest(): Promise<Buffer | undefined> {
    const t = this.#transfer!;
    await this.#waitForConsumer(t.endRow);
    this.#latch.throwIfFailed();
    if (t.endLsn === undefined) await t.drainToEndRow();
    this.#latch.throwIfFailed();
    return t.manifest;
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
    this.#latch.throwIfFailed();
    const checksumError = await this.#finishSession();
    if (checksumError) throw checksumError;
    const t = this.#transfer!;
    return {
      startLsn: t.startLsn!,
      startTimeline: t.startTimeline,
      endLsn: t.endLsn!,
      endTimeline: t.endTimeline,
      manifest: t.manifest,
      stats: {
        archives: t.archiveStats.map((a) => ({ ...a })),
        totalBytes: t.archiveStats.filter((a) => a.name !== 'pg_wal.tar' || this.#walBytes === undefined).reduce((n, a) => n + a.bytes, 0),
        walBytes: this.#walBytes,
        phases: this.#phases.durations(),
        durationMs: this.#phases.totalMs(),
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
    const t = this.#transfer!;
    await t.drainToEnd();
    // The server ended with ERRCODE_DATA_CORRUPTED: every byte arrived, but pages are damaged.
    if (t.corruption) checksumError = this.#checksumError ??= this.#checksums.error(t.corruption);
    await this.#waitWal();
    if (this.#opts.manifest) this.#enterPhase('manifest');
    await this.#finalize();
    return checksumError;
  }

  /** Success: the final progress report, `done`, both connections closed, the spool removed. Idempotent. */
  #finalize(): Promise<void> {
    this.#finalized ??= (async () => {
      this.#progress.finish();
      this.#enterPhase('done');
      // The final report: finished, in the 'done' phase, the same as `progress` from now on.
      this.#emitProgress();
      this.#done = true;
      this.#opts.signal?.removeEventListener('abort', this.#onAbort);
      await Promise.allSettled([this.#conn?.close(), this.#wal?.close()]);
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
    if (this.#latch.failure || this.#done) return;
    const err = error ?? new AbortError('the backup session was destroyed');
    this.#latch.fail(err);
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#abort.abort(err);
    this.#conn?.destroy(err);
    this.#wal?.destroy(err);
    this.#transfer?.fail(err);
    this.#cleanup = this.#wal?.cleanupAfterFailure() ?? Promise.resolve();
  }

  /**
   * For a caller that threw a completed backup away afterwards (runBackup failing while it
   * writes the manifest or syncs the files): drop the slot this session created with
   * `createSlot`, which success keeps. Does nothing before completion (a failure drops it
   * anyway) or without such a slot. Never rejects; a slot it cannot drop is a `warning` event.
   */
  async discardCreatedSlot(): Promise<void> {
    if (!this.#done) return;
    await this.#wal?.discardCreatedSlot();
  }

  /**
   * End the session. Before the backup completed this aborts it cleanly (as {@link destroy}
   * with an AbortError) and waits for the cleanup; after completion it only releases the
   * connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#done) {
      await this.#finalize();
      return;
    }
    if (!this.#latch.failure && this.#transfer?.ended && this.#transfer.endLsn !== undefined) {
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
 * tablespaces. That checkpoint can take minutes with the default `checkpoint: 'spread'`:
 * the `onPhase` option reports `checkpoint` when BASE_BACKUP is sent and `data` once it completed.
 *
 * @throws ConfigError for invalid options; UnsupportedServerError; ServerError (e.g. no
 *   REPLICATION privilege, slot exists); ConnectionError; AbortError.
 * @example
 * ```ts
 * const session = await startBackup({
 *   connection: { host: 'db', user: 'replicator' },
 *   wal: 'fetch',
 *   onPhase: (e) => { if (e.phase === 'checkpoint') console.error('waiting for checkpoint to complete'); },
 * });
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
