// Block sourcing for reconstruction (reconstruct.c's rules) with synthetic headers.
import { describe, expect, it } from 'vitest';
import { planReconstruction, type PlanSource } from '../../../src/combine/plan.js';
import { incrementalHeaderLength } from '../../../src/combine/incremental-file.js';

const B = 8192;
const inc = (blockNumbers: number[], truncationBlockLength: number) => ({
  blockNumbers,
  truncationBlockLength,
  headerLength: incrementalHeaderLength(blockNumbers.length),
});
const full = (blocks: number): PlanSource => ({ kind: 'full', sizeBytes: blocks * B });

/** Expand runs to one [source, offset] per output block. */
function perBlock(p: ReturnType<typeof planReconstruction>): string[] {
  return p.runs.flatMap((r) => Array.from({ length: r.blocks }, (_, i) => (r.source === null ? 'z' : `${r.source}@${r.offset / B + i}`)));
}

describe('planReconstruction', () => {
  it('takes changed blocks from the newest file and the rest from the full backup', () => {
    const p = planReconstruction(inc([1, 3], 4), [full(4)]);
    // The incremental's blocks sit after its one-block header: file blocks 1 and 2.
    expect(perBlock(p)).toEqual(['1@0', '0@1', '1@2', '0@2']);
    expect(p.blockLength).toBe(4);
    expect(p.fullCopyFrom).toBeUndefined();
    expect(p.blocksFrom).toEqual([2, 2]);
    expect(p.bytesNeeded).toEqual([3 * B, 3 * B]);
  });

  it('truncation: blocks past truncation_block_length in older backups are dropped', () => {
    const p = planReconstruction(inc([], 2), [full(5)]);
    expect(perBlock(p)).toEqual(['1@0', '1@1']);
    expect(p.fullCopyFrom).toBeUndefined();
  });

  it('extension: blocks above truncation length come only from the newest file, gaps are zero', () => {
    const p = planReconstruction(inc([5], 2), [full(2)]);
    expect(p.blockLength).toBe(6);
    expect(perBlock(p)).toEqual(['1@0', '1@1', 'z', 'z', 'z', '0@1']);
    expect(p.zeroBlocks).toBe(3);
    expect(p.runs).toHaveLength(3);
  });

  it('a block found nowhere below the truncation length is zero (the full file was shorter)', () => {
    const p = planReconstruction(inc([], 3), [full(1)]);
    expect(perBlock(p)).toEqual(['1@0', 'z', 'z']);
  });

  it('walks a chain newest first: the middle incremental wins over the full file', () => {
    const middle: PlanSource = { kind: 'incremental', header: inc([0, 2, 9], 10) };
    const p = planReconstruction(inc([2], 4), [middle, full(4)]);
    // block 0 from the middle backup (its first block), 1 and 3 from full, 2 from the newest.
    expect(perBlock(p)).toEqual(['1@1', '2@1', '0@1', '2@3']);
    expect(p.blocksFrom).toEqual([1, 1, 2]);
  });

  it('blocks of an older incremental past the newest truncation length are ignored', () => {
    const middle: PlanSource = { kind: 'incremental', header: inc([3], 4) };
    const p = planReconstruction(inc([], 2), [middle, full(4)]);
    expect(perBlock(p)).toEqual(['2@0', '2@1']);
  });

  it('whole-file copy when nothing newer is needed and the full file has exactly the right length', () => {
    const p = planReconstruction(inc([], 3), [{ kind: 'incremental', header: inc([], 3) }, full(3)]);
    expect(p.fullCopyFrom).toBe(2);
    expect(p.runs).toEqual([{ source: 2, offset: 0, blocks: 3 }]);
    expect(planReconstruction(inc([], 3), [full(4)]).fullCopyFrom).toBeUndefined();
  });

  it('coalesces contiguous reads into one run', () => {
    const p = planReconstruction(inc([4, 5, 6], 8), [full(8)]);
    expect(p.runs).toEqual([
      { source: 1, offset: 0, blocks: 4 },
      { source: 0, offset: B, blocks: 3 },
      { source: 1, offset: 7 * B, blocks: 1 },
    ]);
  });
});
