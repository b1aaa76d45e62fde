// The session driven by a scripted connection (no server): ordering, lock step, skipping,
// checksum failures, abort, WAL spool, slot handling.
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { BackupDeps, BackupWalStreamParams } from '../../../src/backup/deps.js';
import { startBackupWith, type BackupSession } from '../../../src/backup/session.js';
import type { BaseBackupOptions } from '../../../src/backup/options.js';
import type { ReplicationConnectionApi, ServerNotice } from '../../../src/connection/types.js';
import { type ChecksumFailureError, ServerError } from '../../../src/errors.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { readBody } from '../../../src/tar/extract.js';
import { deferred, settle } from '../helpers/deferred.js';
import { chunked } from '../helpers/splits.js';
import { bytes, legacyResponse, modernResponse, type FixtureTablespace } from './fixtures.js';

// --- a tiny tar builder for fixture archives ------------------------------------------------
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000600\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.fill(0x20, 148, 156);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
function tar(files: [string, Buffer][], terminated: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of files) {
    parts.push(tarHeader(name, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (terminated) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// --- fake connection ------------------------------------------------------------------------
interface Script {
  messages: StreamMessage[];
  /** Notices emitted right before the message at that index is yielded. */
  notices?: Map<number, ServerNotice[]>;
  /** Thrown (as stream() does after ReadyForQuery) once the messages are exhausted. */
  finalError?: Error;
}

class FakeConnection extends EventEmitter implements ReplicationConnectionApi {
  state = 'ready' as const;
  serverVersionNum: number;
  serverMajor: number;
  backendPid: number;
  parameters = new Map<string, string>();
  options = {} as ReplicationConnectionApi['options'];
  pulled = 0;
  closed = false;
  destroyedWith: Error | undefined;
  commands: string[] = [];
  #abort = new AbortController();

  constructor(
    major: number,
    pid: number,
    private readonly script: Script | undefined,
  ) {
    super();
    this.serverMajor = major;
    this.serverVersionNum = major * 10000 + 2;
    this.backendPid = pid;
  }
  async query(sql: string): Promise<never> {
    throw new Error(`unexpected query ${sql}`);
  }
  stream(sql: string): AsyncIterableIterator<StreamMessage> {
    this.commands.push(sql);
    const self = this;
    const script = this.script!;
    async function* gen(): AsyncGenerator<StreamMessage> {
      for (let i = 0; i < script.messages.length; i++) {
        await new Promise((r) => setImmediate(r));
        if (self.destroyedWith) throw self.destroyedWith;
        for (const n of script.notices?.get(i) ?? []) self.emit('notice', n);
        self.pulled = i + 1;
        yield script.messages[i]!;
      }
      if (script.finalError) throw script.finalError;
    }
    return gen();
  }
  sendCopyData(): boolean {
    return true;
  }
  sendCopyDone(): void {}
  sendCopyFail(): void {}
  async drained(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    this.#abort.abort();
  }
  destroy(error?: Error): void {
    this.destroyedWith ??= error ?? new Error('destroyed');
    this.#abort.abort();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

interface Harness {
  deps: BackupDeps;
  conns: FakeConnection[];
  slots: { created: [string, boolean][]; dropped: string[] };
  walParams: BackupWalStreamParams[];
  endLsn: bigint[];
}

function harness(
  major: number,
  script: Script,
  o: { walFail?: { error: Error; after: Promise<void> }; segmentSize?: string } = {},
): Harness {
  const h: Harness = { deps: undefined as never, conns: [], slots: { created: [], dropped: [] }, walParams: [], endLsn: [] };
  h.deps = {
    async connect() {
      // The first connection runs BASE_BACKUP; later ones stream WAL or drop slots.
      const c = new FakeConnection(major, 4000 + h.conns.length, h.conns.length === 0 ? script : undefined);
      h.conns.push(c);
      return c;
    },
    async identifySystem() {
      return { systemId: '7300000000000000001', timeline: 1 };
    },
    async show(_c, name) {
      if (name === 'wal_segment_size') return o.segmentSize ?? '1MB';
      if (name === 'data_directory_mode') return '0750';
      throw new Error(name);
    },
    async createPhysicalSlot(_c, name, { temporary }) {
      h.slots.created.push([name, temporary]);
    },
    async dropSlot(_c, name) {
      h.slots.dropped.push(name);
    },
    startWalStream(params) {
      h.walParams.push(params);
      let setEnd!: (l: bigint) => void;
      const end = new Promise<bigint>((r, reject) => {
        setEnd = r;
        params.signal.addEventListener('abort', () => reject(params.signal.reason as Error), { once: true });
      });
      end.catch(() => {});
      const done = (async () => {
        if (o.walFail) {
          await o.walFail.after;
          throw o.walFail.error;
        }
        const size = params.segmentSize;
        await params.sink.openSegment({ name: '000000010000000000000002', segmentSize: size, startOffset: 0 });
        await params.sink.write(Buffer.alloc(size, 7));
        await params.sink.closeSegment('complete');
        h.endLsn.push(await end);
        await params.sink.finish();
      })();
      return { setEndLsn: (l) => setEnd(l), done };
    },
  };
  return h;
}

const files = {
  base: [
    ['backup_label', Buffer.from('START WAL LOCATION: 0/2000028\n')],
    ['PG_VERSION', Buffer.from('16\n')],
    ['base/1/1259', bytes(8192, 3)],
    ['global/pg_control', bytes(8192, 4)],
  ] as [string, Buffer][],
  ts: [
    ['PG_16_202307071/', Buffer.alloc(0)],
    ['PG_16_202307071/5/16390', bytes(16384, 5)],
  ] as [string, Buffer][],
};
const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}\n');

function spcs(terminated: boolean): FixtureTablespace[] {
  return [
    { oid: 16385, location: '/srv/ts1', sizeKb: 17, tar: tar(files.ts, terminated) },
    { oid: null, location: null, sizeKb: 17, tar: tar(files.base, terminated) },
  ];
}

function scriptFor(major: number, o: { manifest?: boolean; chunkBytes?: number } = {}): Script {
  const build = major >= 15 ? modernResponse : legacyResponse;
  return {
    messages: build(spcs(major >= 15), {
      manifest: o.manifest === false ? undefined : manifest,
      split: (b) => chunked(b, o.chunkBytes ?? 1000),
    }),
  };
}

async function start(major: number, script: Script, opts: BaseBackupOptions = {}, ho: Parameters<typeof harness>[2] = {}) {
  const h = harness(major, script, ho);
  const session = await startBackupWith(h.deps, { wal: 'none', ...opts });
  return { h, session };
}

async function collectEntries(session: BackupSession): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for await (const archive of session.archives()) {
    const names: string[] = [];
    for await (const entry of archive.entries()) names.push(entry.header.name);
    out[archive.name] = names;
  }
  return out;
}

describe.each([13, 14, 15, 18])('backup session against a scripted %i server', (major) => {
  it('resolves after the header, then yields archives as entries, manifest and result', async () => {
    const { h, session } = await start(major, scriptFor(major));
    // Only the header was read: the start row and tablespace rows (6 + 1 + 2 messages).
    expect(h.conns[0]!.pulled).toBeLessThanOrEqual(8);
    expect(session.startLsn).toBe(0x2000028n);
    expect(session.startTimeline).toBe(1);
    expect(session.systemIdentifier).toBe('7300000000000000001');
    expect(session.walSegmentSize).toBe(1024 * 1024);
    expect(session.groupReadable).toBe(true);
    expect(session.serverVersionNum).toBe(major * 10000 + 2);
    expect(session.tablespaces).toEqual([
      { oid: 16385, location: '/srv/ts1', estimatedBytes: 17 * 1024 },
      { oid: null, location: null, estimatedBytes: 17 * 1024 },
    ]);
    expect(session.state).toBe('started');
    const entries = await collectEntries(session);
    expect(entries).toEqual({
      '16385.tar': files.ts.map(([n]) => n),
      'base.tar': files.base.map(([n]) => n),
    });
    // A complete iteration releases the connection without waiting for result().
    expect(h.conns[0]!.closed).toBe(true);
    expect((await session.manifest())?.toString()).toBe(manifest.toString());
    const result = await session.result();
    expect(result.endLsn).toBe(0x2000100n);
    expect(result.manifest?.toString()).toBe(manifest.toString());
    expect(result.stats.archives.map((a) => a.name)).toEqual(['16385.tar', 'base.tar']);
    const expectedBytes = spcs(major >= 15).reduce((n, s) => n + s.tar.length, 0);
    expect(result.stats.totalBytes).toBe(expectedBytes);
    expect(result.stats.walBytes).toBeUndefined();
    expect(session.state).toBe('done');
    expect(h.conns[0]!.closed).toBe(true);
    expect(h.conns[0]!.commands[0]).toMatch(/^BASE_BACKUP /);
  });

  it('raw chunks are a complete tar, terminator appended when the server omitted it', async () => {
    const { session } = await start(major, scriptFor(major));
    for await (const archive of session.archives()) {
      expect(archive.serverTerminated).toBe(major >= 15);
      const parts: Buffer[] = [];
      for await (const c of archive.chunks()) parts.push(Buffer.from(c));
      const all = Buffer.concat(parts);
      const expected = tar(archive.name === 'base.tar' ? files.base : files.ts, true);
      expect(all.equals(expected)).toBe(true);
    }
    await session.result();
  });

  it('pipeTo honours backpressure and writes the complete tar', async () => {
    const { session } = await start(major, scriptFor(major, { chunkBytes: 100 }));
    for await (const archive of session.archives()) {
      const got: Buffer[] = [];
      const slow = new Writable({
        highWaterMark: 256,
        write(chunk: Buffer, _enc, cb) {
          got.push(Buffer.from(chunk));
          setImmediate(cb); // acknowledged on a later turn: a slow consumer
        },
      });
      await archive.pipeTo(slow);
      expect(Buffer.concat(got).equals(tar(archive.name === 'base.tar' ? files.base : files.ts, true))).toBe(true);
    }
    await session.result();
  });

  it('discards an archive the consumer did not read, and refuses to read it later', async () => {
    const { session } = await start(major, scriptFor(major));
    const it = session.archives();
    const first = (await it.next()).value!;
    expect(first.name).toBe('16385.tar');
    const chunks = first.chunks();
    await chunks.next(); // read one chunk, then move on
    const second = (await it.next()).value!;
    expect(second.name).toBe('base.tar');
    await expect(chunks.next()).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    expect(() => second.chunks() && second.entries()).toThrow(expect.objectContaining({ code: 'ERR_PGBB_STATE' }));
    expect((await it.next()).done).toBe(true);
    expect((await session.result()).stats.archives).toHaveLength(2);
  });

  it('entries are lock-step: the connection is not read past an unread body', async () => {
    const { h, session } = await start(major, scriptFor(major, { chunkBytes: 512 }));
    const it = session.archives();
    await it.next(); // 16385.tar
    const base = (await it.next()).value!;
    const tarIt = base.entries()[Symbol.asyncIterator]();
    const label = (await tarIt.next()).value!;
    expect(label.header.name).toBe('backup_label');
    const pulledAtLabel = h.conns[0]!.pulled;
    // The fake hands out one message per turn of the event loop: a read-ahead would show here.
    await settle();
    expect(h.conns[0]!.pulled).toBe(pulledAtLabel);
    expect((await readBody(label.body, 100)).toString()).toMatch(/^START WAL/);
    await session.close();
  });

  it('result() without archives() discards the data and still returns the manifest', async () => {
    const { session } = await start(major, scriptFor(major));
    const result = await session.result();
    expect(result.manifest?.toString()).toBe(manifest.toString());
    expect(() => session.archives()).toThrow(expect.objectContaining({ code: 'ERR_PGBB_STATE' }));
  });

  it('progress events are throttled and end at the total', async () => {
    const { session } = await start(major, scriptFor(major, { chunkBytes: 200 }), { progressIntervalMs: 60_000 });
    const events: ReturnType<() => BackupSession['progress']>[] = [];
    session.on('progress', (p) => events.push(p));
    await collectEntries(session);
    await session.result();
    // One immediate report (the throttle's first), and the final one.
    expect(events.length).toBeLessThanOrEqual(3);
    const last = events.at(-1)!;
    expect(last.finished).toBe(true);
    expect(last.bytesDone).toBe(last.totalBytes);
    expect(last.bytesDone).toBe((await session.result()).stats.totalBytes);
    expect(session.progress).toEqual(last);
  });

  it('checksum WARNINGs become events, and XX001 after the end row rejects result() only', async () => {
    const script = scriptFor(major);
    const warn = (message: string): ServerNotice => ({ severity: 'WARNING', sqlState: '01000', message });
    script.notices = new Map([
      [
        14,
        [
          warn('checksum verification failed in file "./base/5/16390", block 0: calculated 1A2B but expected 3C4D'),
          warn('checksum verification failed in file "./base/5/16390", block 3: calculated 1A2B but expected 3C4D'),
          warn('file "./base/5/16390" has a total of 2 checksum verification failures'),
        ],
      ],
    ]);
    script.finalError = new ServerError({
      severity: 'ERROR',
      sqlState: 'XX001',
      message: 'checksum verification failure during base backup',
    });
    script.messages.pop(); // the final CommandComplete is replaced by the ErrorResponse
    const { session } = await start(major, script);
    const failures: unknown[] = [];
    const notices: ServerNotice[] = [];
    session.on('checksum-failure', (f) => failures.push(f));
    session.on('notice', (n) => notices.push(n));
    const entries = await collectEntries(session); // the data is complete: no throw here
    expect(Object.keys(entries)).toEqual(['16385.tar', 'base.tar']);
    const err = await session.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_CHECKSUM_FAILURE' });
    const cf = err as ChecksumFailureError;
    expect(cf.code).toBe('ERR_PGBB_CHECKSUM_FAILURE');
    expect(cf.failures).toEqual([{ file: './base/5/16390', blocks: [0, 3], count: 2 }]);
    expect(cf.totalFailures).toBe(2);
    expect(cf.message).toMatch(/received completely, but it must not be trusted/);
    expect(failures).toEqual([
      { file: './base/5/16390', block: 0 },
      { file: './base/5/16390', block: 3 },
      { file: './base/5/16390', count: 2 },
    ]);
    expect(notices).toHaveLength(3);
    // The data is complete: the session ends normally apart from the verdict.
    expect(session.state).toBe('done');
    await expect(session.result()).rejects.toBe(err);
  });

  it('onNotice sees the notices sent while the backup starts; a later listener does not', async () => {
    const script = scriptFor(major);
    const early: ServerNotice = {
      severity: 'NOTICE',
      sqlState: '00000',
      message:
        'WAL archiving is not enabled; you must ensure that all required WAL segments are copied through other means to complete the backup',
    };
    const late: ServerNotice = { severity: 'WARNING', sqlState: '01000', message: 'a later warning' };
    // Index 0 is the first message of the response: startBackup() is still pumping the header then.
    script.notices = new Map([
      [0, [early]],
      [script.messages.length - 1, [late]],
    ]);
    const seen: ServerNotice[] = [];
    const { session } = await start(major, script, { onNotice: (n) => seen.push(n) });
    expect(seen).toEqual([early]);
    const listened: ServerNotice[] = [];
    session.on('notice', (n) => listened.push(n));
    await collectEntries(session);
    await session.result();
    expect(seen).toEqual([early, late]);
    expect(listened).toEqual([late]);
  });

  it('result() alone reports a checksum failure and still closes the connection', async () => {
    const script = scriptFor(major);
    script.finalError = new ServerError({
      severity: 'ERROR',
      sqlState: 'XX001',
      message: 'checksum verification failure during base backup',
    });
    script.messages.pop();
    const { h, session } = await start(major, script);
    await expect(session.result()).rejects.toMatchObject({ code: 'ERR_PGBB_CHECKSUM_FAILURE' });
    expect(h.conns[0]!.closed).toBe(true);
  });

  it('a server error after the end row that is not XX001 fails the session', async () => {
    const script = scriptFor(major);
    script.finalError = new ServerError({ severity: 'ERROR', sqlState: '58P01', message: 'could not find WAL file' });
    script.messages.pop();
    const { session } = await start(major, script);
    await expect(session.result()).rejects.toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(session.state).toBe('failed');
  });

  it('abort mid-archive rejects pending reads with AbortError and destroys the connection', async () => {
    const ac = new AbortController();
    const { h, session } = await start(major, scriptFor(major, { chunkBytes: 100 }), { signal: ac.signal });
    const it = session.archives();
    const first = (await it.next()).value!;
    const chunks = first.chunks();
    await chunks.next();
    ac.abort();
    await expect(chunks.next()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(session.result()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(session.manifest()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(h.conns[0]!.destroyedWith).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(session.state).toBe('failed');
  });

  it('close() before completion aborts; Symbol.asyncDispose closes', async () => {
    const { session } = await start(major, scriptFor(major));
    const it = session.archives();
    await it.next();
    await session.close();
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await session.close(); // idempotent
    const { h: h2, session: s2 } = await start(major, scriptFor(major));
    await s2.result();
    await s2[Symbol.asyncDispose]();
    expect(h2.conns[0]!.closed).toBe(true);
  });
});

describe('backup session setup', () => {
  it('refuses servers outside 13..18', async () => {
    const h = harness(12, scriptFor(13));
    await expect(startBackupWith(h.deps, { wal: 'none' })).rejects.toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
    expect(h.conns[0]!.destroyedWith).toBeDefined();
  });

  it('an already aborted signal fails before connecting', async () => {
    const h = harness(16, scriptFor(16));
    await expect(startBackupWith(h.deps, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(h.conns).toHaveLength(0);
  });

  it('sends the version-specific command', async () => {
    const a = await start(14, scriptFor(14), { wal: 'fetch', checkpoint: 'fast' });
    expect(a.h.conns[0]!.commands[0]).toBe("BASE_BACKUP  LABEL 'pg_basebackup base backup'  PROGRESS  WAL  FAST  NOWAIT  MANIFEST 'yes'");
    await a.session.close();
    const b = await start(17, scriptFor(17), { wal: 'none' });
    expect(b.h.conns[0]!.commands[0]).toBe(
      "BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  MANIFEST 'yes',  TARGET 'client')",
    );
    await b.session.close();
  });
});

describe.each([13, 16])('WAL streaming through a scripted %i server', (major) => {
  it('temporary slot named after the WAL connection pid, spooled pg_wal.tar yielded last', async () => {
    const h = harness(major, scriptFor(major));
    const session = await startBackupWith(h.deps, {});
    expect(h.slots.created).toEqual([['pg_basebackup_4001', true]]);
    expect(session.slotName).toBe('pg_basebackup_4001');
    expect(h.walParams[0]).toMatchObject({ startLsn: 0x2000000n, timeline: 1, segmentSize: 1024 * 1024, slotName: 'pg_basebackup_4001' });
    const entries = await collectEntries(session);
    expect(Object.keys(entries)).toEqual(['16385.tar', 'base.tar', 'pg_wal.tar']);
    expect(entries['pg_wal.tar']).toEqual(['000000010000000000000002', 'archive_status/000000010000000000000002.done']);
    expect(h.endLsn).toEqual([0x2000100n]);
    const r = await session.result();
    expect(r.stats.walBytes).toBe(512 + 1024 * 1024 + 512 + 1024);
    expect(r.stats.archives.map((a) => a.name)).toEqual(['16385.tar', 'base.tar', 'pg_wal.tar']);
    expect(h.conns[1]!.closed).toBe(true);
  });

  it('a caller-supplied WAL sink gets the WAL; no pg_wal.tar archive', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const { TarWalSink } = await import('../../../src/wal/tar-sink.js');
    const h = harness(major, scriptFor(major));
    const session = await startBackupWith(h.deps, { walSink: new TarWalSink({ output: out }) });
    expect(Object.keys(await collectEntries(session))).toEqual(['16385.tar', 'base.tar']);
    await session.result();
    expect(Buffer.concat(chunks).length).toBe(512 + 1024 * 1024 + 1024);
  });

  it('a WAL failure fails the session; a slot created with createSlot is dropped', async () => {
    const started = deferred();
    const h = harness(major, scriptFor(major), { walFail: { error: new Error('wal broke'), after: started.promise } });
    const session = await startBackupWith(h.deps, { slot: 'keepme', createSlot: true });
    started.resolve();
    expect(h.slots.created).toEqual([['keepme', false]]);
    await expect(session.result()).rejects.toThrow('wal broke');
    await session.close();
    await vi.waitFor(() => expect(h.slots.dropped).toEqual(['keepme']), { timeout: 5000, interval: 5 });
  });

  it('an existing slot is used as is, and never dropped', async () => {
    const h = harness(major, scriptFor(major));
    const session = await startBackupWith(h.deps, { slot: 'mine' });
    expect(h.slots.created).toEqual([]);
    expect(h.walParams[0]!.slotName).toBe('mine');
    await session.close();
    expect(h.slots.dropped).toEqual([]);
  });

  it('useSlot: false streams without a slot', async () => {
    const h = harness(major, scriptFor(major));
    const session = await startBackupWith(h.deps, { useSlot: false });
    expect(h.walParams[0]!.slotName).toBeUndefined();
    await session.result();
  });
});
