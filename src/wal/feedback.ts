/**
 * Standby status update bookkeeping for WAL streaming (STYLE practice 11). Pure: no
 * timers, no I/O; the caller passes the clock and sends what {@link FeedbackTracker.take}
 * returns.
 *
 * Values follow pg_receivewal (receivelog.c's sendFeedback): `write` = the position received
 * and handed to the sink, `flush` = the position the sink made durable (only after its
 * `flush()` resolved) or 0 when flush reporting is off, `apply` = 0 (InvalidXLogRecPtr: we
 * replay nothing). An update goes out every `statusIntervalMs` and at once when a
 * PrimaryKeepalive asks for a reply. The walsender drops a client it has not heard from for
 * `wal_sender_timeout` (60 s by default) and asks for a reply when half of it has passed; any
 * status update resets that clock, even with unchanged positions (walsender.c,
 * ProcessRepliesIfAny).
 * @module
 */
import { INVALID_LSN, type Lsn } from '../lsn.js';

/** Options of the standby status update timer (`FeedbackTracker`, inside {@link startWalStream}). */
export interface FeedbackOptions {
  /** The stream's start position: nothing before it is reported. */
  startLsn: Lsn;
  /**
   * Milliseconds between two status updates; 0 sends them only when the server asks.
   * Keep it well under the server's `wal_sender_timeout`.
   * @default 10000 (pg_receivewal's `--status-interval`)
   */
  statusIntervalMs?: number;
  /**
   * Report the flush position. pg_receivewal does only when streaming into a replication slot,
   * because a client reporting flush can be picked as a synchronous standby; with a slot the
   * flush position is what advances the slot's `restart_lsn`.
   * @default true
   */
  reportFlush?: boolean;
}

/** The values of one StandbyStatusUpdate. */
export interface StatusUpdateValues {
  write: Lsn;
  flush: Lsn;
  apply: Lsn;
  /** Whether we ask the server to answer (we never do, like pg_receivewal). */
  replyRequested: false;
}

/** Tracks received/flushed positions and decides when a status update is due. */
export class FeedbackTracker {
  /** Milliseconds between periodic updates (0 = none). */
  readonly statusIntervalMs: number;
  /** Whether `flush` is reported. */
  readonly reportFlush: boolean;
  #received: Lsn;
  #flushed: Lsn;
  #flushKnown = false;
  #lastSentMs: number | undefined;
  #replyOwed = false;

  constructor(options: FeedbackOptions) {
    const interval = options.statusIntervalMs ?? 10_000;
    if (!Number.isFinite(interval) || interval < 0) throw new RangeError(`statusIntervalMs must be ≥ 0, got ${interval}`);
    this.statusIntervalMs = interval;
    this.reportFlush = options.reportFlush ?? true;
    this.#received = options.startLsn;
    this.#flushed = options.startLsn;
  }

  /** Position received and handed to the sink. */
  get received(): Lsn {
    return this.#received;
  }

  /** Position the sink made durable. */
  get flushed(): Lsn {
    return this.#flushed;
  }

  /** Whether flushed < received, i.e. a sink flush would make progress. */
  get flushPending(): boolean {
    return this.#flushed < this.#received;
  }

  /** Whether a keepalive asked for a reply that was not sent yet. */
  get replyOwed(): boolean {
    return this.#replyOwed;
  }

  /** Record that WAL up to `position` was handed to the sink. Never moves backwards. */
  onReceived(position: Lsn): void {
    if (position > this.#received) this.#received = position;
  }

  /** Record that the sink's flush covering WAL up to `position` resolved. */
  onFlushed(position: Lsn): void {
    if (position > this.#flushed) this.#flushed = position;
    this.#flushKnown = true;
  }

  /**
   * Continue at a new timeline's start point. The stream restarts at a segment start that may
   * lie before what we reported: `write` follows the new stream, `flush` never moves back,
   * because the walsender sets a physical slot's restart_lsn to whatever flush position it is
   * told (PhysicalConfirmReceivedLocation), backwards too.
   */
  restart(startLsn: Lsn): void {
    this.#received = startLsn;
  }

  /** A PrimaryKeepalive arrived. Returns whether an update must be sent now. */
  onKeepalive(replyRequested: boolean): boolean {
    if (replyRequested) this.#replyOwed = true;
    return this.#replyOwed;
  }

  /** Whether an update is due at `nowMs`: a reply is owed, or the interval has elapsed. */
  isDue(nowMs: number): boolean {
    if (this.#replyOwed) return true;
    if (this.statusIntervalMs === 0) return false;
    return this.#lastSentMs === undefined || nowMs - this.#lastSentMs >= this.statusIntervalMs;
  }

  /**
   * Milliseconds from `nowMs` until the next periodic update, or `undefined` when periodic
   * updates are off. 0 when one is due now.
   */
  msUntilDue(nowMs: number): number | undefined {
    if (this.#replyOwed) return 0;
    if (this.statusIntervalMs === 0) return undefined;
    if (this.#lastSentMs === undefined) return 0;
    return Math.max(0, this.#lastSentMs + this.statusIntervalMs - nowMs);
  }

  /** The values to send now; records the send time and clears an owed reply. */
  take(nowMs: number): StatusUpdateValues {
    this.#lastSentMs = nowMs;
    this.#replyOwed = false;
    return {
      write: this.#received,
      // Until a flush resolved, report none rather than the start point: that would pull a
      // slot's restart_lsn back to the segment start.
      flush: this.reportFlush && this.#flushKnown ? this.#flushed : INVALID_LSN,
      apply: INVALID_LSN,
      replyRequested: false,
    };
  }
}
