/**
 * WAL streaming over START_REPLICATION PHYSICAL (protocol "Streaming Replication Protocol";
 * behaviour of PostgreSQL's receivelog.c, which pg_basebackup `-Xstream` and pg_receivewal
 * share). Used during a backup and, alone, by a pg_receivewal-like archiver.
 *
 * Life of a stream:
 * 1. `starting`: for a timeline above 1, TIMELINE_HISTORY into the sink; then
 *    `START_REPLICATION [SLOT "s"] PHYSICAL X/X TIMELINE n`, expecting CopyBothResponse.
 * 2. `streaming`: XLogData is checked for continuity, split at segment boundaries and written
 *    through the sink; complete segments are closed (renamed, fsynced); PrimaryKeepalive with
 *    replyRequested gets a status update at once; a timer sends one every `statusIntervalMs`.
 * 3. `stopping`: the position reached `endLsn` (or {@link WalStream.stop} was called): we
 *    send a last status update (after a flush when flush is reported, so a slot's restart_lsn
 *    lands where we stopped), then CopyDone, and read until the server's CopyDone,
 *    CommandComplete and ReadyForQuery. If instead the server ends the COPY first at the end
 *    of a historic timeline, it sends `next_tli`/`next_tli_startpos`: we fetch the new history
 *    file and go back to 1 on the new timeline from that position rounded down to its segment.
 *    A COPY the server ends without a next timeline (shutdown) closes the segment and fails
 *    with {@link WalStreamError}: an archiver reconnects and resumes from the last segment.
 * 4. `done`: the last segment is closed (`finalizeLastSegment`), the sink finished, `done`
 *    resolves. Any failure rejects `done` and aborts the sink.
 *
 * Backpressure and keepalives: the next message is pulled from the connection only after the
 * sink accepted the previous one, so a slow sink pauses the socket. A replyRequested keepalive
 * is answered as soon as it is pulled, which is at once unless the sink is slow. While a sink
 * write is pending, the timer keeps sending status updates (with unchanged positions): the
 * walsender counts any update as a reply, so it does not time out as long as
 * `statusIntervalMs` is below `wal_sender_timeout`. A sink stalled for longer than
 * `wal_sender_timeout` with the timer off (`statusIntervalMs: 0`) gets the connection dropped.
 * Why one file of this size: it is one state machine (the `Streamer` class) whose states share the
 * position, timer, watchdog and sink fields; split across files, each step would need them all.
 * @module
 */
import { AbortError, ConnectionClosedError, PgBackupError, ProtocolError, ServerError, StateError, WalStreamError } from '../errors.js';
import type { BufferedMessages } from '../connection/command.js';
import type { ReplicationConnectionApi } from '../connection/types.js';
import { SqlState } from '../protocol/codes.js';
import { buildStandbyStatusUpdate, parseReplicationMessage } from '../protocol/replication-messages.js';
import { formatLsn, lsn, parseLsn, type Lsn } from '../lsn.js';
import { quoteIdentifier, timelineHistory, withAdvice as addAdvice } from '../replication/commands.js';
import { isValidWalSegmentSize, segmentFileNameForLsn, segmentOffset, segmentStartOf, timelineHistoryFileName } from './segments.js';
import { FeedbackTracker } from './feedback.js';
import type { WalSink } from './sink.js';

/** A timeline history file as TIMELINE_HISTORY returns it. */
export interface TimelineHistoryFile {
  /** `%08X.history`. */
  filename: string;
  /** The raw file content. */
  content: Buffer;
}

/** Options of {@link startWalStream}. */
export interface WalStreamOptions {
  /**
   * A connected physical-replication connection, idle. The stream owns it until `done`
   * settles; on failure it may have been destroyed.
   */
  connection: ReplicationConnectionApi;
  /**
   * Where to start. Rounded down to its segment start, because segment files are always
   * written from offset 0 (pg_receivewal refuses WAL at a non-zero offset with no file open).
   * For a backup: BASE_BACKUP's start LSN.
   */
  startLsn: Lsn;
  /** Timeline of `startLsn` (for a backup: BASE_BACKUP's start `tli`). */
  timeline: number;
  /** WAL segment size in bytes (`SHOW wal_segment_size`). */
  segmentSize: number;
  /**
   * Stream through this replication slot, which must exist. With a slot the flush position is
   * reported, which advances the slot's restart_lsn.
   */
  slotName?: string;
  /**
   * Milliseconds between standby status updates; 0 sends them only when the server asks.
   * Keep it below the server's `wal_sender_timeout` (60 s by default).
   * @default 10000
   */
  statusIntervalMs?: number;
  /**
   * Report the flush position in status updates.
   * @default true when `slotName` is set (as pg_receivewal), else false
   */
  reportFlush?: boolean;
  /** Where the WAL goes. */
  sink: WalSink;
  /** Aborts the stream: `done` rejects with AbortError and the sink is aborted. */
  signal?: AbortSignal;
  /**
   * Stop once the received position reaches or passes this LSN (pg_basebackup's backup end
   * position). Can also be given later with {@link WalStream.setEndLsn}. Without it the stream
   * runs until {@link WalStream.stop}, an abort, or a failure.
   */
  endLsn?: Lsn;
  /**
   * What happens to a segment that is incomplete when it is closed (at the end, or at a
   * timeline switch): `rename-padded` gives it its final name, zero-filled to the full size,
   * as pg_basebackup does (use it for a backup's pg_wal); `keep-partial` keeps the sink's
   * partial name, as pg_receivewal does, so a later run resumes it.
   * @default 'keep-partial'
   */
  finalizeLastSegment?: 'rename-padded' | 'keep-partial';
  /**
   * Store the history file of each timeline above 1 that is streamed (the start timeline
   * included), as receivelog.c does when the file is missing.
   * @default true
   */
  fetchTimelineHistory?: boolean;
  /**
   * Fetches a timeline history file. Defaults to `TIMELINE_HISTORY n` on `connection` (between
   * two START_REPLICATION commands, as receivelog.c does).
   */
  timelineHistory?: (timeline: number) => Promise<TimelineHistoryFile>;
  /** Called after each segment is closed complete. */
  onSegment?: (info: { name: string; timeline: number; end: Lsn }) => void;
  /** Called when the stream moves to a new timeline. */
  onTimelineSwitch?: (info: { from: number; to: number; switchLsn: Lsn; restartLsn: Lsn }) => void;
  /**
   * Flush the sink and send a status update after every XLogData message, as pg_receivewal
   * `--synchronous` does, so the client can serve as a synchronous standby. Implies that the
   * flush position is reported unless `reportFlush` says otherwise.
   * @default false
   */
  synchronous?: boolean;
  /**
   * Fail with {@link WalStreamError} when the server sends nothing for this many milliseconds
   * while streaming: a server that stopped answering without closing the connection is then
   * detected instead of hanging. With a timeout, periodic status updates ask the server for a
   * reply (its keepalive), so an idle but healthy server still speaks; with `statusIntervalMs: 0`
   * the walsender's own keepalives (every half `wal_sender_timeout`) must arrive in time.
   * @default undefined (no timeout)
   */
  serverTimeoutMs?: number;
  /** Called after each standby status update was sent, with the positions it reported. */
  onStatusSent?: (info: { write: Lsn; flush: Lsn; apply: Lsn }) => void;
}

/** How a stream ended. */
export interface WalStreamResult {
  /** Position after the last WAL byte written. */
  position: Lsn;
  /** Timeline of the last WAL written. */
  timeline: number;
  /** Last position the sink made durable. */
  flushed: Lsn;
  /** Why it stopped: the end LSN was reached, or {@link WalStream.stop} was called. */
  reason: 'end-lsn' | 'stopped';
  /** Segments closed complete. */
  segmentsCompleted: number;
  /** Every timeline streamed, in order. */
  timelines: number[];
}

/** A running WAL stream (see {@link startWalStream}). */
export interface WalStream {
  /** Stop once the received position reaches or passes `endLsn` (at once if it already has). */
  setEndLsn(endLsn: Lsn): void;
  /** Settles when the stream has ended and the sink is finished (or aborted). */
  readonly done: Promise<WalStreamResult>;
  /** Stop at the current position (CopyDone); resolves when `done` settles, rejects if it rejects. */
  stop(): Promise<void>;
  /** Position after the last WAL byte handed to the sink. */
  readonly position: Lsn;
  /** The timeline being streamed. */
  readonly timeline: number;
  /** `await using` support: {@link WalStream.stop}, without rethrowing a failure (`done` reports it). */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Whether a send failed only because the COPY (or the connection) already ended: the
 * stream iterator then reports why, and the send's own error must not replace that.
 */
function copyEndedUnderUs(err: unknown): boolean {
  return err instanceof StateError || err instanceof ConnectionClosedError;
}

/** Add what to do to the server errors a WAL stream typically meets. */
function withAdvice(err: ServerError, slotName: string | undefined): ServerError {
  const msg = err.serverMessage;
  let advice: string | undefined;
  if (/requested WAL segment .* has already been removed/.test(msg)) {
    advice =
      slotName === undefined
        ? 'The server recycled WAL before it was streamed: stream through a replication slot (it keeps WAL until it is ' +
          'received), or raise wal_keep_size on the server.'
        : `The slot "${slotName}" does not hold the WAL requested: start at or after its restart_lsn.`;
  } else if (err.sqlState === SqlState.UndefinedObject && /replication slot/.test(msg)) {
    advice = `Create the slot "${slotName ?? ''}" first (CREATE_REPLICATION_SLOT ... PHYSICAL), or stream without a slot.`;
  } else if (err.sqlState === SqlState.ObjectInUse && /replication slot/.test(msg)) {
    advice = 'Another client is streaming from this slot: stop it or use another slot.';
  } else if (/ahead of the WAL flush position/.test(msg)) {
    advice = 'The start position is beyond what the server has written: start at or before its current WAL position.';
  } else if (/not in this server's history|requested timeline/.test(msg)) {
    advice = "The timeline/position pair is not in the server's history: check the timeline (IDENTIFY_SYSTEM).";
  }
  return advice ? addAdvice(err, advice) : err;
}

class Streamer implements WalStream {
  readonly done: Promise<WalStreamResult>;
  readonly #conn: ReplicationConnectionApi;
  readonly #sink: WalSink;
  readonly #segmentSize: number;
  readonly #slotName: string | undefined;
  readonly #finalize: 'rename-padded' | 'keep-partial';
  readonly #fetchHistory: boolean;
  readonly #historyFetcher: (timeline: number) => Promise<TimelineHistoryFile>;
  readonly #options: WalStreamOptions;
  readonly #feedback: FeedbackTracker;
  readonly #internal = new AbortController();
  #endLsn: Lsn | undefined;
  #timeline: number;
  #position: Lsn;
  /** Name of the open segment, if any. */
  #segment: string | undefined;
  /** Whether WAL was written since the sink last made it durable. */
  #unflushed = false;
  #stopRequested = false;
  /** Between CopyBothResponse and our CopyDone: we may send CopyData. */
  #inCopy = false;
  /** XLogData is written (false once we decided to stop or the server ended the COPY). */
  #accepting = false;
  /** The last status update and CopyDone, under way after a stop decision. */
  #stopping: Promise<void> | undefined;
  #failure: unknown;
  #timer: NodeJS.Timeout | undefined;
  #sinkQueue: Promise<unknown> = Promise.resolve();
  #sinkOps = 0;
  #segmentsCompleted = 0;
  readonly #timelines: number[] = [];
  #reason: 'end-lsn' | 'stopped' = 'stopped';
  readonly #synchronous: boolean;
  readonly #serverTimeoutMs: number | undefined;
  #lastMessageAt = 0;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: WalStreamOptions) {
    if (!isValidWalSegmentSize(options.segmentSize)) {
      throw new WalStreamError(`invalid WAL segment size ${options.segmentSize}: must be a power of two between 1MB and 1GB`);
    }
    if (!Number.isInteger(options.timeline) || options.timeline < 1 || options.timeline > 0xffffffff) {
      throw new WalStreamError(`invalid timeline ${options.timeline}`);
    }
    this.#options = options;
    this.#conn = options.connection;
    this.#sink = options.sink;
    this.#segmentSize = options.segmentSize;
    this.#slotName = options.slotName;
    this.#finalize = options.finalizeLastSegment ?? 'keep-partial';
    this.#fetchHistory = options.fetchTimelineHistory ?? true;
    this.#historyFetcher = options.timelineHistory ?? ((tli) => this.#queryHistory(tli));
    this.#timeline = options.timeline;
    this.#position = segmentStartOf(options.startLsn, options.segmentSize);
    this.#endLsn = options.endLsn;
    this.#synchronous = options.synchronous ?? false;
    const timeout = options.serverTimeoutMs;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) {
      throw new WalStreamError(`invalid serverTimeoutMs ${timeout}: give a positive number of milliseconds`);
    }
    this.#serverTimeoutMs = timeout;
    this.#feedback = new FeedbackTracker({
      startLsn: this.#position,
      statusIntervalMs: options.statusIntervalMs ?? 10_000,
      // receivelog.c reports flush with a slot, and in synchronous mode (a synchronous standby must).
      reportFlush: options.reportFlush ?? (options.slotName !== undefined || this.#synchronous),
    });
    this.done = this.#run();
    // `stop()` reports the same failure; an unobserved `done` must not crash the process.
    this.done.catch(() => undefined);
  }

  get position(): Lsn {
    return this.#position;
  }

  get timeline(): number {
    return this.#timeline;
  }

  setEndLsn(endLsn: Lsn): void {
    this.#endLsn = endLsn;
    if (this.#position >= endLsn) {
      this.#reason = 'end-lsn';
      this.#requestStop();
    }
  }

  async stop(): Promise<void> {
    this.#requestStop();
    await this.done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => undefined);
  }

  /**
   * Stop accepting WAL and end the COPY: at once if we are in it, else as soon as it starts.
   * Before CopyDone, one last status update tells the server (and a slot) how far we got, after
   * flushing what was written when the flush position is reported.
   */
  #requestStop(): void {
    this.#stopRequested = true;
    if (this.#inCopy && this.#accepting) {
      this.#accepting = false;
      this.#clearTimer();
      this.#stopping = this.#sendStatus(true)
        .catch((err: unknown) => this.#fail(err))
        .finally(() => this.#sendCopyDone());
    }
  }

  #sendCopyDone(): void {
    if (!this.#inCopy) return;
    this.#inCopy = false;
    try {
      this.#conn.sendCopyDone();
    } catch (err) {
      // As in #sendStatus: if the COPY already ended, the iterator says why.
      if (!copyEndedUnderUs(err)) throw err;
    }
  }

  #fail(err: unknown): void {
    this.#failure ??= err;
    this.#internal.abort(err);
    // A sink operation in flight may never settle (a stalled output): aborting the sink makes it
    // reject, so the main loop can unwind. abort() is idempotent; #run calls it again.
    if (this.#sinkOps > 0) this.#sink.abort(err).catch(() => undefined);
  }

  async #run(): Promise<WalStreamResult> {
    const signal = this.#options.signal;
    const onAbort = (): void => this.#fail(new AbortError('WAL streaming was aborted', { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#streamTimelines();
      if (this.#failure !== undefined) throw this.#failure;
      await this.#sinkOp(() => this.#sink.finish());
      return {
        position: this.#position,
        timeline: this.#timeline,
        flushed: this.#feedback.flushed,
        reason: this.#reason,
        segmentsCompleted: this.#segmentsCompleted,
        timelines: [...this.#timelines],
      };
    } catch (caught) {
      this.#clearTimer();
      const err = this.#normalize(this.#failure ?? caught);
      await this.#sinkQueue.catch(() => undefined);
      await this.#sink.abort(err).catch(() => undefined);
      throw err;
    } finally {
      this.#clearTimer();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #normalize(err: unknown): Error {
    if (err instanceof ServerError) return withAdvice(err, this.#slotName);
    if (err instanceof PgBackupError) return err;
    return new WalStreamError(`WAL streaming failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  #reachedEnd(): boolean {
    return this.#endLsn !== undefined && this.#position >= this.#endLsn;
  }

  async #streamTimelines(): Promise<void> {
    for (;;) {
      if (this.#failure !== undefined) return;
      if (this.#reachedEnd()) {
        this.#reason = 'end-lsn';
        return;
      }
      if (this.#stopRequested) return;
      if (this.#fetchHistory && this.#timeline > 1) await this.#storeHistory(this.#timeline);
      if (this.#timelines.at(-1) !== this.#timeline) this.#timelines.push(this.#timeline);
      const next = await this.#streamOnce();
      if (next === undefined) return;
      if (next.timeline <= this.#timeline) {
        throw new WalStreamError(`server reported unexpected next timeline ${next.timeline}, following timeline ${this.#timeline}`);
      }
      if (next.startLsn > this.#position) {
        throw new WalStreamError(
          `server stopped streaming timeline ${this.#timeline} at ${formatLsn(this.#position)}, but reported next ` +
            `timeline ${next.timeline} to begin at ${formatLsn(next.startLsn)}`,
        );
      }
      const restart = segmentStartOf(next.startLsn, this.#segmentSize);
      this.#options.onTimelineSwitch?.({ from: this.#timeline, to: next.timeline, switchLsn: next.startLsn, restartLsn: restart });
      this.#timeline = next.timeline;
      this.#position = restart;
      this.#feedback.restart(restart);
    }
  }

  async #storeHistory(timeline: number): Promise<void> {
    const file = await this.#historyFetcher(timeline);
    const expected = timelineHistoryFileName(timeline);
    if (file.filename !== expected) {
      throw new ProtocolError(`server reported unexpected history file name for timeline ${timeline}: ${JSON.stringify(file.filename)}`);
    }
    await this.#sinkOp(() => this.#sink.writeHistoryFile(expected, file.content));
  }

  async #queryHistory(timeline: number): Promise<TimelineHistoryFile> {
    const history = await timelineHistory(this.#conn, timeline, { signal: this.#internal.signal });
    return { filename: history.fileName, content: history.content };
  }

  /**
   * One START_REPLICATION. Returns the next timeline when the server ended the COPY at the end
   * of a historic timeline, `undefined` when we stopped.
   */
  async #streamOnce(): Promise<{ timeline: number; startLsn: Lsn } | undefined> {
    const sql = startReplicationCommand({
      startLsn: this.#position,
      timeline: this.#timeline,
      ...(this.#slotName === undefined ? {} : { slotName: this.#slotName }),
    });
    let nextTimeline: { timeline: number; startLsn: Lsn } | undefined;
    let columns: string[] | undefined;
    let serverEndedCopy = false;
    let sawCopyBoth = false;
    try {
      const messages = this.#conn.stream(sql, { signal: this.#internal.signal });
      // A sink that is done with each message's bytes once written lets the connection refill its
      // receive buffers instead of allocating new ones (memory stays flat over days of streaming).
      const release = this.#sink.writesDataAtOnce === true ? (messages as Partial<BufferedMessages>).releaseHandedOut : undefined;
      for await (const message of messages) {
        if (this.#failure !== undefined) break;
        this.#lastMessageAt = Date.now();
        switch (message.type) {
          case 'CopyBothResponse':
            sawCopyBoth = true;
            this.#inCopy = true;
            this.#accepting = true;
            this.#armWatchdog();
            if (this.#stopRequested || this.#reachedEnd()) {
              if (this.#reachedEnd()) this.#reason = 'end-lsn';
              this.#requestStop();
            } else {
              this.#scheduleTimer();
            }
            break;
          case 'CopyData':
            if (!sawCopyBoth) throw new ProtocolError('CopyData before CopyBothResponse during START_REPLICATION');
            await this.#onCopyData(message.payload);
            release?.();
            break;
          case 'CopyDone':
            serverEndedCopy = true;
            if (this.#accepting) {
              // The server ended the COPY (end of a historic timeline, or shutdown): close our side.
              this.#accepting = false;
              this.#clearTimer();
              await this.#closeSegment();
              this.#sendCopyDone();
            }
            break;
          case 'RowDescription':
            columns = message.columns.map((c) => c.name);
            break;
          case 'DataRow':
            nextTimeline = this.#parseNextTimeline(columns, message.values);
            break;
          case 'CommandComplete':
          case 'EmptyQueryResponse':
            break;
          default:
            throw new ProtocolError(`unexpected ${message.type} in response to START_REPLICATION`);
        }
      }
    } catch (err) {
      throw this.#failure ?? err;
    } finally {
      this.#inCopy = false;
      this.#accepting = false;
      this.#clearTimer();
      this.#clearWatchdog();
      await this.#stopping;
      this.#stopping = undefined;
    }
    if (this.#failure !== undefined) throw this.#failure;
    const weStopped = this.#stopRequested || this.#reachedEnd();
    if (weStopped) {
      if (this.#reachedEnd()) this.#reason = 'end-lsn';
      await this.#closeSegment();
      return undefined;
    }
    if (nextTimeline !== undefined) return nextTimeline;
    await this.#closeSegment();
    throw new WalStreamError(
      `replication stream was terminated before stop point (at ${formatLsn(this.#position)} on timeline ` +
        `${this.#timeline}${serverEndedCopy ? ', the server ended the COPY' : ''}): the server shut down or stopped ` +
        'sending WAL; reconnect and resume from this position',
    );
  }

  #parseNextTimeline(columns: string[] | undefined, values: (string | null)[]): { timeline: number; startLsn: Lsn } {
    // next_tli | next_tli_startpos (walsender.c StartReplication, after a historic timeline).
    const tliText = values[0];
    const posText = values[1];
    if (values.length < 2 || tliText == null || posText == null) {
      throw new ProtocolError(
        `unexpected result set after end-of-timeline: got ${values.length} fields${columns ? ` (${columns.join(', ')})` : ''}, expected next_tli and next_tli_startpos`,
      );
    }
    const timeline = Number(tliText);
    if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) {
      throw new ProtocolError(`could not parse next timeline ${JSON.stringify(tliText)}`);
    }
    return { timeline, startLsn: parseLsn(posText, 'server') };
  }

  async #onCopyData(payload: Buffer): Promise<void> {
    const msg = parseReplicationMessage(payload);
    if (msg.type === 'PrimaryKeepalive') {
      if (!this.#accepting) return;
      if (this.#feedback.onKeepalive(msg.replyRequested)) await this.#sendStatus(true);
      return;
    }
    // After our CopyDone the server may still send WAL it had queued: ignored, as receivelog.c does.
    if (!this.#accepting) return;
    if (msg.dataStart !== this.#position) {
      const how = msg.dataStart > this.#position ? 'a gap' : 'an overlap';
      throw new ProtocolError(
        `WAL stream out of order: received XLogData starting at ${formatLsn(msg.dataStart)} but expected ` +
          `${formatLsn(this.#position)} (${how} of ${msg.dataStart > this.#position ? msg.dataStart - this.#position : this.#position - msg.dataStart} bytes)`,
      );
    }
    let data = msg.data;
    while (data.length > 0 && this.#accepting) {
      const offset = segmentOffset(this.#position, this.#segmentSize);
      if (this.#segment === undefined) {
        if (offset !== 0) {
          throw new ProtocolError(`received WAL at offset ${offset} of a segment with no file open (${formatLsn(this.#position)})`);
        }
        const name = segmentFileNameForLsn(this.#timeline, this.#position, this.#segmentSize);
        await this.#sinkOp(() => this.#sink.openSegment({ name, segmentSize: this.#segmentSize, startOffset: 0 }));
        this.#segment = name;
      }
      const n = Math.min(data.length, this.#segmentSize - offset);
      const chunk = data.subarray(0, n);
      await this.#sinkOp(() => this.#sink.write(chunk));
      this.#unflushed = true;
      this.#position = lsn(this.#position + BigInt(n));
      this.#feedback.onReceived(this.#position);
      data = data.subarray(n);
      if (offset + n === this.#segmentSize) {
        await this.#closeSegment();
        if (this.#reachedEnd()) {
          this.#reason = 'end-lsn';
          this.#requestStop(); // the rest of this message is past the end: dropped, like receivelog.c
        }
      }
    }
    if (this.#accepting && this.#reachedEnd()) {
      this.#reason = 'end-lsn';
      this.#requestStop();
    }
    // receivelog.c: in synchronous mode, flush and report after each message, not on a timer.
    if (this.#synchronous && this.#accepting) await this.#sendStatus(true);
  }

  /**
   * Close the open segment: complete if full, else as `finalizeLastSegment` says, at the end
   * and at a timeline switch alike (pg_basebackup streams with no partial suffix at all, so
   * both get final names there; pg_receivewal keeps both `.partial`).
   */
  async #closeSegment(): Promise<void> {
    const name = this.#segment;
    if (name === undefined) return;
    const complete = segmentOffset(this.#position, this.#segmentSize) === 0;
    const mode = complete ? 'complete' : this.#finalize === 'rename-padded' ? 'padded' : 'partial';
    this.#segment = undefined;
    const durable = await this.#sinkOp(() => this.#sink.closeSegment(mode));
    this.#unflushed = false;
    // Closing makes the segment durable, unless the sink says it did not (see WalSink.closeSegment).
    if (durable !== false) this.#feedback.onFlushed(this.#position);
    if (complete) {
      this.#segmentsCompleted++;
      this.#options.onSegment?.({ name, timeline: this.#timeline, end: this.#position });
    }
  }

  /** Run sink operations one at a time (the main loop and the status timer share the sink). */
  #sinkOp<T>(op: () => Promise<T>): Promise<T> {
    this.#sinkOps++;
    const result = this.#sinkQueue.then(op);
    this.#sinkQueue = result.then(
      () => {
        this.#sinkOps--;
      },
      () => {
        this.#sinkOps--;
      },
    );
    return result;
  }

  /**
   * Send a status update. With `mayFlush`, first make the written WAL durable if the flush
   * position is reported (as receivelog.c does before answering a keepalive).
   */
  async #sendStatus(mayFlush: boolean): Promise<void> {
    if (mayFlush && this.#feedback.reportFlush && this.#unflushed && this.#segment !== undefined) {
      const upTo = this.#position;
      this.#unflushed = false;
      const durable = await this.#sinkOp(() => this.#sink.flush());
      // `false`: the sink makes WAL durable only when the segment is closed (see WalSink.flush).
      if (durable !== false) this.#feedback.onFlushed(upTo);
    }
    if (!this.#inCopy) return;
    const values = this.#feedback.take(Date.now());
    // With a server timeout, ask for a reply so that a healthy idle server still sends something.
    const message = buildStandbyStatusUpdate({ ...values, replyRequested: this.#serverTimeoutMs !== undefined });
    try {
      this.#conn.sendCopyData(message);
      this.#options.onStatusSent?.({ write: values.write, flush: values.flush, apply: values.apply });
    } catch (err) {
      // The COPY can end under a pending send: the connection leaves copy-both when the stream
      // iterator reads the server's ErrorResponse (walsender reports e.g. removed WAL right after
      // CopyBothResponse), then waits for ReadyForQuery before throwing the ServerError. A timer
      // firing in between gets a StateError (or ConnectionClosedError once the socket is gone);
      // the iterator reports the real cause, which this send must not mask. Anything else is ours.
      if (!copyEndedUnderUs(err)) throw err;
    }
  }

  #scheduleTimer(): void {
    this.#clearTimer();
    if (!this.#accepting) return;
    const wait = this.#feedback.msUntilDue(Date.now());
    if (wait === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // A busy sink means the main loop is waiting on it: send positions as they are (a
      // heartbeat that keeps wal_sender_timeout away), flush only when the sink is idle.
      const idle = this.#sinkOps === 0;
      this.#sendStatus(idle).then(
        () => this.#scheduleTimer(),
        (err: unknown) => this.#fail(err),
      );
    }, wait);
    this.#timer.unref?.();
  }

  /**
   * The server-timeout deadline: one timer, re-armed for the last message's time plus the
   * timeout when it fires early, instead of being reset on every message.
   */
  #armWatchdog(): void {
    const timeout = this.#serverTimeoutMs;
    if (timeout === undefined || this.#watchdog !== undefined) return;
    const wait = Math.max(0, this.#lastMessageAt + timeout - Date.now());
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      if (!this.#inCopy) return;
      // A busy sink is why nothing was read (backpressure): the silence is ours, not the server's.
      if (Date.now() - this.#lastMessageAt < timeout || this.#sinkOps > 0) {
        if (this.#sinkOps > 0) this.#lastMessageAt = Date.now();
        this.#armWatchdog();
        return;
      }
      const err = new WalStreamError(
        `the server sent nothing for ${Math.round(timeout / 1000)} s while streaming WAL: it is unreachable or hung; ` +
          'reconnect, and check the server and the network',
      );
      this.#fail(err);
      this.#conn.destroy(err);
    }, wait);
    this.#watchdog.unref?.();
  }

  #clearWatchdog(): void {
    if (this.#watchdog !== undefined) {
      clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * Start streaming WAL into a sink: for a timeline above 1 the history file first, then
 * START_REPLICATION; XLogData is written through the sink segment by segment, with status
 * updates on a timer and when the server asks; at `endLsn` (or {@link WalStream.stop}) the last
 * segment is closed, the sink finished and `done` resolves. A timeline switch is followed;
 * any failure rejects `done` and aborts the sink.
 *
 * @example
 * ```ts
 * const sink = new DirectoryWalSink({ directory: 'backup/pg_wal', partialSuffix: '', markDone: true });
 * const wal = startWalStream({ connection, startLsn, timeline, segmentSize, slotName, sink,
 *   finalizeLastSegment: 'rename-padded' });
 * // ... when BASE_BACKUP reports its end position:
 * wal.setEndLsn(endLsn);
 * const result = await wal.done;
 * ```
 */
export function startWalStream(options: WalStreamOptions): WalStream {
  return new Streamer(options);
}

/**
 * The START_REPLICATION statement for a position: `START_REPLICATION [SLOT "s"] PHYSICAL X/X TIMELINE n`.
 * The LSN is printed unpadded, which every server version parses.
 */
export function startReplicationCommand(options: { slotName?: string; startLsn: Lsn; timeline: number }): string {
  const slot = options.slotName === undefined ? '' : `SLOT ${quoteIdentifier(options.slotName)} `;
  return `START_REPLICATION ${slot}PHYSICAL ${formatLsn(options.startLsn, { padded: false })} TIMELINE ${options.timeline}`;
}
