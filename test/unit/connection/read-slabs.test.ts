// ReadSlabs and createTransport's onread path: big reads into shared slabs, handed out as views, in
// order, with pause()/resume() still applying backpressure.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTransport, READ_SLAB_BYTES, READ_SLAB_MIN_TAIL_BYTES, ReadSlabs } from '../../../src/connection/socket.js';
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
