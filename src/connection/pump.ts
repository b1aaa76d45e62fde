/**
 * The message pump of one connection: it owns the socket, the connection state machine, the
 * receive buffer with its backpressure, and the two messages the server may send at any time
 * (NoticeResponse, ParameterStatus). Start-up (startup.ts, authenticate.ts) and the command
 * iterator (command.ts) pull typed messages from it one at a time.
 *
 * State machine (a call in a state that does not allow it throws {@link StateError}):
 *
 * ```
 * connecting ─► authenticating ─► ready ⇄ busy ⇄ copy-out | copy-in | copy-both
 *      │               │            │                     │
 *      └───────────────┴────────────┴── closing ──► closed ◄┘  (destroy(): any state ─► closed)
 * ```
 *
 * Incoming bytes are framed lazily: a message is parsed only when the current operation pulls it,
 * and the socket is paused while more than `highWaterMarkBytes` wait unread, so a slow consumer
 * slows the server down.
 * @module
 * @internal
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { ConnectionClosedError, ProtocolError, ServerError, StateError } from '../errors.js';
import { Framer } from '../protocol/framer.js';
import * as fe from '../protocol/frontend.js';
import type { BackendMessage, NoticeResponseMessage, ParameterStatusMessage } from '../protocol/messages.js';
import { parseMessage } from '../protocol/parser.js';
import { Writer } from '../protocol/writer.js';
import { describeSocketError, endpointName, ReadSlabs } from './socket.js';
import { describeTlsError } from './tls.js';
import type { ConnectionState, ResolvedConnectionOptions } from './types.js';

/** Tuning knobs of `ReplicationConnection.connect` that are not libpq options. */
export interface ConnectionTuning {
  /**
   * Pause reading the socket once this many received bytes wait unread; resume below half of it.
   * @default 1048576 (1 MiB)
   */
  highWaterMarkBytes?: number;
  /**
   * How long `ReplicationConnection.close` waits for the server to close its end after
   * Terminate before destroying the socket.
   * @default 5000
   */
  closeTimeoutMs?: number;
}

const COPY_STATES = ['copy-out', 'copy-in', 'copy-both'] as const;

/** Every legal move of the state machine drawn in the module documentation. */
const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  connecting: ['authenticating', 'closing', 'closed'],
  authenticating: ['ready', 'closing', 'closed'],
  ready: ['busy', 'closing', 'closed'],
  busy: ['busy', ...COPY_STATES, 'ready', 'closing', 'closed'],
  'copy-out': ['busy', ...COPY_STATES, 'ready', 'closing', 'closed'],
  'copy-in': ['busy', ...COPY_STATES, 'ready', 'closing', 'closed'],
  'copy-both': ['busy', ...COPY_STATES, 'ready', 'closing', 'closed'],
  closing: ['closed'],
  closed: ['closed'],
};

/** One connection's socket, state and receive buffer. Internal: users hold a `ReplicationConnection`. */
export class MessagePump {
  /** The resolved options in use. Contains the password if one was given: never print it whole. */
  readonly options: ResolvedConnectionOptions;
  /** Shared by the frontend messages this connection sends (one writer per connection, not per module). */
  readonly writer = new Writer();
  readonly events = new EventEmitter();
  /** ParameterStatus values reported by the server. */
  readonly parameters = new Map<string, string>();
  /** BackendKeyData process id, set at start-up. */
  backendPid = 0;
  /** `server_version_num`, set at start-up. */
  serverVersionNum = 0;

  #state: ConnectionState = 'connecting';
  #socket: net.Socket | tls.TLSSocket | undefined;
  #tlsSocket: tls.TLSSocket | undefined;
  readonly #framer = new Framer();
  /** The receive buffers of a plain socket (`onread`); see {@link releaseReceived}. */
  readonly slabs = new ReadSlabs((into) => this.#framer.relocatePartial(into));
  readonly #highWater: number;
  readonly #closeTimeoutMs: number;
  #paused = false;
  #wake: (() => void) | undefined;
  /** Why the connection can no longer be used; pending operations reject with it. */
  #closedError: Error | undefined;
  /** Set by destroy(): buffered messages are dropped at once. */
  #destroyed = false;
  /** What the 'close' event reports (undefined for a clean close). */
  #closeReason: Error | undefined;
  #closeEmitted = false;
  #closing: Promise<void> | undefined;
  #socketClosed = false;
  /** The server may still send CopyData (CopyOutResponse or CopyBothResponse, no CopyDone yet). */
  #recvOpen = false;
  /** We may still send CopyData (CopyInResponse or CopyBothResponse, no CopyDone/CopyFail yet). */
  #sendOpen = false;

  constructor(options: ResolvedConnectionOptions, tuning: ConnectionTuning) {
    this.options = options;
    this.#highWater = tuning.highWaterMarkBytes ?? 1024 * 1024;
    this.#closeTimeoutMs = tuning.closeTimeoutMs ?? 5000;
    // Nobody may be listening when an unsolicited error arrives; never let EventEmitter throw it.
    this.events.on('error', () => {});
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Move the state machine; a move it does not draw is a bug in this library. */
  transition(to: ConnectionState): void {
    if (!TRANSITIONS[this.#state].includes(to)) {
      throw new StateError(`internal error: a connection cannot go from ${this.#state} to ${to}`);
    }
    this.#state = to;
  }

  /** Throw {@link StateError} unless the connection is in one of `allowed`. */
  assertState(allowed: readonly ConnectionState[], what: string): void {
    if (allowed.includes(this.#state)) return;
    if (this.#state === 'closed' || this.#state === 'closing') {
      throw new StateError(`${what} called on a ${this.#state} connection`);
    }
    throw new StateError(
      `${what} is not allowed while the connection is ${this.#state}` +
        (this.#state === 'busy' || this.#state.startsWith('copy') ? ' (one command at a time: finish the current one first)' : ''),
    );
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.#tlsSocket;
  }

  /** Why the connection can no longer be used, once it cannot. */
  get closedError(): Error | undefined {
    return this.#closedError;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  get sendOpen(): boolean {
    return this.#sendOpen;
  }

  get recvOpen(): boolean {
    return this.#recvOpen;
  }

  /**
   * Record which directions of a COPY are open and derive the state from them (copy-out,
   * copy-in, copy-both, or busy when neither). A closing or closed connection stays so.
   */
  setCopy(recvOpen: boolean, sendOpen: boolean): void {
    this.#recvOpen = recvOpen;
    this.#sendOpen = sendOpen;
    if (this.#state === 'closed' || this.#state === 'closing') return;
    this.transition(recvOpen && sendOpen ? 'copy-both' : recvOpen ? 'copy-out' : sendOpen ? 'copy-in' : 'busy');
  }

  /** A command was sent: no COPY is open yet. */
  beginCommand(): void {
    this.transition('busy');
    this.#recvOpen = false;
    this.#sendOpen = false;
  }

  /** ReadyForQuery ended the command. */
  endCommand(): void {
    this.#recvOpen = false;
    this.#sendOpen = false;
    if (this.#state !== 'closing' && this.#state !== 'closed') this.transition('ready');
  }

  // ---------------------------------------------------------------- socket

  /** Use `socket` from now on (the TCP socket, then possibly the TLS socket wrapping it). */
  attach(socket: net.Socket, isTls: boolean): void {
    this.#socket = socket;
    if (isTls) this.#tlsSocket = socket as tls.TLSSocket;
    this.#watch(socket);
  }

  #watch(socket: net.Socket): void {
    socket.on('error', (err: Error) => {
      if (this.#closedError !== undefined) return;
      this.#closedError =
        this.#tlsSocket !== undefined && socket === this.#tlsSocket && this.#state === 'connecting'
          ? describeTlsError(err, this.options)
          : describeSocketError(err, this.options, this.#state === 'connecting' ? 'connect' : 'io');
      this.#closeReason ??= this.#closedError;
    });
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      this.#socketClosed = true;
      if (this.#closedError === undefined) {
        const unsolicited = this.#state === 'ready' ? this.#drainUnsolicitedError() : undefined;
        // The stream stopped inside a message: say where, since it was cut rather than ended.
        const partial = this.#framer.describePartial();
        this.#closedError =
          unsolicited ??
          new ConnectionClosedError(
            this.#state === 'closing'
              ? 'the connection was closed'
              : `the server at ${endpointName(this.options)} closed the connection unexpectedly ` +
                  '(it may have been shut down or the walsender terminated; see the server log)' +
                  (partial === undefined ? '' : `, in the middle of a message (received ${partial})`),
          );
        if (this.#state !== 'closing') this.#closeReason ??= this.#closedError;
      }
      this.transition('closed');
      this.#wakeUp();
      this.#emitClose();
    });
  }

  /** When the server closes an idle connection it usually says why in a FATAL ErrorResponse. */
  #drainUnsolicitedError(): ServerError | undefined {
    try {
      for (let f; (f = this.#framer.pull()); ) {
        const m = parseMessage(f);
        if (m.type === 'NoticeResponse') this.#NoticeResponse(m);
        if (m.type === 'ErrorResponse') return new ServerError(m.fields);
      }
    } catch {
      // The stream is dead anyway; the generic message will do.
    }
    return undefined;
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.events.emit('close', this.#closeReason);
  }

  /** Bytes from the socket. */
  receive(chunk: Buffer): void {
    if (this.#destroyed || this.#closing !== undefined) return;
    this.#framer.push(chunk);
    if (!this.#paused && this.#framer.bufferedBytes >= this.#highWater) {
      this.#paused = true;
      this.#socket?.pause();
    }
    this.#wakeUp();
  }

  /**
   * Every message handed out so far is no longer used by anyone (not held, not queued in a stream
   * that has not written it): the receive buffers they lie in may be refilled with later bytes.
   * Only a consumer that knows this may call it; without it, messages stay valid while referenced.
   */
  releaseReceived(): void {
    this.slabs.recycle(this.#framer.consumedBytes);
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#socket?.resume();
    }
  }

  /** Send bytes; throws the reason when the connection can no longer be written to. */
  write(buf: Buffer): boolean {
    const s = this.#socket;
    if (s === undefined || this.#closedError !== undefined || s.destroyed) {
      throw this.#closedError ?? new ConnectionClosedError('the connection is closed');
    }
    return s.write(buf);
  }

  // ---------------------------------------------------------------- messages in

  /**
   * The next message for the current operation if a whole one is buffered, else undefined (nothing
   * is awaited). NoticeResponse and ParameterStatus are handled here, in order, whatever the state,
   * so they are never lost.
   */
  nextBuffered(): BackendMessage | undefined {
    for (;;) {
      if (this.#destroyed || this.#closing !== undefined) {
        throw this.#closedError ?? new ConnectionClosedError('the connection was destroyed');
      }
      let msg: BackendMessage | undefined;
      try {
        const frame = this.#framer.pull();
        if (frame === null) return undefined;
        msg = parseMessage(frame);
      } catch (err) {
        this.destroy(err as Error);
        throw err;
      }
      if (this.#paused && this.#framer.bufferedBytes <= this.#highWater / 2) this.#resume();
      if (msg.type === 'NoticeResponse') this.#NoticeResponse(msg);
      else if (msg.type === 'ParameterStatus') this.#ParameterStatus(msg);
      else return msg;
    }
  }

  /** The next message for the current operation, waiting for the socket when none is buffered. */
  async next(): Promise<BackendMessage> {
    for (;;) {
      const msg = this.nextBuffered();
      if (msg !== undefined) return msg;
      if (this.#closedError !== undefined && this.#socketClosed) throw this.#closedError;
      // Nothing whole is buffered: read on even above the high-water mark (one big message).
      this.#resume();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** NoticeResponse: a `notice` event, never dropped. */
  #NoticeResponse(m: NoticeResponseMessage): void {
    this.events.emit('notice', m.fields);
  }

  /** ParameterStatus: remembered, and a `parameter` event once start-up is over. */
  #ParameterStatus(m: ParameterStatusMessage): void {
    this.parameters.set(m.name, m.value);
    if (this.#state !== 'authenticating' && this.#state !== 'connecting') {
      this.events.emit('parameter', m.name, m.value);
    }
  }

  /** A message the current operation cannot take: the stream is out of step, so it is torn down. */
  unexpected(m: BackendMessage, during: string): ProtocolError {
    const err = new ProtocolError(`unexpected ${m.type} message during ${during}`);
    this.destroy(err);
    return err;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Resolves when the socket's write buffer has drained; rejects if the connection closes first. */
  drained(): Promise<void> {
    const s = this.#socket;
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    if (s === undefined || !s.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        s.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        s.off('drain', onDrain);
        reject(this.#closedError ?? new ConnectionClosedError('the connection closed while waiting for the write buffer to drain'));
      };
      s.once('drain', onDrain);
      s.once('close', onClose);
    });
  }

  /** Terminate and close; see `ReplicationConnection.close`. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const s = this.#socket;
    if (this.#state === 'closed' || s === undefined || this.#socketClosed) {
      this.transition('closed');
      this.#emitClose();
      return (this.#closing = Promise.resolve());
    }
    const idle = this.#state === 'ready';
    this.transition('closing');
    this.#closedError ??= new ConnectionClosedError(
      idle ? 'the connection was closed by close()' : 'the connection was closed by close() while a command was running',
    );
    this.#closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => s.destroy(), idle ? this.#closeTimeoutMs : Math.min(this.#closeTimeoutMs, 1000));
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!idle) s.once('finish', () => s.destroy());
      try {
        s.end(fe.terminate(this.writer));
      } catch {
        s.destroy();
      }
      // Read on to see the server's end of the connection; what arrives now is dropped.
      this.#resume();
    });
    this.#wakeUp();
    return this.#closing;
  }

  /** Close at once, without Terminate; see `ReplicationConnection.destroy`. */
  destroy(error?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closedError ??= error ?? new ConnectionClosedError('the connection was destroyed');
    if (error !== undefined) this.#closeReason ??= error;
    this.transition('closed');
    const s = this.#socket;
    if (s === undefined || this.#socketClosed || (s.destroyed && s.closed)) {
      this.#emitClose();
    } else {
      s.destroy();
    }
    this.#wakeUp();
  }
}
