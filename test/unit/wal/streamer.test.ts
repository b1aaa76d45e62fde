import { describe, expect, it, vi } from 'vitest';
import { ServerError } from '../../../src/errors.js';
import { lsn } from '../../../src/lsn.js';
import { startReplicationCommand, startWalStream, type WalStreamOptions } from '../../../src/wal/streamer.js';
import {
  FakeConnection,
  MemorySink,
  commandComplete,
  copyBoth,
  copyDone,
  keepalive,
  nextTimelineRows,
  walBytes,
  xlogData,
  type Script,
} from './fake-replication.js';

const SEG = 1024 * 1024; // 0x100000
const SEG3 = 0x300000n;

function setup(scripts: Script[], options: Partial<WalStreamOptions> = {}, history: Record<number, string> = {}) {
  const conn = new FakeConnection(scripts);
  for (const [tli, content] of Object.entries(history)) conn.history.set(Number(tli), content);
  const sink = new MemorySink();
  const stream = startWalStream({
    connection: conn.api,
    startLsn: lsn(SEG3 + 0x1234n),
    timeline: 1,
    segmentSize: SEG,
    statusIntervalMs: 0,
    sink,
    ...options,
  });
  return { conn, sink, stream };
}

/** Streams WAL in `size`-byte messages from `from` until we send CopyDone, then ends like walsender. */
function streamUntilCopyDone(from: bigint, sizes: number[], afterStop: bigint[] = []): Script {
  return async function* (conn) {
    yield copyBoth;
    let pos = from;
    for (let i = 0; conn.copyDoneSent === 0; i++) {
      const size = sizes[Math.min(i, sizes.length - 1)]!;
      yield xlogData(pos, size);
      pos += BigInt(size);
    }
    // WAL the server had queued before it saw our CopyDone: must be ignored.
    for (const start of afterStop) yield xlogData(start, 100);
    yield copyDone;
    yield commandComplete;
  };
}

function expectSegmentData(sink: MemorySink, name: string, segStart: bigint, length: number): void {
  const file = sink.files.get(name);
  expect(file, name).toBeDefined();
  expect(file!.data.length).toBe(SEG);
  expect(file!.data.subarray(0, length).equals(walBytes(segStart, length))).toBe(true);
  expect(file!.data.subarray(length).every((b) => b === 0)).toBe(true);
}

describe('startReplicationCommand', () => {
  it('quotes the slot and prints the LSN', () => {
    expect(startReplicationCommand({ startLsn: lsn(0x16b3748n), timeline: 3 })).toBe('START_REPLICATION PHYSICAL 0/16B3748 TIMELINE 3');
    expect(startReplicationCommand({ slotName: 'a"b', startLsn: lsn(0x100000000n), timeline: 1 })).toBe(
      'START_REPLICATION SLOT "a""b" PHYSICAL 1/0 TIMELINE 1',
    );
  });
});

describe('startWalStream', () => {
  it("releases the connection's receive buffers after each CopyData only to a sink that writes data at once", async () => {
    for (const atOnce of [false, true]) {
      const conn = new FakeConnection([streamUntilCopyDone(SEG3, [0x1f000, 0x20000], [0x600000n])]);
      const sink = Object.assign(new MemorySink(), { writesDataAtOnce: atOnce });
      const stream = startWalStream({
        connection: conn.api,
        startLsn: lsn(SEG3),
        timeline: 1,
        segmentSize: SEG,
        statusIntervalMs: 0,
        sink,
        endLsn: lsn(0x523456n),
      });
      await stream.done;
      expect(sink.writes).toBeGreaterThan(0);
      // One release per CopyData processed, after its bytes were written; none when the sink may keep them.
      if (atOnce) expect(conn.releases).toBeGreaterThanOrEqual(3);
      else expect(conn.releases).toBe(0);
      expectSegmentData(sink, '000000010000000000000003', 0x300000n, SEG);
    }
  });

  it('starts at the segment start, splits XLogData at segment boundaries and stops past the end LSN', async () => {
    const endLsn = lsn(0x523456n);
    // 0x1f000 first, then 0x20000: messages straddle the 0x400000 and 0x500000 boundaries.
    const { conn, sink, stream } = setup([streamUntilCopyDone(SEG3, [0x1f000, 0x20000], [0x600000n])], {
      endLsn,
      finalizeLastSegment: 'rename-padded',
    });
    const result = await stream.done;
    expect(conn.statements).toEqual(['START_REPLICATION PHYSICAL 0/300000 TIMELINE 1']);
    expect(conn.copyDoneSent).toBe(1);
    // A last status update (write = where we stopped) precedes our CopyDone.
    expect(conn.sent).toEqual(['status', 'CopyDone']);
    expect(conn.statusUpdates[0]!.write).toBe(result.position);
    // Whole messages are written: the one crossing the end LSN ends past it.
    expect(result.position).toBeGreaterThanOrEqual(endLsn);
    expect(result.position - endLsn).toBeLessThan(0x20000n);
    expect((result.position - SEG3 - 0x1f000n) % 0x20000n).toBe(0n);
    expect(result.reason).toBe('end-lsn');
    expect(result.segmentsCompleted).toBe(2);
    expect(result.timelines).toEqual([1]);
    expect(stream.position).toBe(result.position);
    expect(sink.ops).toEqual([
      'open 000000010000000000000003',
      'close 000000010000000000000003 complete',
      'open 000000010000000000000004',
      'close 000000010000000000000004 complete',
      'open 000000010000000000000005',
      'close 000000010000000000000005 padded',
      'finish',
    ]);
    expectSegmentData(sink, '000000010000000000000003', 0x300000n, SEG);
    expectSegmentData(sink, '000000010000000000000004', 0x400000n, SEG);
    expectSegmentData(sink, '000000010000000000000005', 0x500000n, Number(result.position - 0x500000n));
  });

  it('keeps the last incomplete segment partial by default, and drops the rest of a message once a segment ends at the end LSN', async () => {
    const { conn, sink, stream } = setup([streamUntilCopyDone(SEG3, [0xc0000])], { endLsn: lsn(0x400000n) });
    const result = await stream.done;
    expect(conn.copyDoneSent).toBe(1);
    // 0x300000 + 2×0xc0000 crosses 0x400000: the stream stops exactly at the boundary.
    expect(result.position).toBe(0x400000n);
    expect(sink.ops).toEqual(['open 000000010000000000000003', 'close 000000010000000000000003 complete', 'finish']);

    const second = setup([streamUntilCopyDone(SEG3, [0x1000])], { endLsn: lsn(0x300800n) });
    const r2 = await second.stream.done;
    expect(r2.position).toBe(0x301000n);
    expect(second.sink.ops).toEqual(['open 000000010000000000000003', 'close 000000010000000000000003 partial', 'finish']);
  });

  it('answers a keepalive that asks for a reply before pulling anything else, flushing first when reporting flush', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 1000);
      yield keepalive(SEG3 + 5000n, true);
      yield keepalive(SEG3 + 5000n, false);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script], { slotName: 'slot1' });
    // Let the keepalives through, then stop.
    await vi.waitFor(() => expect(conn.pulls).toBeGreaterThanOrEqual(5), { timeout: 5000, interval: 1 });
    await stream.stop();
    expect(conn.statements).toEqual(['START_REPLICATION SLOT "slot1" PHYSICAL 0/300000 TIMELINE 1']);
    // The reply, then the last update sent before CopyDone.
    expect(conn.statusUpdates).toEqual([
      { write: SEG3 + 1000n, flush: SEG3 + 1000n, apply: 0n, replyRequested: false },
      { write: SEG3 + 1000n, flush: SEG3 + 1000n, apply: 0n, replyRequested: false },
    ]);
    expect(conn.sent).toEqual(['status', 'status', 'CopyDone']);
    // The reply went out before the message after the keepalive was pulled.
    expect(conn.updatesAtPull[3]).toBe(1);
    expect(sink.ops.slice(0, 2)).toEqual(['open 000000010000000000000003', 'flush']);
    const result = await stream.done;
    expect(result.reason).toBe('stopped');
    expect(result.flushed).toBe(SEG3 + 1000n);
  });

  it('does not report flush without a slot (pg_receivewal), and does not flush for it', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 1000);
      yield keepalive(SEG3 + 1000n, true);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script]);
    await vi.waitFor(() => expect(conn.pulls).toBeGreaterThanOrEqual(4), { timeout: 5000, interval: 1 });
    await stream.stop();
    expect(conn.statusUpdates).toEqual([
      { write: SEG3 + 1000n, flush: 0n, apply: 0n, replyRequested: false },
      { write: SEG3 + 1000n, flush: 0n, apply: 0n, replyRequested: false },
    ]);
    expect(sink.ops).not.toContain('flush');
  });

  it('setEndLsn() stops at once when the position already passed it', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 0x3000);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script], { finalizeLastSegment: 'rename-padded' });
    await vi.waitFor(() => expect(stream.position).toBe(SEG3 + 0x3000n), { timeout: 5000, interval: 1 });
    expect(conn.copyDoneSent).toBe(0);
    stream.setEndLsn(lsn(SEG3 + 0x2000n));
    const result = await stream.done;
    expect(conn.copyDoneSent).toBe(1);
    expect(result.reason).toBe('end-lsn');
    expect(result.position).toBe(SEG3 + 0x3000n);
    expect(sink.ops).toEqual(['open 000000010000000000000003', 'close 000000010000000000000003 padded', 'finish']);
  });

  it('stop() before CopyBothResponse sends CopyDone as soon as the COPY starts', async () => {
    let startCopy!: () => void;
    const copyStarts = new Promise<void>((r) => {
      startCopy = r;
    });
    const script: Script = async function* (conn) {
      await copyStarts;
      yield copyBoth;
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script]);
    const stopped = stream.stop();
    expect(conn.copyDoneSent).toBe(0);
    startCopy();
    await stopped;
    expect(conn.copyDoneSent).toBe(1);
    expect(sink.ops).toEqual(['finish']);
  });

  it('follows a timeline switch: keeps the old segment partial, stores the history, restarts at the segment start', async () => {
    const tl1: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 0x8000);
      yield copyDone; // end of the historic timeline 1
      expect(conn.copyDoneSent).toBe(1); // we answered with CopyDone
      yield* nextTimelineRows(2, '0/306000');
    };
    const tl2 = streamUntilCopyDone(SEG3, [0x40000]);
    const switches: unknown[] = [];
    const { conn, sink, stream } = setup([tl1, tl2], {
      endLsn: lsn(0x400100n),
      onTimelineSwitch: (s) => switches.push(s),
    });
    conn.history.set(2, '1\t0/306000\tno recovery target specified\n');
    const result = await stream.done;
    expect(conn.statements).toEqual(['START_REPLICATION PHYSICAL 0/300000 TIMELINE 1', 'START_REPLICATION PHYSICAL 0/300000 TIMELINE 2']);
    expect(conn.queries).toEqual(['TIMELINE_HISTORY 2']);
    expect(sink.ops).toEqual([
      'open 000000010000000000000003',
      'close 000000010000000000000003 partial',
      'history 00000002.history',
      'open 000000020000000000000003',
      'close 000000020000000000000003 complete',
      'open 000000020000000000000004',
      'close 000000020000000000000004 partial',
      'finish',
    ]);
    expect(sink.files.get('00000002.history')!.data.toString()).toBe('1\t0/306000\tno recovery target specified\n');
    expect(switches).toEqual([{ from: 1, to: 2, switchLsn: 0x306000n, restartLsn: 0x300000n }]);
    expect(result.timelines).toEqual([1, 2]);
    expect(result.timeline).toBe(2);
    expect(stream.timeline).toBe(2);
    expect(result.position).toBe(0x440000n);
  });

  it('fetches the start timeline history when starting above timeline 1', async () => {
    const { conn, sink, stream } = setup(
      [streamUntilCopyDone(SEG3, [0x1000])],
      { timeline: 3, endLsn: lsn(SEG3 + 1n) },
      { 3: '1\t0/100000\tx\n2\t0/200000\ty\n' },
    );
    await stream.done;
    expect(conn.queries).toEqual(['TIMELINE_HISTORY 3']);
    expect(sink.ops[0]).toBe('history 00000003.history');
    expect(sink.ops[1]).toBe('open 000000030000000000000003');
  });

  it('rejects a next timeline that starts after what was received, or that does not increase', async () => {
    const bad = (tli: number, pos: string): Script =>
      async function* () {
        yield copyBoth;
        yield xlogData(SEG3, 0x100);
        yield copyDone;
        yield* nextTimelineRows(tli, pos);
      };
    const a = setup([bad(2, '0/400000')]);
    await expect(a.stream.done).rejects.toMatchObject({
      code: 'ERR_PGBB_WAL_STREAM',
      message: expect.stringContaining('reported next timeline 2 to begin at 0/400000'),
    });
    expect(a.sink.ops.at(-1)).toBe('abort');
    const b = setup([bad(1, '0/300000')]);
    await expect(b.stream.done).rejects.toMatchObject({
      code: 'ERR_PGBB_WAL_STREAM',
      message: expect.stringContaining('unexpected next timeline 1'),
    });
  });

  it('a gap in XLogData is a ProtocolError naming both LSNs, and aborts the sink', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 100);
      yield xlogData(SEG3 + 200n, 100);
    };
    const { sink, stream } = setup([script]);
    const err = await stream.done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    expect((err as Error).message).toContain('0/3000C8');
    expect((err as Error).message).toContain('0/300064');
    expect((err as Error).message).toContain('gap');
    expect(sink.ops.at(-1)).toBe('abort');
  });

  it('an overlap is a ProtocolError too', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 100);
      yield xlogData(SEG3 + 50n, 100);
    };
    const { stream } = setup([script]);
    await expect(stream.done).rejects.toMatchObject({ code: 'ERR_PGBB_PROTOCOL', message: expect.stringContaining('overlap') });
  });

  it('an unknown CopyData sub-type is a ProtocolError', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      yield { type: 'CopyData', payload: Buffer.from('zzz') };
    };
    const { stream } = setup([script]);
    await expect(stream.done).rejects.toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
  });

  it('"requested WAL segment has already been removed" becomes a ServerError advising a slot', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      throw new ServerError({
        severity: 'ERROR',
        sqlState: '58P01',
        message: 'requested WAL segment 000000010000000000000003 has already been removed',
      });
    };
    const { sink, stream } = setup([script]);
    const err = await stream.done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER', sqlState: '58P01' });
    expect((err as ServerError).serverMessage).toContain('has already been removed');
    expect((err as Error).message).toContain('replication slot');
    expect(sink.ops).toEqual(['abort']);
  });

  it('a stream the server ends before the end LSN fails, after closing the segment as partial', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script], { endLsn: lsn(0x500000n) });
    await expect(stream.done).rejects.toMatchObject({
      code: 'ERR_PGBB_WAL_STREAM',
      message: expect.stringContaining('terminated before stop point'),
    });
    expect(conn.copyDoneSent).toBe(1);
    expect(sink.ops).toEqual(['open 000000010000000000000003', 'close 000000010000000000000003 partial', 'abort']);
  });

  it('a lost connection rejects with the connection error and aborts the sink', async () => {
    const script: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      const { ConnectionClosedError } = await import('../../../src/errors.js');
      throw new ConnectionClosedError('the server closed the connection');
    };
    const { sink, stream } = setup([script]);
    await expect(stream.done).rejects.toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
    expect(sink.ops.at(-1)).toBe('abort');
  });

  it('an aborted signal rejects with AbortError and aborts the sink', async () => {
    const ac = new AbortController();
    const script: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      await new Promise(() => undefined);
    };
    const { conn, sink, stream } = setup([script], { signal: ac.signal });
    await vi.waitFor(() => expect(conn.pulls).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 1 });
    ac.abort();
    await expect(stream.done).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(stream.stop()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(sink.ops.at(-1)).toBe('abort');
  });

  it('sends periodic status updates, flushing an idle sink first when reporting flush', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script], { slotName: 's', statusIntervalMs: 15 });
    await vi.waitFor(() => expect(conn.statusUpdates.filter((u) => u.flush === SEG3 + 0x100n).length).toBeGreaterThanOrEqual(2), {
      timeout: 5000,
      interval: 1,
    });
    await stream.stop();
    expect(sink.ops).toContain('flush');
    const last = conn.statusUpdates.at(-1)!;
    expect(last).toEqual({ write: SEG3 + 0x100n, flush: SEG3 + 0x100n, apply: 0n, replyRequested: false });
  });

  it('a slow sink stops pulling messages, while the timer keeps the server informed without flushing', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      yield xlogData(SEG3 + 0x100n, 0x100);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const conn0 = setup([script], { slotName: 's', statusIntervalMs: 10 });
    const { conn, sink, stream } = conn0;
    sink.gate = () => blocked;
    await vi.waitFor(() => expect(conn.statusUpdates.length).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 1 });
    // CopyBoth and the first XLogData only: the second is not pulled while the write waits.
    expect(conn.pulls).toBe(2);
    expect(sink.ops).toEqual(['open 000000010000000000000003']);
    expect(conn.statusUpdates.every((u) => u.write === SEG3 && u.flush === 0n)).toBe(true);
    sink.gate = undefined;
    release();
    await vi.waitFor(() => expect(stream.position).toBe(SEG3 + 0x200n), { timeout: 5000, interval: 1 });
    await stream.stop();
    expect(conn.pulls).toBeGreaterThanOrEqual(4);
  });

  it('ends at once when the end LSN is not after the start segment', async () => {
    const { conn, sink, stream } = setup([], { endLsn: lsn(SEG3) });
    const result = await stream.done;
    expect(conn.statements).toEqual([]);
    expect(result).toMatchObject({ reason: 'end-lsn', position: SEG3, segmentsCompleted: 0 });
    expect(sink.ops).toEqual(['finish']);
  });

  it('await using stops the stream at the end of the scope', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield xlogData(SEG3, 0x100);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, sink, stream } = setup([script]);
    {
      await using s = stream;
      await vi.waitFor(() => expect(s.position).toBe(SEG3 + 0x100n), { timeout: 5000, interval: 1 });
    }
    expect(conn.copyDoneSent).toBe(1);
    expect(sink.ops.at(-1)).toBe('finish');
    await expect(stream.done).resolves.toMatchObject({ reason: 'stopped', position: SEG3 + 0x100n });
  });

  it('refuses an invalid segment size', () => {
    expect(() => setup([], { segmentSize: 1000 })).toThrow(/segment size/);
  });
});
