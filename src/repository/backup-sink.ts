/**
 * The sink of a backup into a repository: each archive goes, as it arrives, into one streamed put under
 * `backups/<id>/` (S3: a multipart upload with several parts in flight; local: a temporary file renamed
 * into place), composed as the tar format stores it (checked header by header, the end-of-archive marker
 * added for 13/14, client compression applied). Nothing is staged on local disk. The catalog record is
 * not this sink's business: the caller commits it after {@link RepositoryBackupSink.finish}.
 * @module
 */
import { TarError } from '../errors.js';
import type { CompressionSpec } from '../compress/spec.js';
import { checkedTar, storedArchive } from '../sinks/stored-archive.js';
import type { ArchiveInfo, BackupSink, SinkCallOptions } from '../sinks/types.js';
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
    const stored = storedArchive(info, bytes, { compression: this.options.compression });
    const body = stored.inline ? checkedTar(stored.bytes, stored.inline.check, stored.inline.terminate) : stored.bytes;
    await this.#put(stored.name, body, options);
  }

  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options: SinkCallOptions = {}): Promise<void> {
    await this.#put(MANIFEST_OBJECT, bytes, options);
  }

  /** Every put resolved once it was durable: nothing is left to flush. */
  async finish(): Promise<void> {}

  /** Deletes every object of this backup, whichever call stored it. Safe to call more than once. */
  async cleanup(): Promise<void> {
    const keys: string[] = [];
    for await (const object of this.storage.list({ prefix: backupDataPrefix(this.id) })) keys.push(object.key);
    if (keys.length > 0) await this.storage.deleteMany(keys);
  }

  async #put(name: string, body: StorageBody, options: SinkCallOptions): Promise<void> {
    this.#ready ??= this.options.beforeFirstPut?.() ?? Promise.resolve();
    await this.#ready;
    const result = await this.storage.put(backupObjectKey(this.id, name), body, options.signal ? { signal: options.signal } : {});
    this.#objects.push({ name, size: result.size, sha256: result.sha256 });
  }
}

/** As the tar sinks: archive names come from the server and must be plain file names. */
function checkArchiveName(name: string): void {
  if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\\') || name.includes('\0') || name === MANIFEST_OBJECT) {
    throw new TarError(`refusing to store an archive named "${name}": archive names must be plain file names`);
  }
}
