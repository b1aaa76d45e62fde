/**
 * What the BASE_BACKUP response says, as the session exposes it: the start and end positions,
 * the tablespaces, one {@link BackupArchive} per tablespace (lock step with the socket), the
 * manifest, progress. Every event goes through {@link BackupTransfer}'s observer, whoever pulled
 * it from the {@link ResponsePump}; the session decides what happens around it (phases, WAL).
 *
 * Transfer states (the session's `started → archives → manifest → end-position`):
 * the start row and tablespace header make `started`, the first archive `archives`, the
 * manifest `manifest`, the end row `end-position`.
 * @module
 */
import { ProtocolError, StateError, type ServerError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { BackupArchive, type ArchiveController, type BackupTablespace } from './archive.js';
import type { BackupPhase } from './events.js';
import { deferred, type FailureLatch } from './failure.js';
import type { ProgressTracker } from './progress.js';
import { PENDING, ResponsePump } from './pump.js';
import type { BackupResponseEvent, BaseBackupResponseParser } from './response.js';

/** Where the transfer is; the session adds `done` and `failed`. @internal */
export type TransferState = 'started' | 'archives' | 'manifest' | 'end-position';

/** The session's side of the transfer. @internal */
export interface TransferHooks {
  latch: FailureLatch;
  /** Fail the session. */
  fail(error: Error): void;
  progress: ProgressTracker;
  emitProgress(): void;
  enterPhase(phase: BackupPhase): void;
  /** Whether a WAL stream runs beside the backup (`wal: 'stream'`). */
  streamsWal: boolean;
  /** The start position arrived. */
  onStart(lsn: Lsn, timeline: number): void;
  /** The end position arrived. */
  onEnd(lsn: Lsn): void;
}

/** Per-archive bookkeeping. */
interface ArchiveState {
  archive: BackupArchive;
  bytes: number;
  ended: boolean;
  /** Data was thrown away by a drain: a reader that resumes must not see a silent gap. */
  discarded: boolean;
}

/** The BASE_BACKUP response of one session, read on demand. @internal */
export class BackupTransfer {
  readonly #pump: ResponsePump;
  readonly #serverMajor: number;
  readonly #hooks: TransferHooks;
  #state: TransferState = 'started';
  #startLsn: Lsn | undefined;
  #startTimeline = 0;
  #endLsn: Lsn | undefined;
  #endTimeline = 0;
  #tablespaces: BackupTablespace[] = [];
  readonly #endRow = deferred<void>();
  /** Bytes per archive, in order. */
  readonly archiveStats: { name: string; bytes: number }[] = [];
  #current: ArchiveState | undefined;
  #archivesSeen = 0;
  #manifestChunks: Buffer[] | undefined;
  #manifest: Buffer | undefined;

  constructor(iter: AsyncIterator<unknown>, parser: BaseBackupResponseParser, serverMajor: number, hooks: TransferHooks) {
    this.#serverMajor = serverMajor;
    this.#hooks = hooks;
    this.#pump = new ResponsePump(iter, parser, { latch: hooks.latch, fail: hooks.fail, observe: (ev) => this.#observe(ev) });
  }

  get state(): TransferState {
    return this.#state;
  }
  get startLsn(): Lsn | undefined {
    return this.#startLsn;
  }
  get startTimeline(): number {
    return this.#startTimeline;
  }
  get endLsn(): Lsn | undefined {
    return this.#endLsn;
  }
  get endTimeline(): number {
    return this.#endTimeline;
  }
  get tablespaces(): readonly BackupTablespace[] {
    return this.#tablespaces;
  }
  get manifest(): Buffer | undefined {
    return this.#manifest;
  }
  /** Archives announced so far. */
  get archivesSeen(): number {
    return this.#archivesSeen;
  }
  /** The response is complete. */
  get ended(): boolean {
    return this.#pump.ended;
  }
  /** See {@link ResponsePump.corruption}. */
  get corruption(): ServerError | undefined {
    return this.#pump.corruption;
  }
  /** Resolves when the end row arrived; rejected by {@link fail}. */
  get endRow(): Promise<void> {
    return this.#endRow.promise;
  }

  /** The session failed. */
  fail(error: Error): void {
    this.#endRow.reject(error);
  }

  /** Reads until the tablespace header is in (the start row before it). */
  async readHeader(): Promise<void> {
    while (this.#tablespaces.length === 0) {
      const ev = await this.#pump.next();
      if (ev === undefined) throw new ProtocolError('the BASE_BACKUP response ended before the tablespace header');
    }
  }

  /** Discards what is left of the current archive and returns the next one, or undefined after the last. */
  async nextArchive(): Promise<BackupArchive | undefined> {
    if (this.#current) await this.#drainArchive(this.#current);
    for (;;) {
      const ev = await this.#pump.next();
      if (ev === undefined || ev.type === 'end') return undefined;
      if (ev.type === 'archive-start') return this.#current!.archive;
    }
  }

  /** Pulls (discarding archive data) until the response is complete. */
  async drainToEnd(): Promise<void> {
    if (this.#current) await this.#drainArchive(this.#current);
    while ((await this.#pump.next()) !== undefined) {
      if (this.#current && !this.#current.ended) this.#current.discarded = true;
    }
  }

  /** Pulls (discarding archive data) until the end row arrived. */
  async drainToEndRow(): Promise<void> {
    while (this.#endLsn === undefined) {
      const ev = await this.#pump.next();
      if (ev === undefined) break;
      if (ev.type === 'archive-data' && this.#current) this.#current.discarded = true;
    }
  }

  async #drainArchive(st: ArchiveState): Promise<void> {
    while (!st.ended) {
      const ev = await this.#pump.next();
      if (ev === undefined) throw new ProtocolError(`the BASE_BACKUP response ended inside archive ${st.archive.name}`);
      if (ev.type === 'archive-data') st.discarded = true;
    }
  }

  /** Side effects of every event, whoever pulled it. */
  #observe(ev: BackupResponseEvent): void {
    const h = this.#hooks;
    switch (ev.type) {
      case 'start':
        this.#startLsn = ev.lsn;
        this.#startTimeline = ev.timeline;
        h.enterPhase('data');
        h.onStart(ev.lsn, ev.timeline);
        break;
      case 'tablespaces':
        this.#tablespaces = ev.tablespaces.map((t) => ({
          oid: t.oid,
          location: t.location,
          estimatedBytes: t.sizeKb === null ? undefined : t.sizeKb * 1024,
        }));
        h.progress.setTablespaces(ev.tablespaces.map((t) => t.sizeKb));
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
          controller: this.#controller(st),
        });
        this.#current = st;
        this.#archivesSeen++;
        h.progress.startArchive(ev.name, ev.index);
        break;
      }
      case 'archive-data':
        this.#current!.bytes += ev.data.length;
        if (h.progress.addBytes(ev.data.length)) h.emitProgress();
        break;
      case 'archive-end':
        this.#current!.ended = true;
        this.archiveStats.push({ name: ev.name, bytes: this.#current!.bytes });
        // The last tablespace archive: what remains is finishing the WAL (and the manifest).
        if (ev.index === this.#tablespaces.length - 1 && h.streamsWal) h.enterPhase('wal');
        if (h.progress.endArchive()) h.emitProgress();
        break;
      case 'progress':
        if (this.#serverMajor >= 15) h.progress.serverProgress(ev.bytesDone);
        break;
      case 'manifest-start':
        this.#state = 'manifest';
        this.#manifestChunks = [];
        // With a WAL stream the manifest arrives in the 'wal' phase; 'manifest' follows the WAL.
        if (!h.streamsWal) h.enterPhase('manifest');
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
        // The data is complete (the total is now exact); the final report comes when the
        // session is done, after the WAL stream and the spooled pg_wal.tar.
        h.progress.endData();
        h.emitProgress();
        h.onEnd(ev.lsn);
        this.#endRow.resolve();
        break;
      case 'complete':
        break;
    }
  }

  #controller(st: ArchiveState): ArchiveController {
    const pump = this.#pump;
    return {
      async *open() {
        for (;;) {
          if (st.discarded) {
            throw new StateError(`archive ${st.archive.name} was discarded: the session moved on to the next archive before it was read`);
          }
          if (st.ended) break;
          let ev = pump.nextNow();
          if (ev === PENDING) ev = await pump.next();
          if (ev === undefined) throw new ProtocolError(`the BASE_BACKUP response ended inside archive ${st.archive.name}`);
          if (ev.type === 'archive-data') yield ev.data;
          else if (ev.type === 'archive-end') break;
          else if (ev.type !== 'progress') throw new ProtocolError(`unexpected ${ev.type} inside archive ${st.archive.name}`);
        }
        // 13/14 send no end-of-archive marker (pg_basebackup appends it for servers before 15).
        if (!st.archive.serverTerminated) yield Buffer.alloc(1024);
      },
      discard: () => this.#drainArchive(st),
      release: () => pump.release(),
      bytesReceived: () => st.bytes,
    };
  }
}
