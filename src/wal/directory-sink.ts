/**
 * {@link WalSink} writing a `pg_wal`-like directory, the way pg_receivewal and
 * `pg_basebackup -Fp -Xstream` do (walmethods.c's directory method, receivelog.c):
 * files are created 0600 at the full segment size (so a crash never leaves a short file),
 * carry a partial suffix until complete, and are fsynced with their directory on completion.
 *
 * New segments are zero-filled to their full size before any WAL, as walmethods.c does, unless
 * {@link DirectoryWalSinkOptions.zeroFill} says `'before-flush'` (the WAL archive): the size is then
 * set alone and only what is still unwritten is zero-filled when a flush is asked in the middle of
 * a segment, so the blocks are still allocated before WAL in that segment is reported durable, and a
 * segment written through before any flush (catching up) is written once instead of twice.
 * @module
 */
import { closeSync, fchmodSync, fstatSync, constants as fsConstants, ftruncateSync, openSync, renameSync, writevSync } from 'node:fs';
import { chmod, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IoError, StateError } from '../errors.js';
import { closeQuietly, fsyncDescriptor, unlinkQuietly, writeAtSync } from '../sinks/descriptor.js';
import { fsyncDirectory } from '../sinks/fsync.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalServerSettings, WalSink } from './sink.js';

/** Options of {@link DirectoryWalSink}. */
export interface DirectoryWalSinkOptions {
  /** The directory receiving the segments (e.g. `<backup>/pg_wal`). Created (0700) if missing. */
  directory: string;
  /**
   * Suffix a segment carries until it is complete. `''` writes under the final name from the
   * start, as pg_basebackup does.
   * @default '.partial'
   */
  partialSuffix?: string;
  /**
   * Create `archive_status/<segment>.done` for each complete segment and history file, so a
   * server started on this directory does not archive them again (pg_basebackup does this;
   * pg_receivewal does not).
   * @default false
   */
  markDone?: boolean;
  /**
   * fsync files and directories. Turning it off is only for tests and throw-away copies
   * (pg_basebackup's `--no-sync`); flush feedback then no longer means durable.
   * @default true
   */
  fsync?: boolean;
  /**
   * What {@link DirectoryWalSink.abort} does with the segment being written: remove it, or keep
   * it (fsynced, under its partial name) so a pg_receivewal-like archiver can resume it.
   * @default 'remove'
   */
  onAbort?: 'remove' | 'keep';
  /**
   * When a new segment's blocks are allocated by writing zeros. `'on-open'`: the whole segment, before
   * any WAL, as pg_basebackup and pg_receivewal do; a full disk shows at once, and a server later started
   * on the directory writes its WAL into allocated blocks. `'before-flush'`: the file only gets its size
   * (what was never written reads as zeros), and the unwritten rest is zero-filled when a flush is asked
   * before the segment is complete; a segment written through between flushes is written once, which
   * halves the writes of an archiver catching up (`pgbb receive-wal` uses it).
   * @default 'on-open'
   */
  zeroFill?: 'on-open' | 'before-flush';
  /**
   * Mode of created files (applied exactly, whatever the umask).
   * @default 0o600, or 0o640 once {@link DirectoryWalSink.prepare} reports a group-readable server
   */
  fileMode?: number;
  /**
   * Mode of created directories (applied exactly, whatever the umask).
   * @default 0o700, or 0o750 once {@link DirectoryWalSink.prepare} reports a group-readable server
   */
  directoryMode?: number;
  /**
   * Runs at the start of {@link DirectoryWalSink.prepare}, with the server's settings, before
   * this sink creates anything: e.g. a plain backup creates its data directory and `pg_wal`
   * there, with the modes the server's group access implies.
   */
  beforePrepare?: (settings: WalServerSettings) => Promise<void>;
}

interface OpenSegment {
  fd: number;
  name: string;
  path: string;
  segmentSize: number;
  position: number;
  /** Every byte from `position` to the end was written (zeros or WAL): the blocks are allocated. */
  allocated: boolean;
}

/** Zero-fill: one writev of this many bytes, made of a small zero block repeated (it stays in the CPU cache). */
const ZERO_WRITE_BYTES = 1024 * 1024;
const ZERO_BLOCK_BYTES = 8 * 1024;

function ioError(what: string, path: string, cause: unknown): IoError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`could not ${what} "${path}": ${reason}`, { cause, path, syscallCode: code });
}

function checkFileName(name: string): void {
  if (name === '' || name.includes('/') || name.includes('\\') || name === '.' || name === '..' || name.includes('\0')) {
    throw new StateError(`refusing to write WAL file with unsafe name ${JSON.stringify(name)}`);
  }
}

/** A `pg_wal`-like directory as a {@link WalSink}. */
export class DirectoryWalSink implements WalSink {
  /** Writes are synchronous `write(2)` calls: nothing of `data` is kept. */
  readonly writesDataAtOnce = true;
  /** The directory written to. */
  readonly directory: string;
  readonly #suffix: string;
  readonly #markDone: boolean;
  readonly #fsync: boolean;
  readonly #onAbort: 'remove' | 'keep';
  readonly #zeroFillOnOpen: boolean;
  #fileMode: number;
  #dirMode: number;
  readonly #explicitModes: boolean;
  readonly #beforePrepare: DirectoryWalSinkOptions['beforePrepare'];
  #segment: OpenSegment | undefined;
  /** The fsync of {@link DirectoryWalSink.flush} in progress, which {@link DirectoryWalSink.abort} waits for. */
  #syncing: Promise<void> | undefined;
  #prepared = false;
  #aborted = false;
  /** A segment or history file was created: modes can no longer change. */
  #wroteFiles = false;

  constructor(options: DirectoryWalSinkOptions) {
    this.directory = options.directory;
    this.#suffix = options.partialSuffix ?? '.partial';
    this.#markDone = options.markDone ?? false;
    this.#fsync = options.fsync ?? true;
    this.#onAbort = options.onAbort ?? 'remove';
    this.#zeroFillOnOpen = (options.zeroFill ?? 'on-open') === 'on-open';
    this.#fileMode = options.fileMode ?? 0o600;
    this.#dirMode = options.directoryMode ?? 0o700;
    this.#explicitModes = options.fileMode !== undefined || options.directoryMode !== undefined;
    this.#beforePrepare = options.beforePrepare;
  }

  /**
   * Told by the backup session before streaming starts: follow the server's group access
   * (pg_basebackup creates WAL 0640 in 0750 directories for a group-readable data directory)
   * unless modes were given, then create the directory.
   * @throws StateError once a segment was opened (the modes would differ between files).
   */
  async prepare(settings: WalServerSettings): Promise<void> {
    if (this.#wroteFiles || this.#aborted) throw new StateError('the WAL sink must be prepared before any WAL file is written');
    await this.#beforePrepare?.(settings);
    if (!this.#explicitModes && settings.groupReadable) {
      this.#fileMode = 0o640;
      this.#dirMode = 0o750;
    }
    await this.#prepare();
  }

  /** The path of the segment being written, if any (with its partial suffix). */
  get currentPath(): string | undefined {
    return this.#segment?.path;
  }

  async #prepare(): Promise<void> {
    if (this.#prepared) return;
    await this.#mkdir(this.directory);
    if (this.#markDone) await this.#mkdir(join(this.directory, 'archive_status'));
    this.#prepared = true;
  }

  /** mkdir -p; a directory this creates gets exactly the mode (mkdir's goes through the umask). */
  async #mkdir(path: string): Promise<void> {
    try {
      const first = await mkdir(path, { recursive: true, mode: this.#dirMode });
      if (first !== undefined) await chmod(path, this.#dirMode);
    } catch (err) {
      throw ioError('create directory', path, err);
    }
  }

  async #syncDirectory(path: string): Promise<void> {
    if (!this.#fsync) return;
    try {
      await fsyncDirectory(path);
    } catch (err) {
      throw ioError('fsync', path, err);
    }
  }

  async openSegment(target: WalSegmentTarget): Promise<void> {
    if (this.#aborted) throw new StateError('the WAL sink was aborted');
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
    checkFileName(target.name);
    if (target.startOffset < 0 || target.startOffset > target.segmentSize) {
      throw new StateError(`start offset ${target.startOffset} is outside a ${target.segmentSize}-byte segment`);
    }
    await this.#prepare();
    const path = join(this.directory, target.name + this.#suffix);
    this.#wroteFiles = true;
    // Created and sized on this thread, as pg_receivewal does (sinks/descriptor.ts says why).
    let fd: number;
    // An existing full-size file (resumed) counts as allocated: what lies past the write position stays
    // as it is (pg_receivewal writes over it and never zeroes it), so #allocate leaves it alone.
    let allocated = false;
    try {
      // No O_TRUNC: an existing full-size .partial is resumed, as receivelog.c's open_walfile does.
      fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, this.#fileMode);
    } catch (err) {
      throw ioError('open WAL file', path, err);
    }
    try {
      const { size } = fstatSync(fd);
      if (size === 0) {
        // open()'s mode goes through the umask: a group-readable backup needs the bits it strips.
        fchmodSync(fd, this.#fileMode);
        // Full size at once, so a resume finds 0 or a full segment (receivelog.c refuses anything
        // else); the blocks are allocated now, or by the WAL itself and by #allocate before a flush.
        ftruncateSync(fd, target.segmentSize);
        if (this.#zeroFillOnOpen) {
          try {
            zeroFill(fd, 0, target.segmentSize);
          } catch (err) {
            // Nothing of value in it yet, and a later run should not find a file it cannot trust.
            unlinkQuietly(path);
            throw ioError('zero-fill WAL file', path, err);
          }
          allocated = true;
        }
        // The file must exist at its full size before we report WAL in it as flushed (walmethods.c
        // fsyncs the new file and its directory right away).
        if (this.#fsync) await fsyncDescriptor(fd);
        await this.#syncDirectory(this.directory);
      } else if (size === target.segmentSize) {
        allocated = true;
      } else {
        throw new IoError(
          `WAL file "${path}" has ${size} bytes, should be 0 or ${target.segmentSize}: ` +
            'it is damaged or was written with another segment size; move it away and restart',
          { path },
        );
      }
    } catch (err) {
      closeQuietly(fd);
      throw err instanceof IoError ? err : ioError('prepare WAL file', path, err);
    }
    if (this.#aborted) {
      // abort() ran while the file was being synced: it saw no open segment, so this
      // descriptor is ours to close.
      closeQuietly(fd);
      if (this.#onAbort === 'remove') unlinkQuietly(path);
      throw new StateError('the WAL sink was aborted');
    }
    this.#segment = { fd, name: target.name, path, segmentSize: target.segmentSize, position: target.startOffset, allocated };
  }

  /**
   * Zero-fill the segment from the write position to its end, once: what pg_receivewal does to
   * every new segment, done only when WAL in a segment still being written is to be reported
   * durable, so that the rest of it has its blocks and a full disk shows here, not halfway.
   * A failure leaves the file at its full size, for a resume to start over.
   */
  #allocate(seg: OpenSegment): void {
    try {
      zeroFill(seg.fd, seg.position, seg.segmentSize);
    } catch (err) {
      throw ioError('zero-fill WAL file', seg.path, err);
    }
    seg.allocated = true;
  }

  async write(data: Buffer): Promise<void> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    if (seg.position + data.length > seg.segmentSize) {
      throw new StateError(`write of ${data.length} bytes at offset ${seg.position} runs past the end of segment ${seg.name}`);
    }
    try {
      writeAtSync(seg.fd, data, seg.position);
    } catch (err) {
      throw ioError('write WAL file', seg.path, err);
    }
    seg.position += data.length;
  }

  async flush(): Promise<void> {
    const seg = this.#segment;
    if (!seg || !this.#fsync) return;
    if (!seg.allocated) this.#allocate(seg);
    const syncing = fsyncDescriptor(seg.fd);
    this.#syncing = syncing;
    try {
      await syncing;
    } catch (err) {
      throw ioError('fsync', seg.path, err);
    } finally {
      this.#syncing = undefined;
    }
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    if (mode === 'complete' && seg.position !== seg.segmentSize) {
      throw new StateError(`segment ${seg.name} is not complete (${seg.position} of ${seg.segmentSize} bytes)`);
    }
    this.#segment = undefined;
    // Closed exactly once, failing or not: a second close of a descriptor number could close a file
    // that libuv's pool opened under that number in between.
    try {
      if (this.#fsync) await fsyncDescriptor(seg.fd);
    } catch (err) {
      closeQuietly(seg.fd);
      throw ioError('close WAL file', seg.path, err);
    }
    try {
      closeSync(seg.fd);
    } catch (err) {
      throw ioError('close WAL file', seg.path, err);
    }
    // 'padded' needs nothing more for the zeros: what was never written reads as zeros.
    if (mode !== 'partial' && this.#suffix !== '') {
      const finalPath = join(this.directory, seg.name);
      try {
        renameSync(seg.path, finalPath);
      } catch (err) {
        throw ioError('rename WAL file', seg.path, err);
      }
    }
    await this.#syncDirectory(this.directory);
    if (mode === 'complete' && this.#markDone) await this.#writeDone(seg.name);
  }

  async #writeDone(name: string): Promise<void> {
    const statusDir = join(this.directory, 'archive_status');
    const path = join(statusDir, `${name}.done`);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, this.#fileMode);
      await handle.chmod(this.#fileMode);
      if (this.#fsync) await handle.sync();
    } catch (err) {
      throw ioError('create archive status file', path, err);
    } finally {
      await handle?.close().catch(() => undefined);
    }
    await this.#syncDirectory(statusDir);
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    if (this.#aborted) throw new StateError('the WAL sink was aborted');
    checkFileName(name);
    await this.#prepare();
    const path = join(this.directory, name);
    const tmp = `${path}.tmp`;
    this.#wroteFiles = true;
    let handle: FileHandle | undefined;
    try {
      // Write aside and rename, so a crash never leaves a truncated history file (receivelog.c).
      await unlink(tmp).catch(() => undefined);
      handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, this.#fileMode);
      await handle.chmod(this.#fileMode);
      writeAtSync(handle.fd, content, 0);
      if (this.#fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(tmp, path);
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw ioError('write timeline history file', path, err);
    }
    await this.#syncDirectory(this.directory);
    if (this.#markDone) await this.#writeDone(name);
  }

  async finish(): Promise<void> {
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
    await this.#prepare();
    await this.#syncDirectory(this.directory);
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.#aborted) return;
    this.#aborted = true;
    const seg = this.#segment;
    this.#segment = undefined;
    if (!seg) return;
    // A descriptor closed under a pending fsync could be reused by the time that fsync runs.
    await this.#syncing?.catch(() => undefined);
    if (this.#onAbort === 'keep' && this.#fsync) await fsyncDescriptor(seg.fd).catch(() => undefined);
    closeQuietly(seg.fd);
    if (this.#onAbort === 'remove') unlinkQuietly(seg.path);
  }
}

/** Writes zeros over [from, to) of the file: one writev per MiB, a small zero block repeated. */
function zeroFill(fd: number, from: number, to: number): void {
  const block = Buffer.alloc(Math.min(to, ZERO_BLOCK_BYTES));
  const blocks: Buffer[] = new Array(Math.max(1, ZERO_WRITE_BYTES / block.length)).fill(block);
  for (let at = from; at < to; ) {
    const left = to - at;
    const n = writevSync(fd, left < ZERO_WRITE_BYTES ? zerosOf(block, left) : blocks, at);
    if (n <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    at += n;
  }
}

/** `length` bytes of zeros as writev buffers, `block` repeated. */
function zerosOf(block: Buffer, length: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = length; left > 0; left -= block.length) out.push(left < block.length ? block.subarray(0, left) : block);
  return out;
}
