/**
 * WAL archiving into a repository (`pgbb receive-wal --repo`): a {@link WalSegmentStore} for
 * `receiveWal` that keeps the segment in progress in a local spool (wal-spool.ts) and stores each
 * completed segment, compressed as asked, under `wal/<segment>[.gz|.lz4|.zst]`, and each timeline
 * history file under `wal/<timeline>.history` (wal-keys.ts).
 *
 * Durability: the flush position the server is told is the end of the last segment stored in the
 * repository. The sink's `flush()` and the close of an incomplete segment resolve `false` (nothing of
 * the segment in progress counts), and the close of a complete segment resolves only once its put did.
 * A replication slot therefore holds on the server every byte not yet stored, and a receiver host that
 * dies loses nothing: the next run streams the unstored segment again.
 *
 * No repository lock is taken: a receiver runs for days, and the lock would keep every backup and expire
 * out. It only adds objects under `wal/` that no backup writes; expire removes only WAL older than the
 * oldest backup it keeps, and what a receiver stores is newer, or (catching up on old WAL its slot held)
 * WAL no kept backup needs: neither makes expire remove WAL a kept backup needs.
 * @module
 */
import { compressArchive, decompressArchive } from '../compress/archive.js';
import { NO_COMPRESSION, resolveCompression, type CompressionInput, type CompressionSpec } from '../compress/spec.js';
import { ConfigError, RepositoryError, StateError } from '../errors.js';
import { PARTIAL_SUFFIX, parseArchiveFileName } from '../archive/names.js';
import type { ArchiveFile } from '../archive/start.js';
import type { WalSegmentStore, WalServerIdentity } from '../archive/store.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalSink } from '../wal/sink.js';
import type { Repository } from './repository.js';
import { parseWalKey, WAL_PREFIX, walHistoryKey, walSegmentKey } from './wal-keys.js';
import { WalSpool, type SpoolSegmentFile } from './wal-spool.js';
import { walStartFiles } from './wal-start.js';

/** Options of {@link RepositoryWalStore}. */
export interface RepositoryWalStoreOptions {
  /**
   * The local spool directory: the segment in progress is written there (`<segment>.partial`, 0600),
   * and a `.partial` there says where to resume after a restart. Created 0700. Give each receiver its
   * own: `defaultWalSpoolDirectory(repository.location, slotName)` derives one from the repository and
   * the slot.
   */
  spoolDirectory: string;
  /**
   * Compress each stored segment (`'gzip'`, `'lz4:1'`, `'zstd'`); history files are stored as they are.
   * @default none
   */
  compression?: CompressionInput | CompressionSpec | undefined;
}

interface OpenSegment {
  name: string;
  segno: bigint;
  segmentSize: number;
  file: SpoolSegmentFile;
  position: number;
}

/**
 * A repository's WAL archive as `receiveWal`'s store. Pass it as `store`, with a replication slot.
 * @example
 * ```ts
 * import { defaultWalSpoolDirectory, openRepository, RepositoryWalStore } from 'pg-basebackup/repository';
 * import { receiveWal } from 'pg-basebackup/wal';
 *
 * await using repo = await openRepository('s3://backups/db1?region=eu-west-1');
 * const store = new RepositoryWalStore(repo, { spoolDirectory: defaultWalSpoolDirectory(repo.location, 'archiver'), compression: 'zstd' });
 * for await (const ev of receiveWal({ connection: 'host=db1 user=replicator', slotName: 'archiver', store })) {
 *   if (ev.type === 'segment-completed') console.log(`stored ${ev.segment}`);
 * }
 * ```
 */
export class RepositoryWalStore implements WalSegmentStore {
  /** How stored segments are compressed. */
  readonly compression: CompressionSpec;
  /** The spool directory (see {@link RepositoryWalStoreOptions.spoolDirectory}). */
  readonly spoolDirectory: string;
  readonly #spool: WalSpool;
  #segmentSize: number | undefined;

  constructor(
    /** The repository the WAL goes to. */
    readonly repository: Repository,
    options: RepositoryWalStoreOptions,
  ) {
    this.compression = options.compression === undefined ? NO_COMPRESSION : resolveCompression(options.compression);
    if (this.compression.location === 'server') throw new ConfigError('WAL is compressed by the receiver: drop the "server-" prefix');
    this.spoolDirectory = options.spoolDirectory;
    this.#spool = new WalSpool(options.spoolDirectory);
  }

  get description(): string {
    return `repository ${this.repository.location}`;
  }

  prepare(): Promise<void> {
    return this.#spool.prepare();
  }

  /** Claims the repository for the server's cluster (recording it, and the segment size, on first use). */
  async checkServer(server: WalServerIdentity): Promise<void> {
    await this.repository.claim({
      systemIdentifier: server.systemIdentifier,
      majorVersion: server.majorVersion,
      walSegmentSize: server.segmentSize,
    });
    this.#segmentSize = server.segmentSize;
  }

  #knownSegmentSize(): number {
    if (this.#segmentSize === undefined) throw new StateError('the repository WAL store was not told the server (checkServer)');
    return this.#segmentSize;
  }

  async list(): Promise<ArchiveFile[]> {
    const segmentSize = this.#knownSegmentSize();
    const stored: ArchiveFile[] = [];
    for await (const object of this.repository.storage.list({ prefix: WAL_PREFIX })) {
      const parsed = parseWalKey(object.key);
      if (parsed !== undefined) stored.push({ name: parsed.key.slice(WAL_PREFIX.length), bytes: object.size });
    }
    return walStartFiles(stored, await this.#spool.list(segmentSize), segmentSize);
  }

  async uncompressedBytes(file: ArchiveFile): Promise<number> {
    let total = 0;
    for await (const chunk of decompressArchive(await this.repository.storage.get(WAL_PREFIX + file.name), file.name))
      total += chunk.length;
    return total;
  }

  async readSegmentStart(file: ArchiveFile, bytes: number): Promise<Buffer> {
    if (file.name.endsWith(PARTIAL_SUFFIX)) return this.#spool.readStart(file.name, bytes);
    const plain = parseArchiveFileName(file.name, this.#knownSegmentSize());
    const key = WAL_PREFIX + file.name;
    const stream =
      plain?.kind === 'segment' && plain.compression === 'none'
        ? await this.repository.storage.get(key, { range: { offset: 0, length: bytes } })
        : await this.repository.storage.get(key);
    const parts: Buffer[] = [];
    let have = 0;
    try {
      for await (const chunk of decompressArchive(stream, file.name)) {
        parts.push(Buffer.from(chunk));
        have += chunk.length;
        if (have >= bytes) break;
      }
    } finally {
      stream.destroy();
    }
    return Buffer.concat(parts).subarray(0, bytes);
  }

  openSink(): WalSink {
    return new RepositoryWalSink({
      spool: this.#spool,
      storeSegment: (name, segmentSize, signal) => this.#storeSegment(name, segmentSize, signal),
      storeHistory: async (timeline, content, signal) => {
        await this.repository.storage.put(walHistoryKey(timeline), content, { signal });
      },
    });
  }

  /** Stores a completed segment from the spool; resolves once the object is durable. */
  async #storeSegment(name: string, segmentSize: number, signal: AbortSignal): Promise<void> {
    const algorithm = this.compression.algorithm;
    const source = this.#spool.read(name);
    try {
      const body = algorithm === 'none' ? source : compressArchive(source, this.compression);
      const stored = await this.repository.storage.put(
        walSegmentKey(name, algorithm),
        body,
        algorithm === 'none' ? { contentLength: segmentSize, signal } : { signal },
      );
      if (algorithm === 'none' && stored.size !== segmentSize) {
        throw new RepositoryError(`segment ${name} was stored with ${stored.size} bytes instead of ${segmentSize}`, { key: stored.key });
      }
    } finally {
      source.destroy();
    }
  }
}

/** What a {@link RepositoryWalSink} writes through. */
interface RepositoryWalTarget {
  spool: WalSpool;
  /** Stores the completed `<name>.partial` of the spool; resolves once it is durable. `signal` cancels the put. */
  storeSegment(name: string, segmentSize: number, signal: AbortSignal): Promise<void>;
  storeHistory(timeline: number, content: Buffer, signal: AbortSignal): Promise<void>;
}

/** The sink of one streaming session: see the module documentation. */
class RepositoryWalSink implements WalSink {
  /** Writes are synchronous write(2) calls into the spool file. */
  readonly writesDataAtOnce = true;
  readonly #target: RepositoryWalTarget;
  #segment: OpenSegment | undefined;
  /** Cancels a put in flight when the stream aborts the sink (a put stalled on a hung server, say). */
  readonly #uploads = new AbortController();

  constructor(target: RepositoryWalTarget) {
    this.#target = target;
  }

  async openSegment(target: WalSegmentTarget): Promise<void> {
    if (this.#uploads.signal.aborted) throw new StateError('the WAL sink was aborted');
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
    if (target.startOffset !== 0) throw new StateError('a segment for the repository is written from its start');
    const parsed = parseArchiveFileName(target.name, target.segmentSize);
    if (parsed?.kind !== 'segment' || parsed.partial || parsed.compression !== 'none') {
      throw new StateError(`refusing to spool WAL under the name ${JSON.stringify(target.name)}`);
    }
    const file = await this.#target.spool.create(target.name);
    this.#segment = { name: target.name, segno: parsed.segno, segmentSize: target.segmentSize, file, position: 0 };
  }

  async write(data: Buffer): Promise<void> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    if (seg.position + data.length > seg.segmentSize) {
      throw new StateError(`write of ${data.length} bytes at offset ${seg.position} runs past the end of segment ${seg.name}`);
    }
    seg.file.write(data, seg.position);
    seg.position += data.length;
  }

  /** Nothing of the segment in progress counts as flushed: only stored segments do. */
  flush(): Promise<false> {
    return Promise.resolve(false);
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void | false> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    this.#segment = undefined;
    await seg.file.close();
    if (mode === 'padded') throw new StateError('the repository stores complete segments only: a segment cannot be padded');
    // An incomplete segment stays in the spool, where the next run finds it; it is not in the repository.
    if (mode === 'partial') return false;
    if (seg.position !== seg.segmentSize) {
      throw new StateError(`segment ${seg.name} is not complete (${seg.position} of ${seg.segmentSize} bytes)`);
    }
    await this.#target.storeSegment(seg.name, seg.segmentSize, this.#uploads.signal);
    await this.#target.spool.removeThrough(seg.segno, seg.segmentSize);
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    const match = /^([0-9A-F]{8})\.history$/.exec(name);
    if (!match) throw new StateError(`refusing to store a timeline history file named ${JSON.stringify(name)}`);
    await this.#target.storeHistory(Number.parseInt(match[1]!, 16), content, this.#uploads.signal);
  }

  async finish(): Promise<void> {
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
  }

  /** Stops writing and cancels a put in flight; the `.partial` stays in the spool. */
  async abort(reason?: unknown): Promise<void> {
    if (!this.#uploads.signal.aborted) this.#uploads.abort(reason);
    const seg = this.#segment;
    this.#segment = undefined;
    await seg?.file.close();
  }
}
