/**
 * The WAL side of a `wal: 'stream'` backup, beside the BASE_BACKUP pump: a second replication
 * connection to the same cluster, the slot plan (temporary, created, existing, none), the WAL
 * stream started at the backup's start position and stopped at its end position, and the
 * destination of the WAL: the caller's sink, or a {@link SpoolWalSink} the session yields as
 * `pg_wal.tar`. It does no file I/O itself (the spool is a WAL sink of src/wal).
 *
 * Lifecycle: `prepare()` (before BASE_BACKUP) → `start()` (start position) → `setEndLsn()` (end
 * position) → `wait()`; then `close()` on success, or `destroy()` + `cleanupAfterFailure()`.
 * @module
 */
import type { ConnectionOptions, ReplicationConnectionApi, ServerNotice } from '../connection/types.js';
import { ConnectionClosedError, PgBackupError, ProtocolError, ServerError, WalStreamError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { SqlState } from '../protocol/codes.js';
import { segmentStartOf } from '../wal/segments.js';
import type { WalSink } from '../wal/sink.js';
import { SpoolWalSink } from '../wal/spool-sink.js';
import { BackupArchive, type ArchiveController } from './archive.js';
import type { BackupDeps, BackupWalStream } from './deps.js';
import { asError, type FailureLatch } from './failure.js';
import type { ResolvedBaseBackupOptions } from './options.js';
import type { ProgressTracker } from './progress.js';

/** What the companion needs from its session. @internal */
export interface WalCompanionInit {
  options: ResolvedBaseBackupOptions;
  deps: BackupDeps;
  /** The session's failure: pending calls reject with it. */
  latch: FailureLatch;
  /** Aborted when the session fails: stops the commands and the stream. */
  signal: AbortSignal;
  /** A notice from the WAL connection. */
  onNotice(notice: ServerNotice): void;
  /** Something that does not fail the backup (a slot that could not be dropped). */
  onWarning(warning: Error): void;
  /** The WAL stream failed: the backup fails with this error. */
  onFailure(error: Error): void;
  /** WAL bytes written into the sink, for progress. */
  onWalBytes(bytes: number): void;
}

/** What the companion learned from the backup connection, before BASE_BACKUP. @internal */
export interface WalCompanionServer {
  systemId: string;
  groupReadable: boolean;
  segmentSize: number;
}

/** The WAL stream of a backup, on its own connection. @internal */
export class WalCompanion {
  readonly #init: WalCompanionInit;
  #server: WalCompanionServer | undefined;
  #conn: ReplicationConnectionApi | undefined;
  #stream: BackupWalStream | undefined;
  #spool: SpoolWalSink | undefined;
  #slotName: string | undefined;
  /** A slot made with `createSlot`: kept after success, dropped after a failure. */
  #createdSlot: string | undefined;
  #createdSlotConfirmed = false;

  constructor(init: WalCompanionInit) {
    this.#init = init;
  }

  /** The replication slot the WAL stream uses, if any. */
  get slotName(): string | undefined {
    return this.#slotName;
  }

  /** The spool, when WAL is spooled to be yielded as `pg_wal.tar` (no `walSink` given). */
  get spool(): SpoolWalSink | undefined {
    return this.#spool;
  }

  #guard<T>(p: Promise<T>): Promise<T> {
    return this.#init.latch.guard(p);
  }

  /** Prepares the sink, connects, checks the cluster, sets up the slot, creates the spool. */
  async prepare(server: WalCompanionServer): Promise<void> {
    const { options: o, deps, signal } = this.#init;
    this.#server = server;
    // Before anything else of the stream: a sink that creates files (a plain backup's pg_wal)
    // needs the server's group access first, and a local failure should cost no connection.
    if (o.walSink?.prepare) {
      await this.#guard(o.walSink.prepare({ groupReadable: server.groupReadable, segmentSize: server.segmentSize }));
    }
    const conn = await this.#guard(deps.connect(o.connection));
    this.#conn = conn;
    conn.on('notice', this.#init.onNotice);
    // Like pg_basebackup's ReceiveXlogStream: both connections must reach the same cluster.
    const identity = await this.#guard(deps.identifySystem(conn, signal));
    if (identity.systemId !== server.systemId) {
      throw new ProtocolError(
        `the WAL streaming connection reached a different cluster (system identifier ${identity.systemId}, expected ${server.systemId})`,
      );
    }
    const plan = o.slot;
    if (plan.kind === 'temporary') {
      // pg_basebackup's name: unique per walsender, gone when the connection closes.
      this.#slotName = `pg_basebackup_${conn.backendPid}`;
      await this.#guard(deps.createPhysicalSlot(conn, this.#slotName, { temporary: true, signal }));
    } else if (plan.kind === 'create') {
      // Recorded before the command is sent: a failure or abort while it is in flight must still
      // drop the slot, since the server completes CREATE_REPLICATION_SLOT even if we hang up.
      this.#createdSlot = plan.name;
      this.#createdSlotConfirmed = false;
      await this.#guard(deps.createPhysicalSlot(conn, plan.name, { temporary: false, signal }));
      this.#createdSlotConfirmed = true;
      this.#slotName = plan.name;
    } else if (plan.kind === 'existing') {
      this.#slotName = plan.name;
    }
    if (o.walSink === undefined) {
      // pg_basebackup -Ft -Xstream's pg_wal.tar. A permanent slot's restart_lsn follows the flush
      // position we report: report it only once it is on disk.
      this.#spool = new SpoolWalSink({ tempDir: o.tempDir, durableFlush: plan.kind === 'create' || plan.kind === 'existing' });
      await this.#spool.prepare();
    }
  }

  /** Starts streaming from the segment holding the backup's start position. Once. */
  start(startLsn: Lsn, timeline: number): void {
    const conn = this.#conn;
    const server = this.#server;
    if (!conn || !server || this.#stream) return;
    const { options: o, deps, signal } = this.#init;
    const stream = deps.startWalStream({
      connection: conn,
      startLsn: segmentStartOf(startLsn, server.segmentSize),
      timeline,
      segmentSize: server.segmentSize,
      systemIdentifier: server.systemId,
      slotName: this.#slotName,
      statusIntervalMs: o.statusIntervalMs,
      sink: countingSink((o.walSink ?? this.#spool)!, this.#init.onWalBytes),
      signal,
    });
    const done = stream.done.catch((err: unknown) => {
      throw walFailure(err);
    });
    this.#stream = { setEndLsn: (lsn) => stream.setEndLsn(lsn), done };
    done.catch((err: unknown) => {
      this.#init.onFailure(asError(err));
    });
  }

  /** The backup's end position: the stream stops once it has written WAL up to it. */
  setEndLsn(lsn: Lsn): void {
    this.#stream?.setEndLsn(lsn);
  }

  /** Waits for the stream (if it started) to finish; rejects with the session's failure. */
  async wait(): Promise<void> {
    if (this.#stream) await this.#guard(this.#stream.done);
    this.#init.latch.throwIfFailed();
  }

  /**
   * The spooled `pg_wal.tar` as the backup's archive number `index` (after {@link wait}).
   * Handing it over is reported to `progress` (`report` when a report is due).
   */
  async spooledArchive(index: number, progress: ProgressTracker, report: () => void): Promise<{ archive: BackupArchive; bytes: number }> {
    const spool = this.#spool!;
    const bytes = await spool.endWriting();
    const controller: ArchiveController = {
      async *open() {
        progress.startWalArchive('pg_wal.tar', index);
        try {
          for await (const chunk of spool.read()) {
            yield chunk;
            if (progress.addWalArchiveBytes(chunk.length)) report();
          }
        } finally {
          progress.endWalArchive();
        }
      },
      async discard() {
        spool.stopReading();
      },
      bytesReceived: () => bytes,
    };
    const archive = new BackupArchive({ name: 'pg_wal.tar', index, kind: 'wal', tablespace: null, serverTerminated: true, controller });
    return { archive, bytes };
  }

  /** Stop at once (the session failed): the connection is destroyed. */
  destroy(error: Error): void {
    this.#conn?.destroy(error);
  }

  /** Success: closes the connection and removes the spool. */
  async close(): Promise<void> {
    await this.#conn?.close().catch(() => undefined);
    await this.#spool?.remove();
  }

  /** After {@link destroy}: lets the stream settle, drops a slot made for this backup, removes the spool. */
  async cleanupAfterFailure(): Promise<void> {
    // Let the WAL stream settle (it was told to stop) before the files go.
    if (this.#stream) await Promise.race([this.#stream.done.catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (this.#createdSlot !== undefined) await this.#dropCreatedSlot(this.#createdSlot);
    await this.#spool?.remove();
  }

  /** Drops the slot made with `createSlot` after all (a completed backup thrown away). Once. */
  async discardCreatedSlot(): Promise<void> {
    const name = this.#createdSlot;
    if (name === undefined) return;
    this.#createdSlot = undefined;
    await this.#dropCreatedSlot(name);
  }

  async #dropCreatedSlot(name: string): Promise<void> {
    const { options: o, deps } = this.#init;
    const connOpts: ConnectionOptions = { ...o.connection };
    delete connOpts.signal;
    connOpts.signal = AbortSignal.timeout(30_000);
    let conn: ReplicationConnectionApi | undefined;
    try {
      conn = await deps.connect(connOpts);
      for (let attempt = 1; ; attempt++) {
        try {
          // WAIT: the walsender that used the slot may still be exiting.
          await deps.dropSlot(conn, name, { wait: true, signal: connOpts.signal });
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
      this.#init.onWarning(
        new PgBackupError(
          'ERR_PGBB_CONNECTION',
          `could not drop the replication slot "${name}" created for this failed backup: drop it by hand ` +
            `(SELECT pg_drop_replication_slot('${name}')) or it will keep WAL on the server`,
          { cause: err },
        ),
      );
    } finally {
      await conn?.close().catch(() => {});
    }
  }
}

/** `sink` with every write counted (for progress), declaring what the sink declares; the sink itself is not changed. */
export function countingSink(sink: WalSink, onBytes: (n: number) => void): WalSink {
  return {
    // Kept: it is what lets the streamer hand the WAL connection's receive buffers back after each write.
    ...(sink.writesDataAtOnce !== undefined ? { writesDataAtOnce: sink.writesDataAtOnce } : {}),
    openSegment: (target) => sink.openSegment(target),
    write: (data) => {
      onBytes(data.length);
      return sink.write(data);
    },
    flush: () => sink.flush(),
    closeSegment: (mode) => sink.closeSegment(mode),
    writeHistoryFile: (name, content) => sink.writeHistoryFile(name, content),
    finish: () => sink.finish(),
    abort: (reason) => sink.abort(reason),
  };
}

/**
 * The WAL stream's error as the backup reports it. The walsender terminated (SQLSTATE class 57:
 * pg_terminate_backend, shutdown), its connection lost or garbled: a WalStreamError that says the
 * WAL connection failed, the original as its cause. Errors that already say what to do (a
 * missing slot at START_REPLICATION, a full disk, an abort) pass unchanged.
 */
function walFailure(err: unknown): Error {
  const e = asError(err);
  const interrupted =
    (e instanceof ServerError && e.sqlState.startsWith('57')) || e instanceof ConnectionClosedError || e instanceof ProtocolError;
  if (!interrupted) return e;
  return new WalStreamError(
    `the WAL streaming connection of the backup failed (${e.message}): the backup needs all WAL ` +
      'from its start to its end, so it was abandoned; take it again',
    { cause: e },
  );
}
