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
