// Test doubles for the WAL streamer: a scripted ReplicationConnectionApi (START_REPLICATION
// responses are async generators that can wait for our CopyDone) and an in-memory WalSink.
import { AbortError } from '../../../src/errors.js';
import type { QueryResult, ReplicationConnectionApi } from '../../../src/connection/types.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalSink } from '../../../src/wal/sink.js';

/** The byte PostgreSQL would have at WAL position `pos` in our fixtures. */
export function walByte(pos: bigint): number {
  return Number((pos * 7n + (pos >> 9n)) & 0xffn);
}

export function walBytes(start: bigint, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = walByte(start + BigInt(i));
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

/** CopyData carrying XLogData ('w') with the fixture bytes for [start, start+length). */
export function xlogData(start: bigint, length: number, data = walBytes(start, length)): StreamMessage {
  return {
    type: 'CopyData',
    payload: Buffer.concat([Buffer.from([0x77]), u64(start), u64(start + BigInt(length)), u64(0n), data]),
  };
}

/** CopyData carrying PrimaryKeepalive ('k'). */
export function keepalive(walEnd: bigint, replyRequested: boolean): StreamMessage {
  return { type: 'CopyData', payload: Buffer.concat([Buffer.from([0x6b]), u64(walEnd), u64(0n), Buffer.from([replyRequested ? 1 : 0])]) };
}

export const copyBoth: StreamMessage = { type: 'CopyBothResponse', format: 0, columnFormats: [] };
export const copyDone: StreamMessage = { type: 'CopyDone' };
export const commandComplete: StreamMessage = { type: 'CommandComplete', tag: 'START_STREAMING' };

/** The result set walsender sends after a historic timeline. */
export function nextTimelineRows(tli: number, startpos: string): StreamMessage[] {
  return [
    {
      type: 'RowDescription',
      columns: [
        { name: 'next_tli', tableOid: 0, columnAttr: 0, typeOid: 20, typeSize: 8, typeModifier: -1, format: 0 },
        { name: 'next_tli_startpos', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
      ],
    },
    { type: 'DataRow', values: [String(tli), startpos] },
    { type: 'CommandComplete', tag: 'SELECT' },
  ];
}

export interface StatusUpdate {
  write: bigint;
  flush: bigint;
  apply: bigint;
  replyRequested: boolean;
}

export type Script = (conn: FakeConnection) => AsyncGenerator<StreamMessage, void, undefined>;

export class FakeConnection {
  readonly statements: string[] = [];
  readonly queries: string[] = [];
  readonly statusUpdates: StatusUpdate[] = [];
  /** statusUpdates.length seen at each pull of the stream iterator. */
  readonly updatesAtPull: number[] = [];
  copyDoneSent = 0;
  pulls = 0;
  /** Calls of the stream iterator's releaseHandedOut() (the receive buffers may be refilled). */
  releases = 0;
  /** What we sent, in order: 'status' or 'CopyDone'. */
  readonly sent: string[] = [];
  history = new Map<number, string>();
  #copyDoneWaiters: (() => void)[] = [];

  constructor(readonly scripts: Script[]) {}

  get api(): ReplicationConnectionApi {
    return this as unknown as ReplicationConnectionApi;
  }

  waitCopyDone(): Promise<void> {
    if (this.copyDoneSent > 0) return Promise.resolve();
    return new Promise((resolve) => this.#copyDoneWaiters.push(resolve));
  }

  async query(sql: string): Promise<QueryResult[]> {
    this.queries.push(sql);
    const m = /^TIMELINE_HISTORY (\d+)$/.exec(sql);
    const content = m ? this.history.get(Number(m[1])) : undefined;
    if (!m || content === undefined) throw new Error(`unexpected query ${sql}`);
    const name = `${Number(m[1]).toString(16).toUpperCase().padStart(8, '0')}.history`;
    return [
      {
        command: 'TIMELINE_HISTORY',
        columns: [
          { name: 'filename', typeOid: 25 },
          { name: 'content', typeOid: 17 },
        ],
        rows: [[name, content]],
      },
    ];
  }

  stream(sql: string, options?: { signal?: AbortSignal }): AsyncIterableIterator<StreamMessage> {
    this.statements.push(sql);
    this.copyDoneSent = 0;
    const script = this.scripts.shift();
    if (!script) throw new Error(`no script left for ${sql}`);
    return Object.assign(this.#wrap(script(this), options?.signal), {
      releaseHandedOut: () => {
        this.releases++;
      },
    });
  }

  async *#wrap(gen: AsyncGenerator<StreamMessage, void, undefined>, signal: AbortSignal | undefined): AsyncGenerator<StreamMessage> {
    const aborted = new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(new AbortError());
      signal?.addEventListener('abort', () => reject(new AbortError()), { once: true });
    });
    aborted.catch(() => undefined);
    try {
      for (;;) {
        this.pulls++;
        this.updatesAtPull.push(this.statusUpdates.length);
        const r = await Promise.race([gen.next(), aborted]);
        if (r.done) return;
        yield r.value;
      }
    } finally {
      void gen.return(undefined);
    }
  }

  sendCopyData(payload: Buffer): boolean {
    if (payload[0] !== 0x72 || payload.length !== 34) throw new Error('not a StandbyStatusUpdate');
    this.sent.push('status');
    this.statusUpdates.push({
      write: payload.readBigUInt64BE(1),
      flush: payload.readBigUInt64BE(9),
      apply: payload.readBigUInt64BE(17),
      replyRequested: payload[33] === 1,
    });
    return true;
  }

  sendCopyDone(): void {
    this.copyDoneSent++;
    this.sent.push('CopyDone');
    for (const w of this.#copyDoneWaiters.splice(0)) w();
  }
}

interface MemoryFile {
  data: Buffer;
  closedAs?: WalSegmentCloseMode;
}

/** An in-memory WalSink that logs every call except writes. */
export class MemorySink implements WalSink {
  readonly ops: string[] = [];
  readonly files = new Map<string, MemoryFile>();
  writes = 0;
  /** When set, each write waits for it. */
  gate: (() => Promise<void>) | undefined;
  #current: { name: string; buf: Buffer; pos: number } | undefined;

  async openSegment(t: WalSegmentTarget): Promise<void> {
    if (this.#current) throw new Error('segment already open');
    this.ops.push(`open ${t.name}`);
    this.#current = { name: t.name, buf: Buffer.alloc(t.segmentSize), pos: t.startOffset };
  }

  async write(data: Buffer): Promise<void> {
    const c = this.#current;
    if (!c) throw new Error('no open segment');
    if (this.gate) await this.gate();
    if (c.pos + data.length > c.buf.length) throw new Error('write past segment end');
    data.copy(c.buf, c.pos);
    c.pos += data.length;
    this.writes++;
  }

  async flush(): Promise<void> {
    this.ops.push('flush');
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void> {
    const c = this.#current;
    if (!c) throw new Error('no open segment');
    this.#current = undefined;
    this.ops.push(`close ${c.name} ${mode}`);
    this.files.set(c.name, { data: c.buf, closedAs: mode });
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    this.ops.push(`history ${name}`);
    this.files.set(name, { data: Buffer.from(content) });
  }

  async finish(): Promise<void> {
    this.ops.push('finish');
  }

  async abort(): Promise<void> {
    this.ops.push('abort');
  }
}
