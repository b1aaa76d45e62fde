/**
 * Writing a restored data directory and its tablespaces with PostgreSQL's modes (directories 0700,
 * files 0600), from tar archives or a plain backup, and taking back everything written when the restore
 * fails or is aborted: directories it created are removed, directories that existed (empty) are emptied.
 * @module
 */
import { createReadStream, ftruncateSync, readSync, writeSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, rm, stat, symlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { algorithmOf, decompressorFor } from '../compress/decompress.js';
import type { AppliedIncremental, IncrementalApplier } from '../combine/in-place.js';
import { AbortError, CombineError, IoError, PgBackupError, TargetError } from '../errors.js';
import { extractTar } from '../tar/extract.js';
import { writeAtSync } from '../sinks/descriptor.js';
import { archiveLocation, type ArchiveLocation } from './backup-source.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** One read of an uncompressed archive. */
const READ_BYTES = 1024 * 1024;
/** Give the event loop a turn (signals, timers) after reading this much without waiting. */
const YIELD_EVERY_BYTES = 16 * 1024 * 1024;

/** Where a member of an archive goes: an absolute path, or `undefined` to leave it out. */
export type MemberRoute = (name: string, type: 'file' | 'directory' | 'symlink') => string | undefined;

/** What sees the bytes of one file member as they stream by. */
export interface MemberTap {
  update(chunk: Uint8Array): void;
  /** The member's bytes ended (all of them were given to {@link update}). */
  end(): void;
}

/**
 * Sees every file member of an archive, written or left out, as it streams by (a manifest check while
 * restoring from a repository, so that the archives are read once).
 */
export type MemberObserver = (name: string, size: number) => MemberTap | undefined;

/**
 * Writes a file member to `dest` in place of the default (a new file): `body` must be read to its end.
 * `member` is its name in the archive.
 */
export type MemberWriter = (dest: string, body: AsyncIterable<Buffer>, member: string) => Promise<void>;

async function* tapped(body: AsyncIterable<Buffer>, tap: MemberTap | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    tap?.update(chunk);
    yield chunk;
  }
  tap?.end();
}

function ioError(what: string, path: string, err: unknown): PgBackupError {
  if (err instanceof PgBackupError) return err;
  const e = err as NodeJS.ErrnoException;
  return new IoError(`${what} "${path}": ${e.message}`, { cause: err, path, syscallCode: e.code });
}

/** The directories of one restore, and how to undo them. */
export class RestoreLayout {
  readonly #created: string[] = [];
  readonly #emptied: string[] = [];
  readonly #noSync: boolean;
  readonly #signal: AbortSignal | undefined;
  #files = 0;
  #bytes = 0;
  /** Directories this restore made (with their mode): most members land in one already made. */
  readonly #dirs = new Set<string>();

  constructor(o: { noSync?: boolean | undefined; signal?: AbortSignal | undefined }) {
    this.#noSync = o.noSync ?? false;
    this.#signal = o.signal;
  }

  /** Files and bytes written so far. */
  get stats(): { files: number; bytes: number } {
    return { files: this.#files, bytes: this.#bytes };
  }

  /**
   * Check that `path` is absent or an empty directory (what {@link claim} needs), without creating it.
   * @throws TargetError when it is not.
   */
  static async checkUsable(path: string, what: string): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTDIR') throw new TargetError(`${what} "${path}" exists but is not a directory`, { path, cause: err });
      throw ioError(`could not access ${what}`, path, err);
    }
    if (entries.length > 0) {
      throw new TargetError(`${what} "${path}" exists but is not empty: choose an empty or new directory, or empty it first`, { path });
    }
  }

  /** Take `path` (absent or empty) as a root of the restore: created with mode 0700, undone on failure. */
  async claim(path: string, what: string): Promise<void> {
    await RestoreLayout.checkUsable(path, what);
    try {
      await mkdir(path, { mode: DIR_MODE });
      this.#created.push(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`could not create ${what}`, path, err);
      this.#emptied.push(path);
      await chmod(path, DIR_MODE).catch((e: unknown) => {
        throw ioError(`could not change the mode of ${what}`, path, e);
      });
    }
  }

  /** Undo: remove what was created, empty what was claimed. Best effort; never throws. */
  async undo(): Promise<void> {
    for (const p of [...this.#created].reverse()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
    for (const p of this.#emptied) {
      const names = await readdir(p).catch(() => [] as string[]);
      for (const n of names) await rm(join(p, n), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async #dir(path: string): Promise<void> {
    if (this.#dirs.has(path)) return;
    try {
      await mkdir(path, { recursive: true, mode: DIR_MODE });
      await chmod(path, DIR_MODE);
    } catch (err) {
      throw ioError('could not create directory', path, err);
    }
    this.#dirs.add(path);
  }

  async #writeFile(path: string, chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>, sync = !this.#noSync): Promise<void> {
    await this.#dir(dirname(path));
    let handle;
    try {
      handle = await open(path, 'wx', FILE_MODE);
    } catch (err) {
      throw ioError('could not create file', path, err);
    }
    try {
      for await (const chunk of chunks) {
        this.#signal?.throwIfAborted();
        // On this thread, as tar does: a copy into the page cache costs less than a round trip
        // through libuv's thread pool per chunk. Durability (fsync) stays asynchronous.
        for (let done = 0; done < chunk.length; ) done += writeSync(handle.fd, chunk, done, chunk.length - done);
        this.#bytes += chunk.length;
      }
      if (sync) await handle.sync();
    } catch (err) {
      throw ioError('could not write file', path, err);
    } finally {
      await handle.close().catch(() => undefined);
    }
    this.#files++;
  }

  /** Write a small file (recovery.signal, postgresql.auto.conf), replacing one the backup had. */
  async writeSmallFile(path: string, text: string): Promise<void> {
    await rm(path, { force: true });
    await this.#writeFile(path, [Buffer.from(text, 'utf8')]);
  }

  /**
   * Write `path` from `chunks`, replacing the file there (a member of a later backup of an incremental
   * chain). Not synced: the caller settles what remains at the end ({@link settleFiles}).
   */
  async replaceFile(path: string, chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>): Promise<void> {
    // remove(), not a plain unlink: an older backup may have had a directory by that name.
    await this.remove(path);
    await this.#writeFile(path, chunks, false);
  }

  /**
   * Apply an `INCREMENTAL.<name>` body to the file `path` in place: the applier made for the file's
   * current size says which lengths to set and where each block goes. A header the applier refuses is
   * returned (`failed`), with the body read to its end and the file untouched.
   */
  async applyIncremental(
    path: string,
    body: AsyncIterable<Buffer>,
    applierFor: (sizeBytes: number) => IncrementalApplier,
  ): Promise<{ applied: AppliedIncremental } | { failed: CombineError }> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (err) {
      throw ioError('could not open file', path, err);
    }
    let failed: CombineError | undefined;
    try {
      const applier = applierFor((await handle.stat()).size);
      for await (const chunk of body) {
        this.#signal?.throwIfAborted();
        if (failed) continue;
        let ops;
        try {
          ops = applier.push(chunk);
        } catch (err) {
          if (!(err instanceof CombineError)) throw err;
          failed = err;
          continue;
        }
        for (const op of ops) {
          // On this thread, as #writeFile does.
          if (op.op === 'length') ftruncateSync(handle.fd, op.bytes);
          else writeAtSync(handle.fd, op.bytes, op.position);
          if (op.op === 'write') this.#bytes += op.bytes.length;
        }
      }
      if (failed) return { failed };
      try {
        return { applied: applier.finish() };
      } catch (err) {
        if (err instanceof CombineError) return { failed: err };
        throw err;
      }
    } catch (err) {
      throw ioError('could not write file', path, err);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /** Remove `path` (a file, or a directory with what it holds) written by this restore. */
  async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true }).catch((err: unknown) => {
      throw ioError('could not remove', path, err);
    });
    for (const d of this.#dirs) if (d === path || d.startsWith(path + sep)) this.#dirs.delete(d);
  }

  /**
   * The files that remain after writing some of them more than once ({@link replaceFile},
   * {@link applyIncremental}): each is fsynced (unless noSync), and they alone are counted in
   * {@link stats}, at their final sizes.
   */
  async settleFiles(paths: Iterable<string>): Promise<void> {
    let files = 0;
    let bytes = 0;
    for (const p of paths) {
      this.#signal?.throwIfAborted();
      try {
        const h = await open(p, 'r+');
        try {
          bytes += (await h.stat()).size;
          if (!this.#noSync) await h.sync();
        } finally {
          await h.close();
        }
      } catch (err) {
        throw ioError('could not sync file', p, err);
      }
      files++;
    }
    this.#files = files;
    this.#bytes = bytes;
  }

  /**
   * Extract a (possibly compressed) tar archive, a file or a stored one; `route` decides where each
   * member goes, `observe` sees every file member's bytes, and `write` (when given) writes the file
   * members instead of creating new files.
   */
  async extractArchive(source: ArchiveLocation, route: MemberRoute, observe?: MemberObserver, write?: MemberWriter): Promise<void> {
    const archive = archiveLocation(source);
    const name = typeof source === 'string' ? source : source.name;
    const plain = typeof source === 'string' && algorithmOf(name) === 'none';
    let raw: Readable | undefined;
    let input: Readable | undefined;
    let handle: FileHandle | undefined;
    try {
      if (plain) handle = await open(source, 'r');
      else {
        raw = typeof source === 'string' ? createReadStream(source, { highWaterMark: READ_BYTES }) : await source.open(this.#signal);
        input = raw.pipe(decompressorFor(name));
        // pipe() does not forward the source's errors (a failed GET, a reset connection).
        raw.once('error', (err) => input!.destroy(err));
      }
    } catch (err) {
      throw ioError('could not restore from', archive, err);
    }
    const tar = extractTar(handle ? readPlain(handle.fd, () => tar.bytesRead) : (input as AsyncIterable<Buffer>));
    try {
      for await (const entry of tar) {
        this.#signal?.throwIfAborted();
        const member = memberName(entry.header.name, archive);
        const type = entry.header.type;
        if (type === 'directory' || type === 'file' || type === 'symlink') {
          const dest = member === '' ? undefined : route(member, type);
          const tap = type === 'file' && member !== '' ? observe?.(member, entry.header.size) : undefined;
          if (dest !== undefined) {
            if (type === 'directory') await this.#dir(dest);
            else if (type === 'file') {
              const body = tap ? tapped(entry.body, tap) : entry.body;
              await (write ? write(dest, body, member) : this.#writeFile(dest, body));
            } else await this.#symlink(entry.header.linkname, dest);
          } else if (tap) {
            for await (const _ of tapped(entry.body, tap));
          }
        }
        await entry.body.skip();
      }
    } catch (err) {
      if (this.#signal?.aborted) throw new AbortError('the restore was aborted', { cause: err });
      throw ioError('could not restore from', archive, err);
    } finally {
      input?.destroy();
      raw?.destroy();
      await handle?.close().catch(() => undefined);
    }
  }

  async #symlink(target: string, path: string): Promise<void> {
    await this.#dir(dirname(path));
    try {
      await symlink(target, path);
    } catch (err) {
      throw ioError('could not create symbolic link', path, err);
    }
  }

  /** Link `path` to `target` (pg_tblspc/<oid>, pg_wal with --waldir). */
  async link(target: string, path: string): Promise<void> {
    await this.#symlink(target, path);
  }

  /** Create a directory (0700) inside the restore. */
  async directory(path: string): Promise<void> {
    await this.#dir(path);
  }

  /**
   * Copy a plain directory tree; `route` gets paths relative to `src` (`/`-separated) and may leave
   * members out or send them elsewhere. Symbolic links are followed only where `route` says so (it sees
   * them as `symlink`; returning a path copies what the link points to there).
   */
  async copyTree(src: string, route: MemberRoute, rel = ''): Promise<void> {
    const here = rel === '' ? src : join(src, rel);
    let names: string[];
    try {
      names = (await readdir(here)).sort();
    } catch (err) {
      throw ioError('could not read directory', here, err);
    }
    for (const n of names) {
      this.#signal?.throwIfAborted();
      const r = rel === '' ? n : `${rel}/${n}`;
      const p = join(src, r);
      const st = await lstat(p).catch((err: unknown) => {
        throw ioError('could not stat', p, err);
      });
      if (st.isSymbolicLink()) {
        const dest = route(r, 'symlink');
        if (dest === undefined) continue;
        const real = await stat(p).catch((err: unknown) => {
          throw ioError('could not follow', p, err);
        });
        if (real.isDirectory()) await this.#copyInto(p, dest);
        else await this.#copyFile(p, dest);
      } else if (st.isDirectory()) {
        const dest = route(r, 'directory');
        if (dest === undefined) continue;
        await this.#dir(dest);
        await this.copyTree(src, route, r);
      } else if (st.isFile()) {
        const dest = route(r, 'file');
        if (dest !== undefined) await this.#copyFile(p, dest);
      }
    }
  }

  /** Copy the whole tree under `src` into `dest` (a tablespace or WAL directory a link points to). */
  async #copyInto(src: string, dest: string): Promise<void> {
    await this.#dir(dest);
    await this.copyTree(src, (r) => join(dest, r));
  }

  async #copyFile(src: string, dest: string): Promise<void> {
    await this.#dir(dirname(dest));
    try {
      // COPYFILE_EXCL: never overwrite; the kernel copies (copy_file_range) where it can.
      await copyFile(src, dest, 1);
      await chmod(dest, FILE_MODE);
      if (!this.#noSync) {
        const h = await open(dest, 'r+');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
      }
      this.#bytes += (await stat(dest)).size;
      this.#files++;
    } catch (err) {
      throw ioError('could not copy file to', dest, err);
    }
  }

  /** fsync the directories of the restore (after their files), unless noSync. */
  async syncDirectories(roots: readonly string[]): Promise<void> {
    if (this.#noSync) return;
    const walk = async (d: string): Promise<void> => {
      const entries = await readdir(d, { withFileTypes: true });
      for (const e of entries) if (e.isDirectory()) await walk(join(d, e.name));
      const h = await open(d, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    };
    for (const r of roots)
      await walk(r).catch((err: unknown) => {
        throw ioError('could not sync directory', r, err);
      });
  }
}

/**
 * An uncompressed archive's bytes, read on this thread (as tar does) into a few recycled buffers: a
 * buffer is filled again only once the extractor has consumed all of it (`consumed()`, its byte
 * position), so the views it handed out (valid until it pulls the next chunk) are never overwritten
 * while in use; otherwise a new one is made. The event loop gets a turn every few megabytes.
 */
async function* readPlain(fd: number, consumed: () => number): AsyncGenerator<Buffer> {
  const pool: { buf: Buffer; end: number }[] = [];
  let position = 0;
  let sinceYield = 0;
  for (;;) {
    let slot = pool.find((s) => s.end <= consumed());
    if (slot === undefined) {
      slot = { buf: Buffer.allocUnsafeSlow(READ_BYTES), end: 0 };
      pool.push(slot);
    }
    const n = readSync(fd, slot.buf, 0, READ_BYTES, position);
    if (n === 0) return;
    position += n;
    slot.end = position;
    sinceYield += n;
    if (sinceYield >= YIELD_EVERY_BYTES) {
      sinceYield = 0;
      await nextTurn();
    }
    yield slot.buf.subarray(0, n);
  }
}

/** A member's name without `./` and trailing `/`; names that would leave the directory are refused. */
function memberName(raw: string, archive: string): string {
  const name = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (name.startsWith('/') || name.split('/').includes('..')) {
    throw new IoError(`${archive} has a member outside its directory ("${raw}"): not a backup to restore`, { path: archive });
  }
  return name === '.' ? '' : name;
}
