// Framer: a message that straddles chunks lying back to back in one ArrayBuffer (socket reads into
// one receive slab) is handed out as a view, not copied; chunks from separate buffers still copy.
import { describe, expect, it } from 'vitest';
import { Framer, type Frame } from '../../src/protocol/framer.js';
import { build } from './fixtures/backend-messages.js';

const bodies = [Buffer.alloc(300, 1), Buffer.alloc(5000, 2), Buffer.alloc(0), Buffer.alloc(777, 3)];
const stream = Buffer.concat([...bodies.map((b) => build.copyData(b)), build.readyForQuery()]);

function drain(f: Framer, out: Frame[]): void {
  for (let m; (m = f.pull()); ) out.push(m);
}

function check(out: Frame[]): void {
  expect(out.map((m) => m.type)).toEqual([0x64, 0x64, 0x64, 0x64, 0x5a]);
  bodies.forEach((b, i) => expect(out[i]!.body.equals(b)).toBe(true));
}

describe('Framer over contiguous chunks', () => {
  it('hands out views of the shared buffer at every split into two and three pieces', () => {
    for (let a = 1; a < stream.length; a += 7) {
      for (const b of [a, Math.min(stream.length, a + 321), stream.length]) {
        const f = new Framer();
        const out: Frame[] = [];
        for (const [s, e] of [
          [0, a],
          [a, b],
          [b, stream.length],
        ] as const) {
          f.push(stream.subarray(s, e));
          drain(f, out);
        }
        check(out);
        for (const m of out) expect(m.body.buffer).toBe(stream.buffer);
      }
    }
  });

  it('byte by byte, every body is still a view', () => {
    const f = new Framer();
    const out: Frame[] = [];
    for (let i = 0; i < stream.length; i++) {
      f.push(stream.subarray(i, i + 1));
      drain(f, out);
    }
    check(out);
    for (const m of out) expect(m.body.buffer).toBe(stream.buffer);
  });

  it('copies when the pieces come from different buffers, or are not adjacent', () => {
    for (let at = 1; at < stream.length; at += 13) {
      const f = new Framer();
      const out: Frame[] = [];
      f.push(Buffer.from(stream.subarray(0, at)));
      f.push(Buffer.from(stream.subarray(at)));
      drain(f, out);
      check(out);
    }
    // Same ArrayBuffer, but with a gap: the second piece does not start where the first ends.
    const spaced = Buffer.concat([stream.subarray(0, 400), Buffer.alloc(10, 0xee), stream.subarray(400)]);
    const f = new Framer();
    const out: Frame[] = [];
    f.push(spaced.subarray(0, 400));
    f.push(spaced.subarray(410));
    drain(f, out);
    check(out);
    // A copy: its bytes do not lie inside `spaced` (pooled allocations may share the ArrayBuffer).
    const body = out[1]!.body;
    const inside =
      body.buffer === spaced.buffer && body.byteOffset >= spaced.byteOffset && body.byteOffset < spaced.byteOffset + spaced.length;
    expect(inside).toBe(false);
  });
});

describe('Framer.relocatePartial', () => {
  it('moves the unfinished message into a fresh buffer at every split, and the rest read behind it is a view', () => {
    for (let at = 1; at < stream.length; at++) {
      const f = new Framer();
      const out: Frame[] = [];
      f.push(Buffer.from(stream.subarray(0, at)));
      drain(f, out);
      const slab = Buffer.alloc(4 * stream.length, 0xee);
      const moved = f.relocatePartial(slab);
      const unread = f.bufferedBytes;
      expect(moved).toBe(unread);
      // What a socket read into the slab right behind the moved bytes produces.
      const rest = slab.subarray(moved, moved + stream.length - at);
      stream.copy(rest, 0, at);
      f.push(rest);
      const before = out.length;
      drain(f, out);
      check(out);
      // Every message that was unfinished or unread when the slab was switched is a view of the slab.
      for (const m of out.slice(before)) expect(m.body.length === 0 || m.body.buffer === slab.buffer).toBe(true);
      expect(f.consumedBytes).toBe(stream.length);
    }
  });

  it('moves only the unfinished message: whole ones not yet pulled stay views of where they came from', () => {
    const first = stream.subarray(0, 5 + 300); // the first CopyData, whole
    for (let at = first.length + 1; at < stream.length; at++) {
      const f = new Framer();
      const received = Buffer.from(stream.subarray(0, at));
      // Two reads that lie back to back: relocation must also cut inside the second.
      f.push(received.subarray(0, Math.min(at, first.length + 2)));
      f.push(received.subarray(Math.min(at, first.length + 2)));
      const slab = Buffer.alloc(4 * stream.length, 0xee);
      const moved = f.relocatePartial(slab);
      expect(moved).toBeLessThan(at - first.length + 1);
      expect(f.bufferedBytes).toBe(at);
      const rest = slab.subarray(moved, moved + stream.length - at);
      stream.copy(rest, 0, at);
      f.push(rest);
      const out: Frame[] = [];
      drain(f, out);
      check(out);
      expect(out[0]!.body.buffer).toBe(received.buffer);
    }
  });

  it('moves nothing when the unfinished message would take more than half the buffer, or there is none', () => {
    const f = new Framer();
    expect(f.relocatePartial(Buffer.alloc(64))).toBe(0);
    f.push(stream.subarray(0, 200));
    expect(f.relocatePartial(Buffer.alloc(399))).toBe(0);
    expect(f.relocatePartial(Buffer.alloc(400))).toBe(200);
    f.push(Buffer.from(stream.subarray(200, 5 + 300)));
    // Whole messages only: nothing unfinished to move.
    expect(f.relocatePartial(Buffer.alloc(4096))).toBe(0);
    f.push(Buffer.from(stream.subarray(5 + 300)));
    const out: Frame[] = [];
    drain(f, out);
    check(out);
  });
});
