/**
 * Bounding the peak memory of a tar-format backup by collecting V8's young generation every few
 * milliseconds while the backup runs, and the whole heap when dead buffers pile up outside it anyway.
 * Process-level tuning, so it lives in the CLI: the library leaves the garbage collector alone.
 * @module
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the young generation is collected while the heap changes, in milliseconds. */
export const YOUNG_GC_INTERVAL_MS = 5;
/** Memory held by ArrayBuffers (V8's `external_memory`) above which the whole heap is collected. */
export const EXTERNAL_LIMIT_BYTES = 24 * 1024 * 1024;
/**
 * Least time between two full collections, in milliseconds: V8 frees the backing stores of dead
 * buffers on a background thread after the collection, so its count stays high for a moment.
 */
export const FULL_GC_GAP_MS = 50;

/** V8's `gc`: a full collection without options, a minor one with `{ type: 'minor' }`. */
type V8Gc = (options?: { type: 'minor' }) => void;
let gcFunction: V8Gc | null | undefined;

/** V8's `gc` function, taken once from a context made while `--expose-gc` is set; null where that fails. */
function exposedGc(): V8Gc | null {
  if (gcFunction !== undefined) return gcFunction;
  gcFunction = null;
  try {
    setFlagsFromString('--expose-gc');
    // The flag takes effect for contexts created from now on: take `gc` from a fresh one.
    const fn = runInNewContext('gc') as unknown;
    if (typeof fn === 'function') gcFunction = fn as V8Gc;
  } catch {
    // Only memory is at stake.
  } finally {
    // Contexts made later (vm users, workers' own flags aside) get no `gc` global.
    setFlagsFromString('--no-expose-gc');
  }
  return gcFunction;
}

/**
 * Starts collecting the young generation every {@link YOUNG_GC_INTERVAL_MS} ms while the heap
 * changes (not while waiting for a checkpoint or an fsync), and the whole heap when ArrayBuffers hold
 * more than {@link EXTERNAL_LIMIT_BYTES}; returns the function that stops it.
 *
 * Every byte of a backup arrives in a 512 KiB receive buffer that is garbage a millisecond or two
 * later, but V8 collects when the JavaScript heap fills, and a backup allocates little JavaScript:
 * 20-40 MB of dead receive buffers piled up between collections (peak RSS 91-95 MB for 300 MB in
 * tar format, 74-78 MB with this, for about 0.02 s of CPU; a minor collection of a young generation
 * this small takes ~0.15 ms). With client compression, buffers wait in the compressor's queue long
 * enough to survive two minor collections and be promoted, and V8 only collects the old generation
 * once they add up to 64 MB more than after its last full collection: peak RSS 158 MB with gzip, 151
 * with zstd for 300 MB; with a full collection (2-3 ms for this small heap) whenever buffers hold more
 * than 24 MB, 108 and 124 MB (18 and 7 full collections). Not for plain format: extraction creates
 * files between reads, so buffers live long enough to be promoted (at 300 MB, peak RSS rose from 88 to
 * 113 MB with minor collections alone and stayed at 85-93 MB with full ones added; at 4 GB both cut it
 * from 108-115 to 90-94 MB but cost 0.3-0.7 s more CPU on a 7 s backup).
 */
export function collectYoungGarbage(): () => void {
  // `gc` is taken on the first tick rather than now: making a V8 context costs ~2 ms, which then falls
  // while the connection is being set up instead of before it starts.
  let gc: V8Gc | null | undefined;
  let lastUsed = -1;
  let lastFull = 0;
  const timer = setInterval(() => {
    gc ??= exposedGc();
    if (gc === null) {
      clearInterval(timer);
      return;
    }
    // external_memory is in V8's statistics since Node 20 but not in @types/node's.
    const stats = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { external_memory?: number };
    if ((stats.external_memory ?? 0) > EXTERNAL_LIMIT_BYTES && Date.now() - lastFull >= FULL_GC_GAP_MS) {
      gc();
      lastFull = Date.now();
    } else if (stats.used_heap_size !== lastUsed) {
      gc({ type: 'minor' });
    } else {
      return;
    }
    lastUsed = getHeapStatistics().used_heap_size;
  }, YOUNG_GC_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
