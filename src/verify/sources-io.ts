/**
 * The file-backed sources of a verification: archive files opened (and decompressed) for reading, WAL
 * segment files in a directory, and the manifest member found in an uncompressed single-tar backup by
 * reading its headers only.
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { decompressorFor } from '../compress/decompress.js';
import { BLOCK_SIZE, bodySize, decodeHeader, paddingSize } from '../tar/header.js';
import type { WalSource } from './sources.js';
import type { ArchiveOpener, ArchiveRef } from './types.js';

const READ_CHUNK = 1024 * 1024;
/** The first read of a WAL segment (a multiple of the WAL page size). */
const FIRST_WAL_READ = 64 * 1024;

/**
 * Opens `.tar` archives, and compressed ones through the compression layer's decompressors (gzip and
 * lz4 always; zstd with Node's built-in zstd or the `fzstd` package). Throws a `CompressionError` when
 * the archive's method cannot be decompressed here.
 */
export const defaultArchiveOpener: ArchiveOpener = (archive: ArchiveRef) => {
  if (archive.compression === 'none') return createReadStream(archive.path, { highWaterMark: READ_CHUNK });
  // The decompressor first: it throws when the method is unavailable, before a file is opened.
  const decompress = decompressorFor(archive.compression);
  // Errors of either stream end the iteration over `decompress`.
  pipeline(createReadStream(archive.path, { highWaterMark: READ_CHUNK }), decompress, () => undefined);
  return decompress;
};

/** WAL segments in a directory. */
export function directoryWalSource(dir: string): WalSource {
  let bufs: [Buffer, Buffer] | undefined;
  return {
    description: `directory "${dir}"`,
    async list() {
      const out = new Map<string, number>();
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return out;
      }
      for (const name of names) {
        if (!/^[0-9A-F]{24}$/.test(name)) continue;
        try {
          const st = await stat(join(dir, name));
          if (st.isFile()) out.set(name, st.size);
        } catch {
          // Vanished or unreadable: treated as absent; reading it would fail anyway.
        }
      }
      return out;
    },
    // Two buffers for the whole source (one file is read at a time), the next chunk read while the caller
    // checks this one: a read stream would allocate a fresh 1 MiB buffer per read, 16 per segment, for
    // the collector to find. Reads start small and double: the range of a backup taken on a quiet server
    // ends a few hundred bytes into its segment, and the checker stops there; the pages a read does not
    // reach are never touched, so they cost no memory.
    async *read(name) {
      bufs ??= [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
      const fh = await open(join(dir, name), 'r');
      let size = FIRST_WAL_READ;
      let pending: Promise<{ bytesRead: number }> | undefined = fh.read(bufs[0], 0, size, 0);
      try {
        let which = 0;
        let pos = 0;
        while (pending) {
          const bytesRead: number = (await pending).bytesRead;
          pending = undefined;
          if (bytesRead === 0) return;
          const buf = bufs[which]!;
          pos += bytesRead;
          if (bytesRead === size) {
            which ^= 1;
            size = Math.min(size * 2, READ_CHUNK);
            pending = fh.read(bufs[which]!, 0, size, pos);
          }
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await pending?.catch(() => undefined);
        await fh.close();
      }
    },
    async close() {},
  };
}

/**
 * The body of the top-level `backup_manifest` member of an uncompressed tar file, found by reading one
 * header per member and skipping the bodies (pg_basebackup and `pgbb backup -D -` put it last, so a
 * stream would read the whole archive to reach it). Returns `undefined` when the walk cannot find it:
 * no such member, a header that does not check out, or names from pax or GNU long-name headers the
 * walk does not interpret; the caller then reads the archive as a stream.
 */
export async function findManifestInTarFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const block = Buffer.alloc(BLOCK_SIZE);
    let pos = 0;
    let extended = false;
    while (pos + BLOCK_SIZE <= size) {
      const { bytesRead } = await fh.read(block, 0, BLOCK_SIZE, pos);
      if (bytesRead < BLOCK_SIZE) return undefined;
      const d = decodeHeader(block);
      if (d.zeroBlock || !d.checksumValid || d.invalidField !== undefined) return undefined;
      const h = d.header;
      const body = bodySize(h);
      if (h.type === 'pax-header' || h.type === 'gnu-long-name') extended = true;
      else if (h.type === 'file' && (h.name === 'backup_manifest' || h.name === './backup_manifest')) {
        // A name a pax or long-name header overrode is the stream reader's to interpret.
        if (extended || h.size > maxBytes || pos + BLOCK_SIZE + h.size > size) return undefined;
        const out = Buffer.alloc(h.size);
        let got = 0;
        while (got < h.size) {
          const r = await fh.read(out, got, h.size - got, pos + BLOCK_SIZE + got);
          if (r.bytesRead === 0) return undefined;
          got += r.bytesRead;
        }
        return out;
      } else if (h.type !== 'pax-global-header') extended = false;
      pos += BLOCK_SIZE + body + paddingSize(body);
    }
    return undefined;
  } finally {
    await fh.close();
  }
}
