// A chunk source that behaves like BackupArchive.chunks() with its receive buffers reused on release().

/**
 * Hands out `archive` in `size`-byte views of one scratch buffer, as the receive buffers do: after
 * release() the next chunk overwrites the same memory; without it each chunk gets fresh memory.
 */
export function reusingSource(
  archive: Buffer,
  size: number,
): AsyncIterableIterator<Buffer> & { release(): void; releases: number; buffers: Set<ArrayBufferLike> } {
  let pos = 0;
  let scratch = Buffer.alloc(size);
  let released = true;
  const source = {
    releases: 0,
    buffers: new Set<ArrayBufferLike>(),
    release(): void {
      released = true;
      source.releases++;
    },
    async next(): Promise<IteratorResult<Buffer>> {
      if (pos >= archive.length) return { done: true, value: undefined };
      if (!released) scratch = Buffer.alloc(size);
      released = false;
      const n = archive.copy(scratch, 0, pos, pos + size);
      pos += n;
      source.buffers.add(scratch.buffer);
      return { done: false, value: scratch.subarray(0, n) };
    },
    [Symbol.asyncIterator]() {
      return source;
    },
  };
  return source;
}
