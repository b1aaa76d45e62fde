// Combining a chain in place (combine/in-place.ts) against combine's own plan (plan.ts): the lengths
// at each step, the incremental file fed at every split, and random chains of one file whose final
// bytes must equal those planReconstruction gives, failures included.
import { describe, expect, it } from 'vitest';
import { IncrementalApplier, InPlaceChain, inPlaceLengths, type InPlaceOp } from '../../../src/combine/in-place.js';
import { encodeIncrementalFile, incrementalHeaderLength, type IncrementalHeader } from '../../../src/combine/incremental-file.js';
import { planReconstruction, type PlanSource } from '../../../src/combine/plan.js';
import { CombineError } from '../../../src/errors.js';
import { chunked, prng, randomSplit, splits } from '../helpers/splits.js';

/** A small block size keeps the random chains fast; the rules do not depend on it. */
const B = 16;
const layout = { blockSize: B };
const header = (blockNumbers: number[], truncationBlockLength: number): IncrementalHeader => ({
  blockNumbers,
  truncationBlockLength,
  headerLength: incrementalHeaderLength(blockNumbers.length, B),
});

function perform(file: Buffer, ops: readonly InPlaceOp[]): Buffer {
  let out = file;
  for (const op of ops) {
    if (op.op === 'length') {
      const next = Buffer.alloc(op.bytes);
      out.copy(next, 0, 0, Math.min(out.length, op.bytes));
      out = next;
    } else {
      const end = op.position + op.bytes.length;
      if (end > out.length) {
        const next = Buffer.alloc(end);
        out.copy(next);
        out = next;
      }
      out.set(op.bytes, op.position);
    }
  }
  return out;
}

/** Apply an incremental file, fed as `chunks`, to `file`. */
function applyIn(file: Buffer, chunks: readonly Buffer[], newest: boolean) {
  const a = new IncrementalApplier('INCREMENTAL.1', file.length, newest, layout);
  let out = file;
  for (const chunk of chunks) out = perform(out, a.push(chunk));
  return { out, applied: a.finish() };
}

const blockOf = (seed: number) => Buffer.alloc(B, seed & 0xff);
const fullBytes = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (seed * 31 + i) & 0xff));

describe('inPlaceLengths', () => {
  it('an older incremental only drops a partial last block; it never truncates', () => {
    expect(inPlaceLengths(3 * B + 5, header([], 1), false, B)).toEqual({ keepBytes: 3 * B, lengthBytes: 3 * B });
    expect(inPlaceLengths(3 * B, header([7], 1), false, B)).toEqual({ keepBytes: 3 * B, lengthBytes: 3 * B });
  });
  it("the newest cuts to its truncation length, and extends to it with zeros (the partial block's bytes gone)", () => {
    expect(inPlaceLengths(5 * B, header([], 2), true, B)).toEqual({ keepBytes: 2 * B, lengthBytes: 2 * B });
    expect(inPlaceLengths(2 * B + 3, header([], 4), true, B)).toEqual({ keepBytes: 2 * B, lengthBytes: 4 * B });
  });
});

describe('IncrementalApplier', () => {
  const file = fullBytes(3 * B + 7, 1);
  const inc = encodeIncrementalFile([4, 1], 3, [blockOf(0xaa), blockOf(0xbb)], layout);

  it('writes each block at its number; a block past the end extends the file with zeros', () => {
    const { out, applied } = applyIn(file, [inc], false);
    expect(applied).toEqual({ header: header([4, 1], 3), completeBlocks: 2 });
    expect(out.length).toBe(5 * B);
    expect(out.subarray(0, B)).toEqual(file.subarray(0, B));
    expect(out.subarray(B, 2 * B)).toEqual(blockOf(0xbb));
    expect(out.subarray(3 * B, 4 * B)).toEqual(Buffer.alloc(B)); // the partial block is dropped
    expect(out.subarray(4 * B)).toEqual(blockOf(0xaa));
  });

  it.each(splits(inc))('gives the same file fed %s (chunk boundaries inside the header and the blocks)', (_, chunks) => {
    expect(applyIn(file, chunks, true).out).toEqual(applyIn(file, [inc], true).out);
  });

  it('a body that ends inside the blocks reports the blocks it wrote whole', () => {
    const cut = inc.subarray(0, incrementalHeaderLength(2, B) + B + 3);
    expect(applyIn(file, chunked(cut, 5), false).applied.completeBlocks).toBe(1);
  });

  it('a body that ends inside the header, or a bad magic number, is a CombineError', () => {
    expect(() => applyIn(file, [inc.subarray(0, 13)], false)).toThrow(CombineError);
    const bad = Buffer.from(inc);
    bad.writeUInt32LE(0x12345678, 0);
    expect(() => applyIn(file, chunked(bad, 3), false)).toThrow(/bad incremental magic/);
  });
});

/** One backup's copy of the file: whole, incremental (its body maybe cut short or its magic broken), or none. */
type Entry =
  | { kind: 'full'; bytes: Buffer }
  | { kind: 'incremental'; header: IncrementalHeader; bytes: Buffer; damaged: 'short' | 'magic' | undefined }
  | { kind: 'absent' };

/** What combine makes of the file: reconstruct.c's walk back from the newest backup and planReconstruction. */
function combined(chain: readonly Entry[]): Buffer | undefined | 'error' {
  const newest = chain.at(-1)!;
  if (newest.kind === 'absent') return undefined;
  if (newest.kind === 'full') return newest.bytes;
  const files: Buffer[] = [newest.bytes];
  const older: PlanSource[] = [];
  let full = false;
  for (let i = chain.length - 2; i >= 0 && !full; i--) {
    const e = chain[i]!;
    if (e.kind === 'absent') return 'error';
    if (e.kind === 'full') {
      older.push({ kind: 'full', sizeBytes: e.bytes.length });
      full = true;
    } else {
      if (e.damaged === 'magic') return 'error';
      older.push({ kind: 'incremental', header: e.header });
    }
    files.push(e.bytes);
  }
  if (!full || newest.damaged === 'magic') return 'error';
  const plan = planReconstruction(newest.header, older, B);
  if (plan.bytesNeeded.some((need, i) => need > files[i]!.length)) return 'error';
  const out = Buffer.alloc(plan.blockLength * B);
  let at = 0;
  for (const run of plan.runs) {
    if (run.source !== null) files[run.source]!.copy(out, at, run.offset, run.offset + run.blocks * B);
    at += run.blocks * B;
  }
  return out;
}

/** The same chain applied in place, as chain-apply.ts does with files. */
function inPlace(chain: readonly Entry[], r: () => number): Buffer | undefined | 'error' {
  const ledger = new InPlaceChain(chain.length, B);
  let file: Buffer | undefined;
  for (const [step, e] of chain.entries()) {
    ledger.begin(step);
    ledger.directory('base/5');
    if (e.kind === 'full') {
      ledger.fullFile('base/5/1');
      file = e.bytes;
    } else if (e.kind === 'incremental' && ledger.incremental('base/5/1', 'base/5/INCREMENTAL.1') === 'apply') {
      try {
        const { out, applied } = applyIn(file!, randomSplit(e.bytes, Math.floor(r() * 1e9)), ledger.newest);
        file = out;
        ledger.applied('base/5/1', applied);
      } catch (err) {
        if (!(err instanceof CombineError)) throw err;
        ledger.headerFailed('base/5/1', err);
      }
    }
    if (ledger.end().includes('base/5/1')) file = undefined;
  }
  return ledger.finish() ? 'error' : file;
}

function randomEntry(r: () => number, first: boolean, damage: boolean): Entry {
  const pick = r();
  if (first || pick < 0.2) return { kind: 'full', bytes: fullBytes(Math.floor(r() * 8 * B), Math.floor(r() * 1000)) };
  if (pick < 0.3) return { kind: 'absent' };
  const blocks = [...new Set(Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * 10)))];
  if (r() < 0.5) blocks.sort((a, b) => a - b);
  const trunc = Math.floor(r() * 10);
  let bytes = encodeIncrementalFile(
    blocks,
    trunc,
    blocks.map(() => blockOf(Math.floor(r() * 256))),
    layout,
  );
  let damaged: 'short' | 'magic' | undefined;
  if (damage && r() < 0.15 && blocks.length > 0) {
    damaged = 'short';
    bytes = bytes.subarray(0, incrementalHeaderLength(blocks.length, B) + Math.floor(r() * blocks.length * B));
  } else if (damage && r() < 0.05) {
    damaged = 'magic';
    bytes = Buffer.from(bytes);
    bytes.writeUInt32LE(0xdeadbeef, 0);
  }
  return { kind: 'incremental', header: header(blocks, trunc), bytes, damaged };
}

describe('a chain applied in place equals combine', () => {
  const full = (size: number, seed = 1): Entry => ({ kind: 'full', bytes: fullBytes(size, seed) });
  const inc = (blocks: number[], trunc: number, seed = 0x40): Entry => ({
    kind: 'incremental',
    header: header(blocks, trunc),
    bytes: encodeIncrementalFile(
      blocks,
      trunc,
      blocks.map((_, i) => blockOf(seed + i)),
      layout,
    ),
    damaged: undefined,
  });
  const same = (chain: Entry[]) => {
    const want = combined(chain);
    expect(inPlace(chain, prng(1))).toEqual(want);
    return want;
  };

  it('a listed block past the end of the file', () => expect(same([full(2 * B), inc([6], 2)])).toHaveLength(7 * B));
  it('an intermediate truncation shorter than a later one (combine reads the full copy again)', () => {
    const out = same([full(6 * B), inc([0], 2), inc([], 6)]);
    expect((out as Buffer).subarray(4 * B)).toEqual(fullBytes(6 * B, 1).subarray(4 * B));
  });
  it('an intermediate block past the newest truncation is dropped', () =>
    expect(same([full(4 * B), inc([3], 4), inc([], 2)])).toHaveLength(2 * B));
  it('a partial trailing block of the full copy reads as zeros', () => {
    const out = same([full(2 * B + 5), inc([], 3)]) as Buffer;
    expect(out.subarray(2 * B)).toEqual(Buffer.alloc(B));
    same([full(2 * B + 5), inc([4], 2), inc([], 3)]);
  });
  it('a file sent whole in an intermediate backup starts over from that copy', () =>
    same([full(3 * B), inc([0], 3), full(B + 1, 9), inc([2], 3)]));
  it('a file missing from an intermediate backup: combine refuses a later incremental, accepts a later full copy', () => {
    expect(same([full(3 * B), { kind: 'absent' }, inc([0], 3)])).toBe('error');
    same([full(3 * B), { kind: 'absent' }, inc([0], 3), full(B)]);
    same([full(3 * B), inc([0], 3), { kind: 'absent' }]);
  });
  it('a short incremental fails only when a block it lacks is used', () => {
    const short = (e: Entry & { kind: 'incremental' }, keep: number): Entry => ({
      ...e,
      bytes: e.bytes.subarray(0, e.header.headerLength + keep),
      damaged: 'short',
    });
    const middle = inc([1, 5], 6) as Entry & { kind: 'incremental' };
    expect(same([full(6 * B), short(middle, B), inc([], 3)])).not.toBe('error'); // block 5 is past the newest truncation
    expect(same([full(6 * B), short(middle, B), inc([], 6)])).toBe('error');
    expect(same([full(6 * B), short(middle, B), inc([5], 6)])).not.toBe('error'); // the newest has block 5
  });

  it('random chains of one file (2 to 6 backups, damage included)', () => {
    const r = prng(20261206);
    let errors = 0;
    for (let n = 0; n < 3000; n++) {
      const length = 2 + Math.floor(r() * 5);
      const chain = Array.from({ length }, (_, i) => randomEntry(r, i === 0, true));
      const want = combined(chain);
      if (want === 'error') errors++;
      expect(inPlace(chain, r), `chain ${n}: ${JSON.stringify(chain.map((e) => (e.kind === 'incremental' ? e.header : e.kind)))}`).toEqual(
        want,
      );
    }
    // The generator reaches both outcomes.
    expect(errors).toBeGreaterThan(50);
    expect(errors).toBeLessThan(2900);
  });
});
