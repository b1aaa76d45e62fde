/**
 * The one reader of the BASE_BACKUP response: it reads the connection only when a consumer
 * asks for the next event, feeds each message to the {@link BaseBackupResponseParser} and hands
 * out its events in order, so nothing is buffered beyond one message. Every event goes through
 * the session's `observe` hook first, whoever pulled it.
 * @module
 */
import type { BufferedMessages } from '../connection/connection.js';
import { ConnectionClosedError, PgBackupError, ServerError } from '../errors.js';
import { SqlState } from '../protocol/codes.js';
import type { StreamMessage } from '../protocol/messages.js';
import { asError, type FailureLatch } from './failure.js';
import type { BackupResponseEvent, BaseBackupResponseParser } from './response.js';

/** What {@link ResponsePump.nextNow} returns when the caller has to wait. @internal */
export const PENDING = Symbol('pending');
/** Nothing queued, a message must be read. */
const NONE_QUEUED = Symbol('none queued');

/** The session's side of the pump. @internal */
export interface PumpHooks {
  latch: FailureLatch;
  /** Fail the session (destroying both connections). */
  fail(error: Error): void;
  /** Side effects of every event, whoever pulled it. */
  observe(event: BackupResponseEvent): void;
}

/** Serialized pulls of BASE_BACKUP response events. @internal */
export class ResponsePump {
  readonly #iter: AsyncIterator<unknown>;
  readonly #parser: BaseBackupResponseParser;
  readonly #hooks: PumpHooks;
  /** The connection iterator's `takeBuffered()`, when it has one (see `BufferedMessages`). */
  readonly #takeBuffered: (() => IteratorResult<unknown> | undefined) | undefined;
  /** The connection iterator's `releaseHandedOut()`, when it has one. */
  readonly #releaseHandedOut: (() => void) | undefined;
  /** {@link next} calls not yet settled: the synchronous path waits behind them. */
  #pulling = 0;
  readonly #queue: BackupResponseEvent[] = [];
  #ended = false;
  #busy: Promise<void> = Promise.resolve();
  #corruption: ServerError | undefined;

  constructor(iter: AsyncIterator<unknown>, parser: BaseBackupResponseParser, hooks: PumpHooks) {
    this.#iter = iter;
    this.#parser = parser;
    this.#hooks = hooks;
    const take = (iter as Partial<BufferedMessages>).takeBuffered;
    if (typeof take === 'function') this.#takeBuffered = take;
    const release = (iter as Partial<BufferedMessages>).releaseHandedOut;
    if (typeof release === 'function') this.#releaseHandedOut = release;
  }

  /** The response is complete (or ended with a page checksum failure). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * The ERRCODE_DATA_CORRUPTED error the server sent in place of its final CommandComplete:
   * every byte arrived, but the server found page checksum failures.
   */
  get corruption(): ServerError | undefined {
    return this.#corruption;
  }

  /** The next response event, or undefined once the response is complete. Serialized. */
  next(): Promise<BackupResponseEvent | undefined> {
    this.#pulling++;
    const run = this.#busy.then(() => this.#pull());
    this.#busy = run.then(
      () => {
        this.#pulling--;
      },
      () => {
        this.#pulling--;
      },
    );
    return run;
  }

  /**
   * The next response event if it is at hand without waiting (queued, or parsed from a message the
   * connection has buffered whole), undefined once the response is complete, {@link PENDING} when
   * the caller must await {@link next}. Most CopyData messages of a backup arrive many to a
   * socket read, so this spares the promises of the pump for all but the first of them.
   */
  nextNow(): BackupResponseEvent | undefined | typeof PENDING {
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
   * Every event handed out so far is done with, its data views included (see
   * `BufferedMessages.releaseHandedOut`). Ignored while a pull is under way or a data event waits
   * in the queue: their views were taken from the receive buffers but not yet handed out.
   */
  release(): void {
    if (this.#releaseHandedOut === undefined || this.#pulling > 0) return;
    for (const ev of this.#queue) if (ev.type === 'archive-data' || ev.type === 'manifest-data') return;
    this.#releaseHandedOut();
  }

  /**
   * The next queued event (observed), undefined once the response is complete, {@link NONE_QUEUED}
   * when a message must be read first. Throws the session's failure.
   */
  #dequeue(): BackupResponseEvent | undefined | typeof NONE_QUEUED {
    this.#hooks.latch.throwIfFailed();
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      this.#hooks.observe(queued);
      return queued;
    }
    return this.#ended ? undefined : NONE_QUEUED;
  }

  async #pull(): Promise<BackupResponseEvent | undefined> {
    for (;;) {
      const queued = this.#dequeue();
      if (queued !== NONE_QUEUED) return queued;
      let r: IteratorResult<unknown>;
      try {
        r = await this.#hooks.latch.guard(this.#iter.next());
      } catch (err) {
        this.#onResponseError(err);
        return undefined;
      }
      this.#accept(r);
    }
  }

  /** A message of the response (or its end) into the parser; its events go to the queue. */
  #accept(r: IteratorResult<unknown>): void {
    try {
      if (r.done) {
        this.#ended = true;
        this.#parser.finish();
        return;
      }
      for (const ev of this.#parser.push(r.value as StreamMessage)) this.#queue.push(ev);
    } catch (err) {
      this.#hooks.fail(asError(err));
      throw err;
    }
  }

  /**
   * The response iterator failed. Returns (the response is then over) only for a page checksum
   * failure reported in place of the final CommandComplete; throws anything else, the session failed.
   */
  #onResponseError(err: unknown): void {
    this.#hooks.latch.throwIfFailed();
    if (err instanceof ServerError && err.sqlState === SqlState.DataCorrupted && this.#parser.state === 'completion') {
      // basebackup.c: after the end row, ERRCODE_DATA_CORRUPTED in place of CommandComplete.
      // Every byte arrived; the backup is complete but untrustworthy.
      this.#ended = true;
      this.#corruption = err;
      return;
    }
    const error = err instanceof PgBackupError ? err : new ConnectionClosedError('the backup connection failed', { cause: err });
    this.#hooks.fail(error);
    throw error;
  }
}
