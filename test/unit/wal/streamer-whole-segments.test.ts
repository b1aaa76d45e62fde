// A sink that makes only complete segments durable (receive-wal --repo: flush() and the close of an
// incomplete segment resolve false): the flush position reported, and the stream's result, stay at the
// end of the last complete segment, whatever was written after it.
import { describe, expect, it, vi } from 'vitest';
import { lsn } from '../../../src/lsn.js';
import type { WalSegmentCloseMode, WalSink } from '../../../src/wal/sink.js';
import { startWalStream } from '../../../src/wal/streamer.js';
import { FakeConnection, MemorySink, commandComplete, copyBoth, copyDone, keepalive, xlogData, type Script } from './fake-replication.js';

const SEG = 1024 * 1024;
const SEG3 = 0x300000n;

/** A MemorySink whose flush() and incomplete closes do not count as durable. */
function wholeSegmentSink(): { sink: WalSink; memory: MemorySink } {
  const memory = new MemorySink();
  const sink: WalSink = {
    openSegment: (t) => memory.openSegment(t),
    write: (d) => memory.write(d),
    flush: async () => {
      await memory.flush();
      return false;
    },
    closeSegment: async (mode: WalSegmentCloseMode) => {
      await memory.closeSegment(mode);
      return mode === 'complete' ? undefined : false;
    },
    writeHistoryFile: (n, c) => memory.writeHistoryFile(n, c),
    finish: () => memory.finish(),
    abort: () => memory.abort(),
  };
  return { sink, memory };
}

describe('WAL stream into a sink of whole segments', () => {
  it('reports flush at the end of the last complete segment only', async () => {
    const script: Script = async function* (conn) {
      yield copyBoth;
      yield keepalive(SEG3, true);
      yield xlogData(SEG3, SEG / 2);
      yield keepalive(SEG3 + BigInt(SEG / 2), true);
      yield xlogData(SEG3 + BigInt(SEG / 2), SEG / 2 + 1000);
      yield keepalive(SEG3 + BigInt(SEG) + 1000n, true);
      await conn.waitCopyDone();
      yield copyDone;
      yield commandComplete;
    };
    const conn = new FakeConnection([script]);
    const { sink, memory } = wholeSegmentSink();
    const stream = startWalStream({
      connection: conn.api,
      startLsn: lsn(SEG3),
      timeline: 1,
      segmentSize: SEG,
      statusIntervalMs: 0,
      slotName: 's',
      sink,
    });
    await vi.waitFor(() => expect(conn.statusUpdates.length).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 1 });
    await stream.stop();
    const result = await stream.done;
    expect(memory.ops).toContain('flush');
    expect(memory.ops).toContain('close 000000010000000000000003 complete');
    expect(memory.ops).toContain('close 000000010000000000000004 partial');
    // Nothing is flushed until segment 3 is closed; then its end, never the 1000 bytes of segment 4.
    expect(conn.statusUpdates.map((u) => u.flush)).toEqual([0n, 0n, ...conn.statusUpdates.slice(2).map(() => SEG3 + BigInt(SEG))]);
    expect(conn.statusUpdates.at(-1)).toMatchObject({ write: SEG3 + BigInt(SEG) + 1000n, flush: SEG3 + BigInt(SEG) });
    expect(result.flushed).toBe(SEG3 + BigInt(SEG));
  });
});
