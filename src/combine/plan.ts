/**
 * Where each block of a reconstructed relation file comes from, following pg_combinebackup's
 * reconstruct.c: the output is `max(truncation_block_length, highest listed block + 1)` blocks long;
 * blocks the newest incremental file carries come from it; every other block below its
 * truncation_block_length comes from the newest older backup that has it, walking back until a full
 * copy of the file; a block found nowhere is zero-filled (the server extended the file without
 * WAL-logging that block). Pure: the caller reads the headers and file sizes.
 * @module
 */
import { DEFAULT_BLOCK_SIZE, type IncrementalHeader } from './incremental-file.js';

/** One older version of the file, as found in an older backup of the chain. */
export type PlanSource = { kind: 'full'; sizeBytes: number } | { kind: 'incremental'; header: IncrementalHeader };

/** Consecutive output blocks read from one place (or zero-filled). */
export interface ReconstructionRun {
  /** Index of the source: 0 is the newest incremental file, 1.. the `older` list in order; `null` = zeros. */
  source: number | null;
  /** Byte offset of the first block in that source (0 for zeros). */
  offset: number;
  /** Number of blocks. */
  blocks: number;
}

/** What {@link planReconstruction} returns. */
export interface ReconstructionPlan {
  /** Output length in blocks. */
  blockLength: number;
  /** Runs in output order, covering every block once. */
  runs: ReconstructionRun[];
  /**
   * When set, the output is exactly that full source file (no newer block needed and the file is exactly
   * truncation_block_length blocks long): it can be copied whole.
   */
  fullCopyFrom: number | undefined;
  /** Blocks read from each source (index as in {@link ReconstructionRun.source}). */
  blocksFrom: number[];
  /** Zero-filled blocks. */
  zeroBlocks: number;
  /** Bytes each source must hold for the plan to be readable (0 when unused). */
  bytesNeeded: number[];
}

/**
 * Plan the reconstruction of one file.
 * @param latest the header of the newest backup's `INCREMENTAL.<name>`.
 * @param older the file in older backups, newest first, ending with the first full copy found (the
 *   caller stops looking there, as reconstruct.c does).
 * @example
 * ```ts
 * planReconstruction({ blockNumbers: [1], truncationBlockLength: 3, headerLength: 8192 }, [{ kind: 'full', sizeBytes: 3 * 8192 }]).runs
 * // [{ source: 1, offset: 0, blocks: 1 }, { source: 0, offset: 8192, blocks: 1 }, { source: 1, offset: 16384, blocks: 1 }]
 * ```
 */
export function planReconstruction(
  latest: IncrementalHeader,
  older: readonly PlanSource[],
  blockSize = DEFAULT_BLOCK_SIZE,
): ReconstructionPlan {
  const trunc = latest.truncationBlockLength;
  let blockLength = trunc;
  for (const b of latest.blockNumbers) if (b >= blockLength) blockLength = b + 1;

  const source = new Int32Array(blockLength).fill(-1);
  const offset = new Float64Array(blockLength);
  let fullCopyPossible = true;
  latest.blockNumbers.forEach((b, i) => {
    source[b] = 0;
    offset[b] = latest.headerLength + i * blockSize;
    fullCopyPossible = false;
  });

  let fullCopyFrom: number | undefined;
  for (let s = 0; s < older.length; s++) {
    const src = older[s]!;
    const index = s + 1;
    if (src.kind === 'full') {
      const have = Math.floor(src.sizeBytes / blockSize);
      for (let b = 0; b < trunc && b < have; b++) {
        if (source[b] === -1) {
          source[b] = index;
          offset[b] = b * blockSize;
        }
      }
      if (fullCopyPossible && trunc * blockSize === src.sizeBytes) fullCopyFrom = index;
      break;
    }
    src.header.blockNumbers.forEach((b, i) => {
      if (b < trunc && source[b] === -1) {
        source[b] = index;
        offset[b] = src.header.headerLength + i * blockSize;
        fullCopyPossible = false;
      }
    });
  }

  const blocksFrom = new Array<number>(older.length + 1).fill(0);
  const bytesNeeded = new Array<number>(older.length + 1).fill(0);
  const runs: ReconstructionRun[] = [];
  let zeroBlocks = 0;
  for (let b = 0; b < blockLength; b++) {
    const s = source[b]!;
    const off = offset[b]!;
    if (s === -1) zeroBlocks++;
    else {
      blocksFrom[s]!++;
      bytesNeeded[s] = Math.max(bytesNeeded[s]!, off + blockSize);
    }
    const last = runs[runs.length - 1];
    if (last && (s === -1 ? last.source === null : last.source === s && last.offset + last.blocks * blockSize === off)) {
      last.blocks++;
    } else {
      runs.push({ source: s === -1 ? null : s, offset: s === -1 ? 0 : off, blocks: 1 });
    }
  }
  return { blockLength, runs, fullCopyFrom, blocksFrom, zeroBlocks, bytesNeeded };
}
