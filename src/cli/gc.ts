/**
 * Bounding the peak memory of a backup whose compressor leaves native buffers to the garbage collector
 * (client zstd through the `@mongodb-js/zstd` package; server-calls.ts decides) by collecting V8's young
 * generation every few milliseconds while the backup runs, and the whole heap when dead buffers pile up
 * outside it anyway. Process-level tuning, so it lives in the CLI: the library leaves the garbage
 * collector alone. The measurements behind the numbers here are in bench/results and the commits that
 * set them.
 * @module
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the young generation is collected while the heap changes, in milliseconds. */
export const YOUNG_GC_INTERVAL_MS = 5;
/**
 * Growth of ArrayBuffer memory since the last collection that triggers the next one. The trigger is
 * growth, not the level: chunks being compressed and their results keep several megabytes alive for the
 * whole of a compressed backup, and collecting every few milliseconds because of them (what a level
 * did) cost a compressed backup 10-15% of its main thread's CPU while freeing nothing.
 */
export const EXTERNAL_GROWTH_BYTES = 4 * 1024 * 1024;
/** Longest time between two minor collections while the heap changes, in milliseconds. */
export const YOUNG_GC_MAX_GAP_MS = 50;
/** Memory held by ArrayBuffers (V8's `external_memory`) above which the whole heap is collected. */
export const EXTERNAL_LIMIT_BYTES = 24 * 1024 * 1024;
/**
 * Least time between two full collections, in milliseconds: V8 frees the backing stores of dead
 * buffers on a background thread after the collection, so its count stays high for a moment.
 */
export const FULL_GC_GAP_MS = 50;

/**
 * Keeps V8's young generation at the size it starts with (1 MiB per semi-space) instead of letting it
 * grow to 16 MiB: a backup makes its short-lived objects (promises, iterator results, views) at a steady
 * rate, and a grown young generation only holds more of them between collections. On the 4 GB cluster
 * this took a plain backup's peak RSS from 75-78 MB to 69 MB and tar files' from 66-67 to 61 MB, at the
 * same CPU (bench/results/issue11-stop20-young). The flag is read each time V8 would grow the young
 * generation, so setting it while running works (checked on Node 20 and 24). Process-wide, so CLI only.
 */
export function keepYoungGenerationSmall(): void {
  try {
    setFlagsFromString('--semi-space-growth-factor=1');
  } catch {
    // Only memory is at stake.
  }
}

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
 * Starts collecting garbage while a backup runs: the young generation while the heap changes (not
 * while waiting for a checkpoint or an fsync), as soon as ArrayBuffers hold
 * {@link EXTERNAL_GROWTH_BYTES} more than after the last collection (checked every
 * {@link YOUNG_GC_INTERVAL_MS} ms) and at least every {@link YOUNG_GC_MAX_GAP_MS} ms, and the whole heap
 * when ArrayBuffers hold more than {@link EXTERNAL_LIMIT_BYTES} and a quarter of that more than after the last
 * full collection (what full collections cannot free, they are not repeated for); returns the function
 * that stops it.
 *
 * Native buffers that are garbage a moment after they arrive pile up between collections and raise the
 * peak RSS, because V8 collects when the JavaScript heap fills and a backup allocates little JavaScript,
 * while a minor collection of a young generation this small is cheap. Results wait in the compressor's
 * queue long enough to survive two minor collections and be promoted, and V8 collects the old
 * generation only once they add up to far more than it held after its last full collection: hence the
 * full collections, also cheap for a heap this small, once buffers hold more than the limit.
 *
 * Receive buffers were such garbage on every path until each sink handed them back; since then the
 * collections only promoted short-lived objects there (a tar backup's peak RSS 66-68 MB without them
 * against 67-72 MB with them, and less CPU; docs/performance.md, "Stop 20"), so they run only where a
 * compressor's results are native buffers.
 */
export function startGarbageCollection(): () => void {
  // `gc` is taken on the first tick rather than now: making a V8 context takes a moment, which then
  // falls while the connection is being set up instead of before it starts.
  let gc: V8Gc | null | undefined;
  let lastUsed = -1;
  let lastFull = 0;
  let lastMinor = 0;
  // ArrayBuffer memory left by the last collection of either kind, and by the last full one.
  let externalAfter = 0;
  let externalAfterFull = 0;
  const timer = setInterval(() => {
    gc ??= exposedGc();
    if (gc === null) {
      clearInterval(timer);
      return;
    }
    const stats = heapStatistics();
    const external = stats.external_memory;
    const now = Date.now();
    // V8 frees dead buffers' memory on a background thread after a collection: the baselines follow the
    // count down as it falls, so that growth is measured from what was really left.
    if (external !== undefined) {
      externalAfter = Math.min(externalAfter, external);
      externalAfterFull = Math.min(externalAfterFull, external);
    }
    const full =
      external !== undefined &&
      external > EXTERNAL_LIMIT_BYTES &&
      external - externalAfterFull >= EXTERNAL_LIMIT_BYTES / 4 &&
      now - lastFull >= FULL_GC_GAP_MS;
    if (full) {
      gc();
      lastFull = now;
    } else if (
      stats.used_heap_size !== lastUsed &&
      (external === undefined || external - externalAfter >= EXTERNAL_GROWTH_BYTES || now - lastMinor >= YOUNG_GC_MAX_GAP_MS)
    ) {
      gc({ type: 'minor' });
      lastMinor = now;
    } else {
      return;
    }
    const after = heapStatistics();
    externalAfter = after.external_memory ?? 0;
    if (full) externalAfterFull = externalAfter;
    lastUsed = after.used_heap_size;
  }, YOUNG_GC_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** V8's heap statistics; external_memory is in them since Node 20 but not in @types/node's. */
function heapStatistics(): ReturnType<typeof getHeapStatistics> & { external_memory?: number } {
  return getHeapStatistics();
}
