// What receive-wal needs from the WAL streamer: --synchronous (flush and report after every
// message, flush reported without a slot), sinks that cannot make part of a segment durable
// (flush() resolves false: the flush position waits for the segment's close), and the server
// timeout (status updates ask for a reply; silence fails the stream).
import { describe, expect, it } from 'vitest';
import { WalStreamError } from '../../../src/errors.js';
import { lsn } from '../../../src/lsn.js';
import { startWalStream, type WalStreamOptions } from '../../../src/wal/streamer.js';
import { FakeConnection, MemorySink, commandComplete, copyBoth, copyDone, xlogData, type Script } from './fake-replication.js';

const SEG = 1024 * 1024;
const SEG3 = 0x300000n;

class DestroyableConnection extends FakeConnection {
  destroyed: Error | undefined;
  destroy(err?: Error): void {
    this.destroyed = err;
  }
}

/** A sink like a compressed file or an object store: nothing is durable before the segment is closed. */
function wholeSegmentSink(): MemorySink {
  const sink = new MemorySink();
  return Object.assign(sink, {
    flush: async (): Promise<false> => {
      sink.ops.push('flush');
      return false;
    },
  });
}

function setup(scripts: Script[], options: Partial<WalStreamOptions> = {}, sink = new MemorySink()) {
  const conn = new DestroyableConnection(scripts);
  const statuses: { write: bigint; flush: bigint }[] = [];
  const stream = startWalStream({
    connection: conn.api,
    startLsn: lsn(SEG3),
    timeline: 1,
    segmentSize: SEG,
    statusIntervalMs: 0,
    sink,
    onStatusSent: (s) => statuses.push({ write: s.write, flush: s.flush }),
    ...options,
  });
  return { conn, sink, stream, statuses };
}

const untilCopyDone = (messages: ReturnType<typeof xlogData>[]): Script =>
  async function* (conn) {
    yield copyBoth;
    for (const m of messages) yield m;
    await conn.waitCopyDone();
    yield copyDone;
    yield commandComplete;
  };

describe('startWalStream for receive-wal', () => {
  it('synchronous: flushes and reports after every XLogData, flush included without a slot', async () => {
    const { conn, sink, stream, statuses } = setup([untilCopyDone([xlogData(SEG3, 1000), xlogData(SEG3 + 1000n, 500)])], {
      synchronous: true,
    });
    await expect.poll(() => conn.statusUpdates.length).toBe(2);
    await stream.stop();
    expect(statuses.slice(0, 2)).toEqual([
      { write: SEG3 + 1000n, flush: SEG3 + 1000n },
      { write: SEG3 + 1500n, flush: SEG3 + 1500n },
    ]);
    expect(sink.ops.slice(0, 3)).toEqual(['open 000000010000000000000003', 'flush', 'flush']);
    expect(conn.statusUpdates.every((u) => !u.replyRequested)).toBe(true);
  });

  it('a sink whose flush() resolves false advances the flush position only when the segment is closed', async () => {
    const { conn, stream, statuses } = setup(
      [untilCopyDone([xlogData(SEG3, 1000), xlogData(SEG3 + 1000n, SEG - 1000), xlogData(SEG3 + BigInt(SEG), 100)])],
      { synchronous: true },
      wholeSegmentSink(),
    );
    await expect.poll(() => conn.statusUpdates.length).toBe(3);
    await stream.stop();
    // No flush before the first segment was complete; then its end; never the WAL of the open segment.
    expect(statuses[0]).toEqual({ write: SEG3 + 1000n, flush: 0n });
    expect(statuses[1]).toEqual({ write: SEG3 + BigInt(SEG), flush: SEG3 + BigInt(SEG) });
    expect(statuses[2]).toEqual({ write: SEG3 + BigInt(SEG) + 100n, flush: SEG3 + BigInt(SEG) });
  });

  it('fails with WalStreamError when the server goes silent, after asking it for replies', async () => {
    const silent: Script = async function* () {
      yield copyBoth;
      yield xlogData(SEG3, 1000);
      await new Promise(() => undefined); // the server never sends anything again
    };
    const { conn, sink, stream } = setup([silent], { statusIntervalMs: 20, serverTimeoutMs: 150 });
    const err = await stream.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalStreamError);
    expect((err as Error).message).toMatch(/sent nothing/);
    expect(conn.destroyed).toBe(err);
    expect(conn.statusUpdates.length).toBeGreaterThan(1);
    expect(conn.statusUpdates.every((u) => u.replyRequested)).toBe(true);
    expect(sink.ops).toContain('abort');
  });

  it('a server that keeps answering is not timed out', async () => {
    const chatty: Script = async function* (conn) {
      yield copyBoth;
      for (let i = 0; conn.copyDoneSent === 0 && i < 40; i++) {
        await new Promise((r) => setTimeout(r, 10));
        yield xlogData(SEG3 + BigInt(i * 10), 10);
      }
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const { conn, stream } = setup([chatty], { statusIntervalMs: 20, serverTimeoutMs: 100 });
    await expect.poll(() => conn.pulls, { timeout: 5000 }).toBeGreaterThan(30);
    await stream.stop();
    expect((await stream.done).reason).toBe('stopped');
    expect(conn.destroyed).toBeUndefined();
  });
});
