/**
 * Reading a repository's stored objects for verification: a backup's objects streamed and decompressed
 * for the tar checks while their SHA-256 and size are taken on the way (one read per object), and the
 * archived WAL as a verification WAL source. Nothing is staged on disk.
 * @module
 */
import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import { decompressorFor } from '../compress/decompress.js';
import type { StorageCallOptions } from '../storage/types.js';
import type { WalSource } from '../verify/sources.js';
import type { ArchiveOpener, ArchiveRef } from '../verify/types.js';
import type { Repository } from './repository.js';
import type { ParsedWalKey } from './wal-keys.js';

/** The size and SHA-256 of a stored object, as read. */
export interface ObjectDigest {
  size: number;
  sha256: string;
}

/** The stored bytes of `source`, yielded as they are while `onEnd` receives their digest at the end. */
async function* digesting(source: AsyncIterable<Uint8Array>, onEnd: (d: ObjectDigest) => void): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  onEnd({ size, sha256: hash.digest('hex') });
}

/** `raw` decompressed as `compression` says (errors of either side end the iteration). */
function decompressed(raw: AsyncIterable<Uint8Array>, compression: string): AsyncIterable<Uint8Array> {
  if (compression === 'none') return raw;
  const decompress = decompressorFor(compression);
  pipeline(Readable.from(raw), decompress, () => undefined);
  return decompress;
}

/**
 * An {@link ArchiveOpener} over the objects of backup `id`, and the digests of the objects it read to
 * their end (an archive whose reading stopped early has none: its caller reads it again to checksum it).
 */
export function backupObjectReader(
  repository: Repository,
  id: string,
  options: StorageCallOptions,
): { open: ArchiveOpener; digests: Map<string, ObjectDigest>; read(name: string): Promise<ObjectDigest> } {
  const digests = new Map<string, ObjectDigest>();
  const record = (name: string) => (d: ObjectDigest) => {
    if (!digests.has(name)) digests.set(name, d);
  };
  const open: ArchiveOpener = (ref: ArchiveRef) => {
    async function* raw(): AsyncGenerator<Uint8Array> {
      yield* digesting(await repository.openBackupObject(id, ref.name, options), record(ref.name));
    }
    return decompressed(raw(), ref.compression);
  };
  const read = async (name: string): Promise<ObjectDigest> => {
    let digest: ObjectDigest | undefined;
    for await (const _ of digesting(await repository.openBackupObject(id, name, options), (d) => (digest = d))) {
      // only the digest is wanted
    }
    record(name)(digest!);
    return digest!;
  };
  return { open, digests, read };
}

/**
 * The repository's archived WAL as a verification WAL source: each stored segment (any compression),
 * listed at the segment size so that the checker knows them for complete segments.
 */
export function repositoryWalSource(
  repository: Repository,
  keys: readonly ParsedWalKey[],
  segmentSize: number,
  options: StorageCallOptions,
): WalSource {
  const byName = new Map<string, ParsedWalKey>();
  for (const k of keys) if (k.kind === 'segment' && !byName.has(k.name)) byName.set(k.name, k);
  return {
    description: `the WAL archive of ${repository.location}`,
    async list() {
      return new Map([...byName.keys()].map((name) => [name, segmentSize]));
    },
    async *read(name) {
      const key = byName.get(name);
      if (!key) throw new Error(`"${name}" is not in the WAL archive`);
      const raw = await repository.storage.get(key.key, options);
      for await (const chunk of decompressed(raw, key.kind === 'segment' ? key.compression : 'none')) {
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      }
    },
    async close() {},
  };
}
