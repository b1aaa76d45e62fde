/**
 * Handing receive buffers back. `BackupArchive.chunks()` yields views of the connection's receive
 * buffers and has a `release()` (`ArchiveChunks`): once a sink has written every chunk it was handed to
 * the kernel and keeps none of them, it calls it, and the buffers behind those chunks are refilled instead
 * of new ones being allocated (what keeps a backup's memory flat). A sink that may hold a chunk (a batch
 * not yet written, a compressor, a rewrite) must not call it then.
 * @module
 */

/** The `release()` of `bytes` when it is an `ArchiveChunks` iterator, else undefined. */
export function releaseOf(bytes: AsyncIterable<Buffer | Uint8Array>): (() => void) | undefined {
  const release = (bytes as { release?: unknown }).release;
  return typeof release === 'function' ? () => release.call(bytes) : undefined;
}
