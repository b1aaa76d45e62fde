/**
 * The local spool of `receive-wal --repo`: a directory that holds the segment in progress as
 * `<segment>.partial` (uncompressed, written from the segment's start), until the segment is complete
 * and stored in the repository. Only the spool's file names matter after a restart (where to resume):
 * the server keeps the WAL of an unstored segment in the replication slot, so a lost or torn spool
 * costs a segment streamed again, never WAL.
 * @module
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PARTIAL_SUFFIX, parseArchiveFileName } from '../archive/names.js';
import type { ArchiveFile } from '../archive/start.js';
import { IoError } from '../errors.js';
import { writeAtSync } from '../sinks/descriptor.js';

const DIRECTORY_MODE = 0o700;
const FILE_MODE = 0o600;

function ioError(what: string, path: string, cause: unknown): IoError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`could not ${what} "${path}": ${reason}`, {
    cause,
    path,
    syscallCode: (cause as NodeJS.ErrnoException | undefined)?.code,
  });
}

/**
 * The spool directory used when none is given: `$XDG_STATE_HOME/pgbb/receive-wal/<key>` (or
 * `~/.local/state/pgbb/receive-wal/<key>`), where `<key>` is derived from the repository's location and
 * the slot, so that receivers of different repositories or slots on one host never share a spool.
 * @example
 * ```ts
 * defaultWalSpoolDirectory('s3://backups/db1', 'archiver'); // '/home/me/.local/state/pgbb/receive-wal/3f2a...'
 * ```
 */
export function defaultWalSpoolDirectory(
  repositoryLocation: string,
  slotName: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const state = env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  const key = createHash('sha256')
    .update(`${repositoryLocation}\0${slotName ?? ''}`)
    .digest('hex')
    .slice(0, 16);
  return join(state, 'pgbb', 'receive-wal', key);
}

/** One segment being written into the spool. */
export class SpoolSegmentFile {
  #handle: FileHandle | undefined;

  constructor(
    /** The file's path (`<segment>.partial`). */
    readonly path: string,
    handle: FileHandle,
  ) {
    this.#handle = handle;
  }

  /** Writes `data` at `position`, on this thread (a page-cache copy; see DirectoryWalSink). */
  write(data: Buffer, position: number): void {
    const handle = this.#handle;
    if (handle === undefined) throw ioError('write', this.path, new Error('the file is closed'));
    try {
      writeAtSync(handle.fd, data, position);
    } catch (err) {
      throw ioError('write WAL spool file', this.path, err);
    }
  }

  /** Closes the file. Idempotent; never rejects. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}

/** The spool directory. */
export class WalSpool {
  constructor(
    /** Where the spool is. */
    readonly directory: string,
  ) {}

  /** Creates the directory (0700, and its missing parents) if needed. */
  async prepare(): Promise<void> {
    try {
      const first = await mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE });
      // mkdir's mode goes through the umask.
      if (first !== undefined) await chmod(this.directory, DIRECTORY_MODE);
    } catch (err) {
      throw ioError('create the WAL spool directory', this.directory, err);
    }
  }

  /** The spool's `.partial` segment files (any other file is not the spool's and is left alone). */
  async list(segmentSize: number): Promise<ArchiveFile[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('read the WAL spool directory', this.directory, err);
    }
    const files: ArchiveFile[] = [];
    for (const name of names) {
      const parsed = parseArchiveFileName(name, segmentSize);
      if (parsed?.kind !== 'segment' || !parsed.partial || parsed.compression !== 'none') continue;
      const s = await stat(join(this.directory, name)).catch(() => undefined);
      if (s?.isFile()) files.push({ name, bytes: s.size });
    }
    return files;
  }

  /** Creates (or empties) `<segment>.partial` for writing from the segment's start. */
  async create(segment: string): Promise<SpoolSegmentFile> {
    const path = join(this.directory, segment + PARTIAL_SUFFIX);
    try {
      const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, FILE_MODE);
      await handle.chmod(FILE_MODE).catch(async (err: unknown) => {
        await handle.close().catch(() => undefined);
        throw err;
      });
      return new SpoolSegmentFile(path, handle);
    } catch (err) {
      throw ioError('create WAL spool file', path, err);
    }
  }

  /** The bytes of `<segment>.partial`, as a stream. */
  read(segment: string): Readable {
    return createReadStream(join(this.directory, segment + PARTIAL_SUFFIX));
  }

  /** The first `bytes` bytes of a spool file (fewer when it is shorter). */
  async readStart(name: string, bytes: number): Promise<Buffer> {
    const path = join(this.directory, name);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const buffer = Buffer.alloc(bytes);
      const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
      return buffer.subarray(0, bytesRead);
    } catch (err) {
      throw ioError('read WAL spool file', path, err);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /**
   * Removes every `.partial` up to segment number `segno` (any timeline): once a segment is stored,
   * nothing at or before it is resumed, and an earlier timeline's last segment (left `.partial` at a
   * switch, whose WAL the next timeline's first segment holds) is not needed either.
   */
  async removeThrough(segno: bigint, segmentSize: number): Promise<void> {
    for (const file of await this.list(segmentSize)) {
      const parsed = parseArchiveFileName(file.name, segmentSize);
      if (parsed?.kind === 'segment' && parsed.segno <= segno) await unlink(join(this.directory, file.name)).catch(() => undefined);
    }
  }
}
