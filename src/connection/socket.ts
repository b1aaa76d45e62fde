/**
 * Opening the transport (TCP or Unix socket), the SSLRequest exchange and the TLS
 * upgrade. With startup.ts and pump.ts, the only code that touches sockets.
 * @module
 */
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { nodeTls } from '../builtins.js';
import { ConnectionError, ProtocolError, type PgBackupError } from '../errors.js';
import { sslRequest } from '../protocol/frontend.js';
import type { Writer } from '../protocol/writer.js';
import { isUnixSocketHost, socketPath } from './redact.js';
import type { ResolvedConnectionOptions } from './types.js';

/** What the server is, for messages: `host:port` or the socket path. Never includes secrets. */
export function endpointName(o: Pick<ResolvedConnectionOptions, 'host' | 'hostaddr' | 'port'>): string {
  if (isUnixSocketHost(o.host)) return `socket "${socketPath(o.host, o.port)}"`;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const addr = o.hostaddr !== undefined && o.hostaddr !== '' && o.hostaddr !== o.host ? ` (${o.hostaddr})` : '';
  return `"${host}"${addr}, port ${o.port}`;
}

/** Size of one receive slab: the largest single read from the socket. */
export const READ_SLAB_BYTES = 512 * 1024;
/** A slab whose unused tail is smaller than this is retired and another one is taken. */
export const READ_SLAB_MIN_TAIL_BYTES = 64 * 1024;
/** Retired slabs kept for reuse, at most (the rest are left to the garbage collector). */
export const READ_SLAB_POOL_SIZE = 4;
/**
 * Retired slabs waiting for their bytes to be released, at most: past this the oldest is no longer
 * tracked (left to the garbage collector), so a consumer that stops releasing pins nothing.
 */
const READ_SLAB_MAX_RETIRED = 8;

/** A retired slab and the stream offset past the last of its bytes the framer needs. */
interface RetiredSlab {
  buf: Buffer;
  end: number;
}

/**
 * Receive buffers for a socket created with `onread`: each read goes into the unused tail of a
 * large slab, and the chunk handed out is a view of what the read filled. Node's default stream
 * reads are at most 64 KiB, each into a new buffer; BASE_BACKUP sends CopyData messages of about
 * 32 KiB, so every other message straddled two reads and had to be copied out by the framer, and
 * every read cost an allocation and an event-loop turn. Reads of up to {@link READ_SLAB_BYTES}
 * take what the kernel has buffered in one go, and consecutive reads lie back to back in memory.
 *
 * When a slab is retired, `carry` may move the unfinished message at its end to the start of the
 * next slab (see `Framer.relocatePartial`), so that messages do not straddle slabs either.
 *
 * Slabs are reused only on request: {@link recycle} says that every message framed so far has been
 * released by whoever it was handed to, and retired slabs whose bytes all lie before that point go
 * back to a small pool. A connection whose consumer never calls it allocates a new slab each time,
 * and the views handed out stay valid for as long as anyone holds them. Reuse keeps the memory of a
 * long transfer flat without waiting for the garbage collector to find the dead slabs.
 */
export class ReadSlabs {
  #slab: Buffer = Buffer.alloc(0);
  #used = 0;
  /** Bytes received since the start: the stream offset of the next byte read. */
  #received = 0;
  readonly #retired: RetiredSlab[] = [];
  readonly #free: Buffer[] = [];
  /** recycle() was called: retired slabs are tracked for reuse from then on. */
  #recycling = false;
  readonly #carry: ((into: Buffer) => number) | undefined;

  /** @param carry moves the unread bytes into the start of a fresh slab; returns how many it moved. */
  constructor(carry?: (into: Buffer) => number) {
    this.#carry = carry;
  }

  /** The buffer the next read fills (`onread.buffer`). */
  readonly next = (): Buffer => {
    if (this.#slab.length - this.#used < READ_SLAB_MIN_TAIL_BYTES) {
      // allocUnsafeSlow: a dedicated allocation, not a slice of Node's shared 8 KiB pool.
      const fresh = this.#free.pop() ?? Buffer.allocUnsafeSlow(READ_SLAB_BYTES);
      const moved = this.#carry?.(fresh) ?? 0;
      if (this.#recycling && this.#slab.length > 0) {
        // The moved bytes are read from the fresh slab: the framer needs this one up to them.
        this.#retired.push({ buf: this.#slab, end: this.#received - moved });
        if (this.#retired.length > READ_SLAB_MAX_RETIRED) this.#retired.shift();
      }
      this.#slab = fresh;
      this.#used = moved;
    }
    return this.#slab.subarray(this.#used);
  };

  /** The chunk a read of `n` bytes into `buf` (the last {@link next}) produced. */
  take(n: number, buf: Buffer): Buffer {
    this.#used += n;
    this.#received += n;
    return buf.subarray(0, n);
  }

  /**
   * Every message framed so far, up to stream offset `consumed` (`Framer.consumedBytes`), is
   * released: retired slabs wholly before it are reused for later reads, and views into them
   * must no longer be used.
   */
  recycle(consumed: number): void {
    this.#recycling = true;
    while (this.#retired.length > 0 && this.#retired[0]!.end <= consumed) {
      const { buf } = this.#retired.shift()!;
      if (this.#free.length < READ_SLAB_POOL_SIZE) this.#free.push(buf);
    }
  }
}

/**
 * Create the socket (not yet connected). A host starting with `/` is a socket directory
 * (`<dir>/.s.PGSQL.<port>`), one starting with `@` a Linux abstract socket, as in libpq.
 *
 * With `onChunk`, received bytes go to it through `slabs` (`onread`) and the socket
 * emits no `data` events; `pause()`/`resume()` still stop and restart reading. Only for
 * connections that stay plain: SSLRequest negotiation and TLS read through `data` events.
 */
export function createTransport(o: ResolvedConnectionOptions, onChunk?: (chunk: Buffer) => void, slabs = new ReadSlabs()): net.Socket {
  let onread: net.OnReadOpts | undefined;
  if (onChunk) {
    onread = {
      buffer: slabs.next,
      callback: (n, buf) => {
        onChunk(slabs.take(n, buf as Buffer));
        return true;
      },
    };
  }
  if (isUnixSocketHost(o.host)) {
    const path = socketPath(o.host, o.port);
    return net.connect({ path: path.startsWith('@') ? `\0${path.slice(1)}` : path, ...(onread ? { onread } : {}) });
  }
  const socket = net.connect({ host: o.hostaddr ?? o.host, port: o.port, ...(onread ? { onread } : {}) });
  socket.setNoDelay(true);
  if (o.keepalives) socket.setKeepAlive(true, (o.keepalivesIdleSec ?? 0) * 1000);
  return socket;
}

/** Turn a socket error into a {@link ConnectionError} that names the server and says what to check. */
export function describeSocketError(err: unknown, o: ResolvedConnectionOptions, phase: 'connect' | 'io'): PgBackupError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const reason = e instanceof Error ? e.message : String(err);
  const where = endpointName(o);
  if (phase === 'io') {
    return new ConnectionError(`the connection to the server at ${where} broke: ${reason}`, { cause: err, syscallCode: code });
  }
  let advice: string;
  if (isUnixSocketHost(o.host)) {
    advice =
      'Is the server running locally and accepting connections on that socket? ' +
      'Check unix_socket_directories and port in postgresql.conf, or give host=<server address> to use TCP.';
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    advice = `Could not resolve host name "${o.host}": check the host name and DNS.`;
  } else {
    advice =
      'Is the server running on that host and accepting TCP/IP connections? ' +
      'Check listen_addresses and port in postgresql.conf, and any firewall between here and there.';
  }
  return new ConnectionError(`could not connect to the server at ${where}: ${reason}`, { cause: err, syscallCode: code, advice });
}

/**
 * Send SSLRequest and read the one-byte answer: `true` for 'S', `false` for 'N'.
 * Rejects with ProtocolError when anything but exactly one byte arrives before we speak
 * again: bytes after 'S' would be read as if they had come through TLS (CVE-2021-23222),
 * and bytes after 'N' would be an unencrypted reply injected ahead of our startup packet.
 */
export function negotiateSsl(socket: net.Socket, writer: Writer): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      socket.pause();
      const answer = chunk[0];
      if (chunk.length !== 1) {
        reject(
          new ProtocolError(
            `the server sent ${chunk.length - 1} unexpected byte(s) after its SSLRequest answer; ` +
              'refusing them (they could be injected by a man in the middle, CVE-2021-23222)',
          ),
        );
      } else if (answer === 0x53 /* 'S' */) {
        resolve(true);
      } else if (answer === 0x4e /* 'N' */) {
        resolve(false);
      } else if (answer === 0x45 /* 'E' */) {
        // Pre-7.0 servers answered with an ErrorResponse; no supported server does.
        reject(new ProtocolError('the server answered SSLRequest with an error: it is not PostgreSQL 13 or newer'));
      } else {
        reject(new ProtocolError(`invalid answer 0x${answer!.toString(16).padStart(2, '0')} to SSLRequest`));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new ConnectionError('the server closed the connection in answer to SSLRequest'));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(sslRequest(writer));
    socket.resume();
  });
}

/** Wrap a connected plain socket in TLS and wait for the handshake. */
export function upgradeToTls(socket: net.Socket, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    const secure = nodeTls().connect({ ...options, socket });
    const onError = (err: Error): void => {
      secure.off('secureConnect', onSecure);
      secure.destroy();
      reject(err);
    };
    const onSecure = (): void => {
      secure.off('error', onError);
      resolve(secure);
    };
    secure.once('error', onError);
    secure.once('secureConnect', onSecure);
  });
}
