// The WAL companion counts the streamed WAL through a wrapper around the WAL sink. The wrapper must
// declare what the sink declares: `writesDataAtOnce` is what lets the WAL streamer hand the receive
// buffers back after each write (without it a plain backup's WAL connection allocated a new 512 KiB
// buffer for every one it filled).
import { describe, expect, it } from 'vitest';
import { countingSink } from '../../../src/backup/wal-companion.js';
import type { WalSink } from '../../../src/wal/sink.js';

function recordingSink(writesDataAtOnce: boolean | undefined): WalSink & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    ...(writesDataAtOnce !== undefined ? { writesDataAtOnce } : {}),
    openSegment: async (t) => void calls.push(`open ${t.name}`),
    write: async (d) => void calls.push(`write ${d.length}`),
    flush: async () => {
      calls.push('flush');
      return false;
    },
    closeSegment: async (m) => void calls.push(`close ${m}`),
    writeHistoryFile: async (n) => void calls.push(`history ${n}`),
    finish: async () => void calls.push('finish'),
    abort: async () => void calls.push('abort'),
  };
}

describe('countingSink', () => {
  it('declares writesDataAtOnce as the sink does, and only then', () => {
    expect(countingSink(recordingSink(true), () => {}).writesDataAtOnce).toBe(true);
    expect(countingSink(recordingSink(false), () => {}).writesDataAtOnce).toBe(false);
    expect('writesDataAtOnce' in countingSink(recordingSink(undefined), () => {})).toBe(false);
  });

  it('counts every byte written and forwards every call in order', async () => {
    const inner = recordingSink(true);
    let counted = 0;
    const sink = countingSink(inner, (n) => {
      counted += n;
    });
    await sink.openSegment({ name: '000000010000000000000002', startOffset: 0, segmentSize: 16 * 1024 * 1024, timeline: 1 } as never);
    await sink.write(Buffer.alloc(100));
    await sink.write(Buffer.alloc(28));
    expect(await sink.flush()).toBe(false);
    await sink.closeSegment('complete');
    await sink.finish();
    expect(counted).toBe(128);
    expect(inner.calls).toEqual(['open 000000010000000000000002', 'write 100', 'write 28', 'flush', 'close complete', 'finish']);
  });
});
