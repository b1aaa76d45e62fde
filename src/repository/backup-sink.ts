/**
 * The sink of a backup into a repository: each archive goes, as it arrives, into one streamed put under
 * `backups/<id>/` (S3: a multipart upload with several parts in flight; local: a temporary file renamed
 * into place), composed as the tar format stores it (checked header by header, the end-of-archive marker
 * added for 13/14, client compression applied). The streamed WAL's `pg_wal.tar` is a put of its own,
 * fed while the WAL arrives, beside the data archives' puts. Nothing is staged on local disk. The
 * catalog record is not this sink's business: the caller commits it after {@link RepositoryBackupSink.finish}.
 * @module
 */
import { once } from 'node:events';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { compressedOutput } from '../compress/archive.js';
import { AbortError, TarError } from '../errors.js';
import { compressedArchiveName, type CompressionSpec } from '../compress/spec.js';
import { checkedTar, storedArchive } from '../sinks/stored-archive.js';
import type { ArchiveInfo, ArchiveStream, BackupSink, SinkCallOptions } from '../sinks/types.js';
import type { Storage, StorageBody } from '../storage/types.js';
import { backupDataPrefix, backupObjectKey } from './layout.js';
import type { BackupObject } from './record.js';

/** Name of the manifest object, as in a tar-format backup directory. */
export const MANIFEST_OBJECT = 'backup_manifest';

/** Options of {@link RepositoryBackupSink}. */
export interface RepositoryBackupSinkOptions {
  /** Client-side compression of the uncompressed archives. @default none */
  compression?: CompressionSpec | undefined;
  /**
   * Called once before the first object is stored (the repository's identity check): a failure there
   * stores nothing.
   */
  beforeFirstPut?: (() => Promise<void>) | undefined;
}

/** {@link BackupSink} into a repository's `backups/<id>/`. */
export class RepositoryBackupSink implements BackupSink {
  readonly #objects: BackupObject[] = [];
  #ready: Promise<void> | undefined;
  /**
   * The pushed archives (pg_wal.tar): each one's put, settled once stored or abandoned, and the
   * uncompressed bytes written into it so far.
   */
  readonly #pushed: { put: Promise<void>; bytes: () => number }[] = [];
  /** Resolved by the first data archive: the identity check needs the session, which starts after WAL is prepared. */
  #firstArchive!: () => void;
  readonly #archiveBegun = new Promise<void>((resolve) => {
    this.#firstArchive = resolve;
  });

  constructor(
    private readonly storage: Storage,
    /** The backup id. */
    readonly id: string,
    private readonly options: RepositoryBackupSinkOptions = {},
  ) {}

  /** What was stored so far, in order. */
  get objects(): readonly BackupObject[] {
    return this.#objects;
  }

  async writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options: SinkCallOptions = {}): Promise<void> {
    checkArchiveName(info.name);
    this.#firstArchive();
    const stored = storedArchive(info, bytes, { compression: this.options.compression });
    const body = stored.inline ? checkedTar(stored.bytes, stored.inline.check, stored.inline.terminate) : stored.bytes;
    await this.#put(stored.name, body, options);
  }

  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options: SinkCallOptions = {}): Promise<void> {
    await this.#put(MANIFEST_OBJECT, bytes, options);
  }

  /**
   * Opens `name` (`pg_wal.tar`, named `.gz`/`.lz4`/`.zst` with client compression) as a put fed by
   * the returned stream. The put starts with the first data archive (after the identity check); ending
   * the stream completes it, destroying the stream abandons it (a multipart upload is aborted), and a
   * failed put destroys the stream, so its writer sees the error.
   */
  async openArchiveStream(name: string): Promise<ArchiveStream> {
    checkArchiveName(name);
    const compression = this.options.compression;
    const storedName = compression ? compressedArchiveName(name, compression.algorithm) : name;
    const body = new CountingPassThrough();
    const compressor = compression ? compressedOutput(body, compression).output : undefined;
    const output: Writable = compressor ?? body;
    // A compressor destroyed without an error does not end or destroy what it pipes into.
    output.once('close', () => {
      if (!body.writableEnded) body.destroy(new AbortError(`${storedName} was abandoned`));
    });
    const abandoned = once(body, 'close').then(() => {
      throw new AbortError(`${storedName} was abandoned before the backup's first archive`);
    });
    // The put reads through an iterable that leaves `body` alone when the put stops reading: the storage
    // destroys what it reads with the SDK's raw error (or a bare abort), while the writer must see the
    // put's typed one, given below.
    const put = Promise.race([this.#archiveBegun, abandoned]).then(() => this.#put(storedName, borrowedChunks(body), {}));
    put.catch((err: unknown) => {
      if (!body.destroyed) body.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    this.#pushed.push({ put, bytes: () => compressor?.bytesIn ?? body.bytes });
    return { output, sync: undefined, writesAtOnce: false };
  }

  /** Uncompressed bytes written into the pushed archives (`pg_wal.tar`'s size before compression). */
  get pushedBytes(): number {
    return this.#pushed.reduce((n, pushed) => n + pushed.bytes(), 0);
  }

  /** Every put resolved once it was durable; waits for the pushed archives' puts. */
  async finish(): Promise<void> {
    await Promise.all(this.#pushed.map((pushed) => pushed.put));
  }

  /** Deletes every object of this backup, whichever call stored it. Safe to call more than once. */
  async cleanup(): Promise<void> {
    // A pushed archive's put may still be winding down (its multipart upload being aborted).
    await Promise.allSettled(this.#pushed.map((pushed) => pushed.put));
    const keys: string[] = [];
    for await (const object of this.storage.list({ prefix: backupDataPrefix(this.id) })) keys.push(object.key);
    if (keys.length > 0) await this.storage.deleteMany(keys);
  }

  async #put(name: string, body: StorageBody, options: SinkCallOptions): Promise<void> {
    this.#ready ??= this.options.beforeFirstPut?.() ?? Promise.resolve();
    await this.#ready;
    const result = await this.storage.put(backupObjectKey(this.id, name), body, options.signal ? { signal: options.signal } : {});
    // Listed in the tar-format directory's order, the manifest last, whichever put ended first.
    const manifestAt = this.#objects.findIndex((o) => o.name === MANIFEST_OBJECT);
    this.#objects.splice(manifestAt === -1 ? this.#objects.length : manifestAt, 0, { name, size: result.size, sha256: result.sha256 });
  }
}

/**
 * The chunks of `readable` for a consumer that does not own it: stopping early (the iterator's return or
 * throw) leaves the stream as it is, where a stream's own iterator destroys it (with a bare AbortError
 * when it is stopped by an error). A stream destroyed before its end ends the iteration with its error.
 */
async function* borrowedChunks(readable: Readable): AsyncGenerator<Buffer> {
  for (;;) {
    const chunk = readable.read() as Buffer | null;
    if (chunk !== null) {
      yield chunk;
      continue;
    }
    if (readable.readableEnded) return;
    if (readable.destroyed) throw readable.errored ?? new AbortError('the archive stream was destroyed before its end');
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        readable.off('readable', wake);
        readable.off('end', wake);
        readable.off('close', wake);
        resolve();
      };
      readable.on('readable', wake);
      readable.on('end', wake);
      readable.on('close', wake);
    });
  }
}

/** A pass-through that counts what went through it. */
class CountingPassThrough extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** As the tar sinks: archive names come from the server and must be plain file names. */
function checkArchiveName(name: string): void {
  if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\\') || name.includes('\0') || name === MANIFEST_OBJECT) {
    throw new TarError(`refusing to store an archive named "${name}": archive names must be plain file names`);
  }
}
