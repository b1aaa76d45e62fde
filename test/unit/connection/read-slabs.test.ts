// ReadSlabs and createTransport's onread path: big reads into shared slabs, handed out as views, in
// order, with pause()/resume() still applying backpressure.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  createTransport,
  READ_SLAB_BYTES,
  READ_SLAB_MIN_TAIL_BYTES,
  READ_SLAB_POOL_SIZE,
  ReadSlabs,
} from '../../../src/connection/socket.js';
import type { ResolvedConnectionOptions } from '../../../src/connection/types.js';

describe('ReadSlabs', () => {
  it('fills one slab back to back, then starts a new one when the tail gets small', () => {
    const s = new ReadSlabs();
    const first = s.next();
    expect(first.length).toBe(READ_SLAB_BYTES);
    const a = s.take(1000, first);
    const second = s.next();
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(a.byteOffset + a.length);
    s.take(READ_SLAB_BYTES - 1000 - READ_SLAB_MIN_TAIL_BYTES + 1, second);
    const third = s.next();
    expect(third.buffer).not.toBe(first.buffer);
    expect(third.length).toBe(READ_SLAB_BYTES);
  });

  /** Fill the current slab up to its retirement with one read; returns that read. */
  function fillSlab(s: ReadSlabs): Buffer {
    const buf = s.next();
    return s.take(buf.length - READ_SLAB_MIN_TAIL_BYTES + 1, buf);
  }

  it('never reuses a slab unless recycle() is called: views stay valid while referenced', () => {
    const s = new ReadSlabs();
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 3 * READ_SLAB_POOL_SIZE; i++) {
      const chunk = fillSlab(s);
      chunk.fill(i);
      seen.add(chunk.buffer);
    }
    expect(seen.size).toBe(3 * READ_SLAB_POOL_SIZE);
  });

  it('reuses a retired slab only once every byte of it was consumed and released', () => {
    const s = new ReadSlabs();
    s.recycle(0); // the consumer releases: retired slabs are tracked from now on
    const a = fillSlab(s);
    const b = s.next(); // a is retired, b is a fresh slab
    expect(b.buffer).not.toBe(a.buffer);
    const bChunk = s.take(b.length - READ_SLAB_MIN_TAIL_BYTES + 1, b);
    // Only part of a was consumed: a is not reused.
    s.recycle(a.length - 1);
    expect(s.next().buffer).not.toBe(a.buffer);
    // All of a and b consumed and released: a goes back to the pool; b is the retired one before the current.
    s.recycle(a.length + bChunk.length);
    const c = s.next();
    s.take(c.length - READ_SLAB_MIN_TAIL_BYTES + 1, c);
    // Both went back to the pool; the last one in is taken first.
    expect(s.next().buffer).toBe(bChunk.buffer);
    s.take(READ_SLAB_BYTES - READ_SLAB_MIN_TAIL_BYTES + 1, s.next());
    expect(s.next().buffer).toBe(a.buffer);
  });

  it('moves the unread tail into the next slab with `carry`, and counts it as read from there', () => {
    const unread = Buffer.from('half a message');
    const s = new ReadSlabs((into) => unread.copy(into));
    s.recycle(0);
    const a = fillSlab(s);
    const b = s.next();
    expect(b.buffer).not.toBe(a.buffer);
    expect(b.byteOffset).toBe(unread.length);
    expect(b.length).toBe(READ_SLAB_BYTES - unread.length);
    expect(Buffer.from(b.buffer, b.byteOffset - unread.length, unread.length).equals(unread)).toBe(true);
    // a's bytes up to the moved tail consumed: a may be reused.
    s.take(b.length - READ_SLAB_MIN_TAIL_BYTES + 1, b);
    s.recycle(a.length - unread.length);
    const c = s.next();
    expect(c.buffer).toBe(a.buffer);
  });
});

describe('createTransport with onChunk', () => {
  it('delivers every byte in order, and pause() stops the chunks until resume()', async () => {
    const data = randomBytes(6 * 1024 * 1024);
    const server = createServer((s) => s.end(data));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      let chunks = 0;
      let whilePaused = 0;
      let paused = false;
      const socket = createTransport({ host: '127.0.0.1', port, keepalives: false } as unknown as ResolvedConnectionOptions, (chunk) => {
        if (paused) whilePaused++;
        hash.update(chunk);
        bytes += chunk.length;
        chunks++;
        if (chunks === 2) {
          paused = true;
          socket.pause();
          setTimeout(() => {
            paused = false;
            socket.resume();
          }, 100);
        }
      });
      await new Promise<void>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('close', () => resolve());
        socket.resume();
      });
      expect(bytes).toBe(data.length);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(whilePaused).toBe(0);
      // Far fewer reads than Node's 64 KiB default would need.
      expect(chunks).toBeLessThan(data.length / (64 * 1024));
    } finally {
      server.close();
    }
  });
});
