/**
 * A scripted PostgreSQL server for connection unit tests: a TCP listener that reads the
 * client's frontend messages (startup packet first) and lets each test answer with the
 * backend-message fixture builders.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { build } from '../fixtures/backend-messages.js';

/** One message from the client: `type` is '' for untyped startup-phase packets. */
export interface ClientMessage {
  type: string;
  body: Buffer;
}

/** The server end of one client connection. */
export class FakeClient {
  private buf = Buffer.alloc(0);
  private untyped = true;
  private waiters: (() => void)[] = [];
  closed = false;
  readonly received: ClientMessage[] = [];

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.flush();
    });
    socket.on('error', () => {});
  }

  private flush(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private parse(): void {
    for (;;) {
      if (this.untyped) {
        if (this.buf.length < 4) break;
        const len = this.buf.readInt32BE(0);
        if (this.buf.length < len) break;
        const body = this.buf.subarray(4, len);
        this.buf = this.buf.subarray(len);
        this.received.push({ type: '', body });
        // After SSLRequest another untyped packet (the startup message) follows.
        if (body.readInt32BE(0) !== 80877103) this.untyped = false;
      } else {
        if (this.buf.length < 5) break;
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < len + 1) break;
        this.received.push({ type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, len + 1) });
        this.buf = this.buf.subarray(len + 1);
      }
    }
    this.flush();
  }

  /** Wait for the next message from the client (null if it closed). */
  async next(): Promise<ClientMessage | null> {
    for (;;) {
      const m = this.received.shift();
      if (m) return m;
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Send bytes. */
  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** Answer the startup packet with trust auth and a ready connection, then `SHOW server_version_num`. */
  async acceptTrust(versionNum = 170002): Promise<Buffer> {
    const startup = await this.next();
    this.send(
      build.authOk(),
      build.parameterStatus('server_version', `${Math.floor(versionNum / 10000)}.2`),
      build.backendKeyData(4242, Buffer.from([1, 2, 3, 4])),
      build.readyForQuery(),
    );
    await this.answerShowVersion(versionNum);
    return startup!.body;
  }

  /** Answer the `SHOW server_version_num` the client sends after startup. */
  async answerShowVersion(versionNum = 170002): Promise<void> {
    const q = await this.next();
    if (q?.type !== 'Q' || !q.body.toString().startsWith('SHOW server_version_num')) {
      throw new Error(`expected SHOW server_version_num, got ${q?.type} ${q?.body.toString()}`);
    }
    this.send(
      build.rowDescription([{ name: 'server_version_num', typeOid: 25 }]),
      build.dataRow([String(versionNum)]),
      build.commandComplete('SHOW'),
      build.readyForQuery(),
    );
  }
}

/** A listening fake server; `clients` yields each accepted connection. */
export class FakeServer {
  private pending: FakeClient[] = [];
  private waiters: ((c: FakeClient) => void)[] = [];
  readonly all: FakeClient[] = [];
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (s) => {
      const c = new FakeClient(s);
      this.all.push(c);
      const w = this.waiters.shift();
      if (w) w(c);
      else this.pending.push(c);
    });
  }

  static async start(): Promise<FakeServer> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    return new FakeServer(server, addr.port);
  }

  /** The next client connection. */
  accept(): Promise<FakeClient> {
    const c = this.pending.shift();
    if (c) return Promise.resolve(c);
    return new Promise((r) => this.waiters.push(r));
  }

  async close(): Promise<void> {
    for (const c of this.all) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
