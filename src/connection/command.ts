/**
 * The command iterator: the response to one simple Query, message by message, with one handler
 * per backend message named as the protocol documentation names it ("Message Flow: Simple
 * Query", "COPY Operations"). The handlers keep the connection state machine in step with the
 * COPY directions the server opens and closes.
 * @module
 * @internal
 */
import { AbortError, ConfigError, PgBackupError, ServerError, StateError, type ServerMessageFields } from '../errors.js';
import * as fe from '../protocol/frontend.js';
import type {
  BackendMessage,
  CommandCompleteMessage,
  CopyDataMessage,
  CopyDoneMessage,
  CopyResponseMessage,
  DataRowMessage,
  EmptyQueryResponseMessage,
  ErrorResponseMessage,
  RowDescriptionMessage,
  StreamMessage,
} from '../protocol/messages.js';
import type { MessagePump } from './pump.js';
import type { QueryResult } from './types.js';

/**
 * Also offered by the iterator `ReplicationConnection.stream` returns (not part of the public
 * API): the next result if it needs no waiting, i.e. a whole message is already buffered (or the
 * iteration is over); undefined when the caller must use `next()`, which it must also do while a
 * `next()` is pending. Throws as `next()` would reject.
 * @internal
 */
export interface BufferedMessages {
  takeBuffered(): IteratorResult<StreamMessage> | undefined;
  /**
   * Every message handed out so far (CopyData payloads included) is no longer used, by the caller
   * or anyone it passed them to: the receive buffers behind them may be refilled. Without this call
   * the messages stay valid for as long as they are referenced.
   */
  releaseHandedOut(): void;
}

/** The reason an aborted `signal` gives, as a coded error. */
export function abortReason(signal: AbortSignal, what: string): PgBackupError {
  const r: unknown = signal.reason;
  if (r instanceof PgBackupError) return r;
  return new AbortError(`${what} was aborted`, { cause: r });
}

/** Whether an ErrorResponse ends the session (the server closes the connection after it). */
export function isFatal(fields: ServerMessageFields): boolean {
  const s = fields.severityCode ?? fields.severity;
  return s === 'FATAL' || s === 'PANIC';
}

const ENDED: IteratorResult<StreamMessage> = { done: true, value: undefined };

/**
 * The iterator `stream()` returns: an async iterator written out rather than an async generator,
 * so that it can also hand out, without a promise each, the messages already whole in the receive
 * buffer (`takeBuffered()`, which the backup session uses for BASE_BACKUP's thousands of CopyData
 * messages). Leaving it before ReadyForQuery destroys the connection: the protocol cannot stop a
 * running command cleanly.
 */
export class CommandIterator implements AsyncIterableIterator<StreamMessage>, BufferedMessages {
  readonly #pump: MessagePump;
  readonly #signal: AbortSignal | undefined;
  #started = false;
  /** The iteration is over: ended, failed or left. */
  #finished = false;
  /** ReadyForQuery arrived. */
  #done = false;
  /** The first ErrorResponse; thrown once ReadyForQuery arrives. */
  #serverError: ServerError | undefined;
  /** The latest next() still pending. */
  #last: Promise<unknown> | undefined;
  /** The server sent CopyDone in this command. */
  #serverCopyDone = false;
  readonly #onAbort = (): void => this.#pump.destroy(abortReason(this.#signal!, 'the command'));

  /** Call after the Query message went out (the pump is `busy`). */
  constructor(pump: MessagePump, signal: AbortSignal | undefined) {
    this.#pump = pump;
    this.#signal = signal;
  }

  // next(), takeBuffered() and releaseHandedOut() are bound: callers keep them apart from the
  // iterator (the backup session holds them alone).
  readonly next = (): Promise<IteratorResult<StreamMessage>> => {
    // As with an async generator, a call made while another is pending runs after it.
    const pull = (): Promise<IteratorResult<StreamMessage>> => this.#pull();
    const p = this.#last === undefined ? pull() : this.#last.then(pull, pull);
    this.#last = p;
    const clear = (): void => {
      if (this.#last === p) this.#last = undefined;
    };
    p.then(clear, clear);
    return p;
  };

  readonly takeBuffered = (): IteratorResult<StreamMessage> | undefined => {
    if (this.#finished) return ENDED;
    if (this.#last !== undefined) return undefined;
    this.#start();
    try {
      for (;;) {
        const m = this.#pump.nextBuffered();
        if (m === undefined) return undefined;
        const r = this.#handle(m);
        if (r !== undefined) return r;
      }
    } catch (err) {
      this.#finish();
      throw err;
    }
  };

  readonly releaseHandedOut = (): void => {
    this.#pump.releaseReceived();
  };

  return(value?: unknown): Promise<IteratorResult<StreamMessage>> {
    this.#finish();
    return Promise.resolve({ done: true, value: value as undefined });
  }

  throw(err?: unknown): Promise<IteratorResult<StreamMessage>> {
    this.#finish();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (!this.#done && !this.#pump.destroyed) {
      this.#pump.destroy(
        new AbortError(
          'the command was not read to its end (stream() left early); ' +
            'the connection was closed because the protocol cannot stop a running command cleanly',
        ),
      );
    }
  }

  async #pull(): Promise<IteratorResult<StreamMessage>> {
    if (this.#finished) return ENDED;
    this.#start();
    try {
      for (;;) {
        const r = this.#handle(await this.#pump.next());
        if (r !== undefined) return r;
      }
    } catch (err) {
      this.#finish();
      throw err;
    }
  }

  /** One message in: the result to hand out, or undefined for a message the consumer does not see. */
  #handle(m: BackendMessage): IteratorResult<StreamMessage> | undefined {
    switch (m.type) {
      case 'CopyData':
        return this.#CopyData(m);
      case 'DataRow':
        return this.#DataRow(m);
      case 'RowDescription':
        return this.#RowDescription(m);
      case 'CommandComplete':
        return this.#CommandComplete(m);
      case 'EmptyQueryResponse':
        return this.#EmptyQueryResponse(m);
      case 'CopyInResponse':
        return this.#CopyInResponse(m);
      case 'CopyOutResponse':
        return this.#CopyOutResponse(m);
      case 'CopyBothResponse':
        return this.#CopyBothResponse(m);
      case 'CopyDone':
        return this.#CopyDone(m);
      case 'ErrorResponse':
        return this.#ErrorResponse(m);
      case 'ReadyForQuery':
        return this.#ReadyForQuery();
      case 'NotificationResponse':
        return undefined; // LISTEN is not a replication command; nothing to tell.
      default:
        throw this.#pump.unexpected(m, 'a command');
    }
  }

  #CopyData(m: CopyDataMessage): IteratorResult<StreamMessage> | undefined {
    if (!this.#pump.recvOpen) {
      // A walsender that sent CopyDone (end of a historic timeline) still answers a status update that
      // crossed it and asked for a reply, with a keepalive, until it reads our CopyDone: dropped, as libpq does.
      if (this.#serverCopyDone) return undefined;
      throw this.#pump.unexpected(m, `a command in state ${this.#pump.state}`);
    }
    return { done: false, value: m };
  }

  #DataRow(m: DataRowMessage): IteratorResult<StreamMessage> {
    return { done: false, value: m };
  }

  #RowDescription(m: RowDescriptionMessage): IteratorResult<StreamMessage> {
    return { done: false, value: m };
  }

  #CommandComplete(m: CommandCompleteMessage): IteratorResult<StreamMessage> {
    this.#pump.setCopy(false, false);
    return { done: false, value: m };
  }

  #EmptyQueryResponse(m: EmptyQueryResponseMessage): IteratorResult<StreamMessage> {
    return { done: false, value: m };
  }

  #CopyInResponse(m: CopyResponseMessage): IteratorResult<StreamMessage> {
    this.#pump.setCopy(this.#pump.recvOpen, true);
    return { done: false, value: m };
  }

  #CopyOutResponse(m: CopyResponseMessage): IteratorResult<StreamMessage> {
    this.#pump.setCopy(true, this.#pump.sendOpen);
    return { done: false, value: m };
  }

  #CopyBothResponse(m: CopyResponseMessage): IteratorResult<StreamMessage> {
    this.#pump.setCopy(true, true);
    return { done: false, value: m };
  }

  /** CopyDone from the server: it sends no more CopyData; we may still send ours (copy-both). */
  #CopyDone(m: CopyDoneMessage): IteratorResult<StreamMessage> {
    this.#serverCopyDone = true;
    this.#pump.setCopy(false, this.#pump.sendOpen);
    return { done: false, value: m };
  }

  #ErrorResponse(m: ErrorResponseMessage): undefined {
    const err = new ServerError(m.fields);
    if (isFatal(m.fields)) {
      // The server closes the connection after a FATAL; no ReadyForQuery will come.
      this.#pump.destroy(err);
      throw err;
    }
    // The command failed; ReadyForQuery follows, and the error is thrown then.
    this.#serverError ??= err;
    this.#pump.setCopy(false, false);
    return undefined;
  }

  #ReadyForQuery(): IteratorResult<StreamMessage> {
    this.#done = true;
    this.#pump.endCommand();
    if (this.#serverError !== undefined) throw this.#serverError;
    this.#finish();
    return ENDED;
  }
}

/**
 * Send `sql` as a simple Query and return the iterator over its response.
 * @throws StateError synchronously when another command is running or the connection is closed.
 */
export function startCommand(pump: MessagePump, sql: string, signal: AbortSignal | undefined): AsyncIterableIterator<StreamMessage> {
  pump.assertState(['ready'], 'stream()');
  if (sql.includes('\0')) throw new ConfigError('a command cannot contain a NUL character');
  if (signal?.aborted) {
    const err = abortReason(signal, 'the command');
    // Nothing was sent: the connection stays ready.
    // biome-ignore lint/correctness/useYield: an iterator whose first pull fails.
    return (async function* aborted(): AsyncGenerator<StreamMessage> {
      throw err;
    })();
  }
  pump.write(fe.query(pump.writer, sql));
  pump.beginCommand();
  return new CommandIterator(pump, signal);
}

/** Every result set of a command's response; a command that starts a COPY is refused. */
export async function collectResults(messages: AsyncIterable<StreamMessage>, sql: string): Promise<QueryResult[]> {
  const results: QueryResult[] = [];
  let current: QueryResult | undefined;
  for await (const m of messages) {
    switch (m.type) {
      case 'RowDescription':
        current = { command: '', columns: m.columns.map((c) => ({ name: c.name, typeOid: c.typeOid })), rows: [] };
        break;
      case 'DataRow':
        (current ??= { command: '', columns: [], rows: [] }).rows.push(m.values);
        break;
      case 'CommandComplete':
        (current ??= { command: '', columns: [], rows: [] }).command = m.tag;
        results.push(current);
        current = undefined;
        break;
      case 'CopyInResponse':
      case 'CopyOutResponse':
      case 'CopyBothResponse':
        // Leaving the loop destroys the connection: there is no clean way back from a COPY here.
        throw new StateError(`"${sql.slice(0, 40)}" started a COPY (${m.type}); use stream() for such commands`);
      default:
        break;
    }
  }
  return results;
}
