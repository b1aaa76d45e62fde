// chunksOf (src/compress/archive.ts): a byte stream's chunks as pushed, with backpressure and the
// stream's errors, used by pipeThrough / compressArchive / decompressArchive.
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { chunksOf } from '../../../src/compress/archive.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('chunksOf', () => {
  it('yields the pushed buffers themselves, never joined, even when several wait', async () => {
    const pushed = [Buffer.from('first'), Buffer.from('second'), Buffer.from('third')];
    const stream = new Readable({ read() {} });
    // All three are buffered before iteration starts: Readable's own iterator would return one
    // 16-byte Buffer here.
    for (const b of pushed) stream.push(b);
    stream.push(null);
    const got = await collect(chunksOf(stream));
    expect(got).toHaveLength(3);
    got.forEach((g, i) => expect(g).toBe(pushed[i]));
  });

  it('pauses the stream while the consumer is slow and resumes it once the queue is empty', async () => {
    const stream = new PassThrough();
    const it = chunksOf(stream)[Symbol.asyncIterator]();
    const first = it.next();
    for (let i = 0; i < 10; i++) stream.write(Buffer.alloc(1024, i));
    expect((await first).value![0]).toBe(0);
    // The writes flow into the queue: it stops taking at 4.
    await vi.waitFor(() => expect(stream.isPaused()).toBe(true), { timeout: 5000, interval: 1 });
    const rest: number[] = [];
    stream.end();
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      rest.push(r.value[0]!);
    }
    expect(rest).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('throws the stream error', async () => {
    const stream = new PassThrough();
    stream.write('a');
    const collected = collect(chunksOf(stream));
    stream.destroy(new Error('boom'));
    await expect(collected).rejects.toThrow('boom');
  });

  it('throws ERR_STREAM_PREMATURE_CLOSE when the stream is destroyed before its end', async () => {
    const stream = new PassThrough();
    const collected = collect(chunksOf(stream));
    stream.destroy();
    await expect(collected).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('leaves no listeners behind when the consumer stops early', async () => {
    const stream = new PassThrough();
    stream.write('a');
    stream.write('b');
    for await (const c of chunksOf(stream)) {
      expect(c.toString()).toBe('a');
      break;
    }
    expect(stream.listenerCount('data')).toBe(0);
    expect(stream.listenerCount('error')).toBe(0);
  });
});
