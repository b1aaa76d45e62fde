/**
 * The plain-format sink (`pg_basebackup -Fp`): extracts each archive into a data directory or a
 * tablespace location, entry by entry, with the same rules as pg_basebackup's extractor.
 * @module
 */
import { closeSync, fchmodSync, lstatSync, openSync, writevSync } from 'node:fs';
import { appendFile, chmod, lstat, mkdir, open, stat, symlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { decompressArchive } from '../compress/archive.js';
import { uncompressedArchiveName } from '../compress/spec.js';
import { AbortError, ConfigError, StateError, TarError } from '../errors.js';
import { extractTar, type TarEntryBody } from '../tar/extract.js';
import { BatchedFileWriter, DEFAULT_BATCH_BYTES } from './file-writer.js';
import { releaseOf } from './release.js';
import { AUTO_CONF } from './inject.js';
import { canonicalizePath } from './tablespace-mapping.js';
import { ioError, OutputTracker } from './tracker.js';
import type { ArchiveInfo, BackupSink, Injection, SinkCallOptions } from './types.js';
import { checkEmptyOrAbsent, writeManifestFile, writeWholeFile } from './fs-util.js';

/**
 * Files up to this size are received whole and written with synchronous calls (see
 * `DirectorySink.writeSmallFile`); larger ones stream through the asynchronous batched writer.
 */
export const SMALL_FILE_BYTES = 128 * 1024;

/** Options for {@link DirectorySink}. */
export interface DirectorySinkOptions {
  /** The data directory to create. It must be empty or absent. */
  directory: string;
  /**
   * Create files 0640 and directories 0750 instead of 0600 / 0700. Set it when the server's
   * `data_directory_mode` is 0750 (a cluster initialized with `initdb --allow-group-access`), as
   * pg_basebackup does.
   * @default false
   */
  groupReadable?: boolean;
  /**
   * Tablespace relocation (`-T OLD=NEW`): server location → local location, both absolute. Locations not
   * in the map are used as they are. Build it with `parseTablespaceMapping`.
   * @default no relocation
   */
  tablespaceMapping?: ReadonlyMap<string, string>;
  /**
   * Put the WAL in this absolute directory and make `pg_wal` a symlink to it (`--waldir`).
   * The directory must be empty or absent.
   */
  waldir?: string;
  /**
   * Skip the final fsync of everything written (`--no-sync`). Faster, but a crash soon after can leave
   * the backup corrupt.
   * @default false
   */
  noSync?: boolean;
  /** Files to add for `-R`, applied once `base.tar` is extracted. */
  injection?: Injection;
  /** fsyncs in flight at once during {@link DirectorySink.finish}. @default 8 */
  syncConcurrency?: number;
  /** Bytes gathered before one `writev`. @default 65536 */
  writeBatchBytes?: number;
}

const TBLSPC_LINK = /^pg_tblspc\/[0-9]+$/;

/**
 * Writes a plain-format backup.
 *
 * @example
 * ```ts
 * const sink = new DirectorySink({ directory: '/backups/2024-05-01', groupReadable: mode === 0o750 });
 * await sink.verifyTarget();
 * await sink.writeArchive({ name: 'base.tar', tablespacePath: '', terminated: true }, archiveBytes);
 * await sink.writeManifest(manifestBytes);
 * await sink.finish();
 * ```
 */
export class DirectorySink implements BackupSink {
  private readonly tracker: OutputTracker;
  private readonly fileMode: number;
  private readonly dirMode: number;
  private readonly directory: string;
  private targetReady: Promise<void> | undefined;
  private walReady: Promise<string> | undefined;
  private readonly preparedLocations = new Map<string, Promise<void>>();
  private finished = false;

  constructor(private readonly options: DirectorySinkOptions) {
    this.directory = options.directory;
    this.tracker = new OutputTracker({ syncEarly: !options.noSync });
    this.fileMode = options.groupReadable ? 0o640 : 0o600;
    this.dirMode = options.groupReadable ? 0o750 : 0o700;
    if (options.waldir !== undefined && !isAbsolute(options.waldir)) {
      throw new ConfigError(`the WAL directory location must be an absolute path: "${options.waldir}"`);
    }
  }

  /** Paths this sink created whose parent existed before: what {@link DirectorySink.cleanup} removes. */
  get created(): readonly string[] {
    return this.tracker.created;
  }

  /**
   * Checks, without creating anything, that the target (and the WAL directory) is empty or absent, so a
   * caller can fail before connecting.
   */
  async verifyTarget(): Promise<void> {
    await checkEmptyOrAbsent(this.directory);
    if (this.options.waldir !== undefined) await checkEmptyOrAbsent(this.options.waldir);
  }

  /**
   * Prepares `pg_wal` for a WAL writer that streams during the backup, before `base.tar` arrives (as
   * pg_basebackup does): creates the data directory, `pg_wal` (or the `--waldir` symlink) and
   * `pg_wal/archive_status`. Returns the path of `pg_wal`. Safe to call more than once.
   */
  walDirectory(): Promise<string> {
    this.walReady ??= this.prepareWal();
    return this.walReady;
  }

  private async prepareWal(): Promise<string> {
    await this.ensureTarget();
    const pgWal = join(this.directory, 'pg_wal');
    const waldir = this.options.waldir;
    if (waldir !== undefined) {
      await this.prepareEmptyLocation(waldir);
      try {
        await symlink(waldir, pgWal);
      } catch (err) {
        throw ioError(`could not create symbolic link "${pgWal}"`, pgWal, err);
      }
      this.tracker.symlink(pgWal);
    } else {
      await this.mkdirTolerant(pgWal);
    }
    await this.mkdirTolerant(join(pgWal, 'archive_status'));
    return pgWal;
  }

  /**
   * Tablespace locations can be checked up front, as pg_basebackup does right after the server lists
   * them: each (mapped) location must be empty or absent. Nothing is created.
   */
  async verifyTablespaces(locations: readonly string[]): Promise<void> {
    for (const loc of locations) if (isAbsolute(loc)) await checkEmptyOrAbsent(this.mapLocation(loc));
  }

  async writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options: SinkCallOptions = {}): Promise<void> {
    if (this.finished) throw new StateError('the sink is already finished: no more archives can be written');
    // Server-compressed archives (`base.tar.zst`) are decompressed on the way in, as pg_basebackup -Fp does.
    const tarName = uncompressedArchiveName(info.name);
    if (!tarName.endsWith('.tar')) {
      throw new ConfigError(`plain format needs tar archives, got "${info.name}"`);
    }
    const tarBytes = tarName === info.name ? bytes : decompressArchive(bytes, info.name);
    const isBase = info.tablespacePath === '';
    if (isBase && tarName !== 'base.tar') {
      throw new ConfigError(`plain format writes WAL straight into pg_wal (see walDirectory()); cannot extract "${info.name}"`);
    }
    const location = isBase ? this.directory : this.tablespaceLocation(info.tablespacePath);
    const ensure = isBase ? () => this.ensureTarget() : () => this.prepareTablespace(info.tablespacePath, location);
    const symlinks: string[] = [];
    const signal = options.signal;
    let ensured = false;
    const extractor = extractTar(tarBytes);
    // The archive as received (not decompressed here): once every byte the extractor handed out is
    // written and it holds none for later, the receive buffers behind them are handed back, so memory
    // stays flat instead of waiting for the garbage collector. Nothing is copied to get there: where the
    // extractor still holds the start of the next entry, the buffers wait for a later point.
    const releaseSource = tarBytes === bytes ? releaseOf(bytes) : undefined;
    const release =
      releaseSource === undefined
        ? undefined
        : (): void => {
            if (extractor.bufferedBytes === 0) releaseSource();
          };
    for await (const entry of extractor) {
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      // Nothing is created before the first entry has arrived.
      if (!ensured) {
        await ensure();
        ensured = true;
      }
      const h = entry.header;
      const rel = safeRelativePath(h.name, entry.offset);
      if (rel === '') {
        await entry.body.skip();
        continue;
      }
      for (const link of symlinks) {
        if (rel.startsWith(`${link}/`)) {
          throw new TarError(`tar entry "${h.name}" at offset ${entry.offset} would be written through the symbolic link "${link}"`, {
            offset: entry.offset,
          });
        }
      }
      const dest = join(location, rel);
      switch (h.type) {
        case 'directory':
          if (isBase && rel === 'pg_wal' && (this.options.waldir !== undefined || this.walReady !== undefined)) {
            await this.walDirectory();
          } else {
            await this.mkdirTolerant(dest);
          }
          break;
        case 'file':
          await this.writeFile(dest, entry.body, signal, release);
          break;
        case 'symlink': {
          const target = isBase && TBLSPC_LINK.test(rel) ? this.mapLocation(h.linkname) : h.linkname;
          try {
            await symlink(target, dest).catch(async (err: unknown) => {
              if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
              // The archive did not list the parent directory first.
              await this.tracker.mkdirp(join(dest, '..'), this.dirMode);
              await symlink(target, dest);
            });
          } catch (err) {
            throw ioError(`could not create symbolic link from "${dest}" to "${target}"`, dest, err);
          }
          this.tracker.symlink(dest);
          symlinks.push(rel);
          break;
        }
        default:
          throw new TarError(
            `tar entry "${h.name}" at offset ${entry.offset} has type "${h.type}" (typeflag '${h.typeflag}'), which a PostgreSQL backup never contains`,
            { offset: entry.offset },
          );
      }
    }
    if (!ensured) await ensure();
    if (isBase && this.options.injection) await this.inject(this.options.injection);
  }

  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options: SinkCallOptions = {}): Promise<void> {
    await this.ensureTarget();
    await writeManifestFile(this.directory, bytes, this.fileMode, this.tracker, this.options, options.signal);
  }

  /** fsyncs every file and directory written (unless `noSync`). */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (!this.options.noSync) await this.tracker.syncAll(this.options.syncConcurrency ?? 8);
  }

  /** Removes every path this sink created (and what lies below them), and nothing else. */
  async cleanup(): Promise<void> {
    await this.tracker.cleanup();
  }

  /** The local location of a tablespace: relative (in-place) ones live inside the data directory. */
  private tablespaceLocation(serverPath: string): string {
    if (!isAbsolute(serverPath)) {
      const rel = safeRelativePath(serverPath, undefined);
      if (rel === '') throw new TarError(`bad tablespace location "${serverPath}"`);
      return join(this.directory, rel);
    }
    return this.mapLocation(serverPath);
  }

  private mapLocation(serverPath: string): string {
    const mapping = this.options.tablespaceMapping;
    if (!mapping || !isAbsolute(serverPath)) return serverPath;
    return mapping.get(canonicalizePath(serverPath)) ?? serverPath;
  }

  private ensureTarget(): Promise<void> {
    this.targetReady ??= this.prepareEmptyLocation(this.directory);
    return this.targetReady;
  }

  private prepareTablespace(serverPath: string, location: string): Promise<void> {
    let p = this.preparedLocations.get(location);
    if (!p) {
      p = isAbsolute(serverPath)
        ? this.prepareEmptyLocation(location)
        : this.ensureTarget().then(() => this.tracker.mkdirp(location, this.dirMode));
      this.preparedLocations.set(location, p);
    }
    return p;
  }

  /** pg_basebackup's verify_dir_is_empty_or_create: refuse a non-empty directory, create a missing one. */
  private async prepareEmptyLocation(path: string): Promise<void> {
    const exists = await checkEmptyOrAbsent(path);
    if (!exists) {
      await this.tracker.mkdirp(path, this.dirMode);
      await this.fixMode(path);
    }
  }

  /**
   * mkdir that accepts an existing directory: pg_wal and pg_wal/archive_status may already exist (made by
   * the WAL writer, or pg_wal is the --waldir symlink), as pg_basebackup also tolerates.
   */
  private async mkdirTolerant(path: string): Promise<void> {
    try {
      await mkdir(path, { mode: this.dirMode });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        const st = await stat(path).catch(() => undefined);
        if (st?.isDirectory()) return;
      }
      if (code === 'ENOENT') {
        // The archive did not list the parent first (tars from other tools may not).
        await this.tracker.mkdirp(path, this.dirMode);
        await this.fixMode(path);
        return;
      }
      throw ioError(`could not create directory "${path}"`, path, err);
    }
    this.tracker.dir(path);
    await this.fixMode(path);
  }

  /** mkdir's mode goes through the umask; group access must survive a umask of 077. */
  private async fixMode(path: string): Promise<void> {
    if (this.options.groupReadable)
      await chmod(path, this.dirMode).catch((err: unknown) => {
        throw ioError(`could not set permissions on "${path}"`, path, err);
      });
  }

  /** `release`: called once every chunk of the body handed out so far is written and none is held. */
  private async writeFile(dest: string, body: TarEntryBody, signal: AbortSignal | undefined, release?: () => void): Promise<void> {
    if (body.size <= SMALL_FILE_BYTES) {
      const parts: Buffer[] = [];
      for await (const chunk of body) {
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
        parts.push(chunk);
      }
      await this.writeSmallFile(dest, parts);
      release?.();
      return;
    }
    let handle;
    let created = true;
    try {
      handle = await open(dest, 'wx', this.fileMode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        // A duplicate entry, or a WAL segment the WAL writer already wrote: tar semantics, the last one wins.
        const st = await lstat(dest);
        if (!st.isFile()) throw ioError(`could not create file "${dest}"`, dest, err);
        handle = await open(dest, 'w', this.fileMode);
        created = false;
      } else if (code === 'ENOENT') {
        await this.tracker.mkdirp(join(dest, '..'), this.dirMode);
        handle = await open(dest, 'wx', this.fileMode);
      } else {
        throw ioError(`could not create file "${dest}"`, dest, err);
      }
    }
    if (created) this.tracker.file(dest);
    else this.tracker.touched(dest);
    try {
      if (this.options.groupReadable) await handle.chmod(this.fileMode);
      const writer = new BatchedFileWriter(handle, dest, this.options.writeBatchBytes ?? DEFAULT_BATCH_BYTES);
      for await (const chunk of body) {
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
        writer.write(chunk);
        if (writer.heldBytes === 0) release?.();
      }
      writer.flush();
      release?.();
    } finally {
      await handle.close();
    }
    this.tracker.complete(dest);
  }

  /**
   * Writes a small file in one go with synchronous calls in this thread, as pg_basebackup does. A data
   * directory is mostly small files (relation forks, free space and visibility maps, configuration);
   * with the promise API every open, chmod, write and close is a round trip through libuv's thread
   * pool, and extraction waits for each before it reads on, so the handoffs, not the writes, set the
   * pace of a plain backup (four per file, and even a small cluster has thousands of files). Writing a few
   * kilobytes into the page cache costs microseconds. Files above {@link SMALL_FILE_BYTES} keep the
   * asynchronous batched writer, whose awaited writes slow the server down when the disk is slow.
   */
  private async writeSmallFile(dest: string, parts: Buffer[]): Promise<void> {
    let fd: number;
    let created = true;
    try {
      fd = openSync(dest, 'wx', this.fileMode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      try {
        if (code === 'EEXIST') {
          // A duplicate entry, or a WAL segment the WAL writer already wrote: tar semantics, the last one wins.
          if (!lstatSync(dest).isFile()) throw err;
          fd = openSync(dest, 'w', this.fileMode);
          created = false;
        } else if (code === 'ENOENT') {
          await this.tracker.mkdirp(join(dest, '..'), this.dirMode);
          fd = openSync(dest, 'wx', this.fileMode);
        } else {
          throw err;
        }
      } catch (err2) {
        throw ioError(`could not create file "${dest}"`, dest, err2);
      }
    }
    if (created) this.tracker.file(dest);
    else this.tracker.touched(dest);
    try {
      if (this.options.groupReadable) fchmodSync(fd, this.fileMode);
      let rest = parts.filter((p) => p.length > 0);
      while (rest.length > 0) {
        let n = writevSync(fd, rest);
        if (n === 0) throw new Error('write returned 0 bytes');
        // A short write (allowed, rare on regular files) continues where it stopped.
        while (n > 0 && rest.length > 0) {
          const first = rest[0]!;
          if (n >= first.length) {
            n -= first.length;
            rest = rest.slice(1);
          } else {
            rest = [first.subarray(n), ...rest.slice(1)];
            n = 0;
          }
        }
      }
    } catch (err) {
      throw ioError(`could not write to "${dest}"`, dest, err);
    } finally {
      closeSync(fd);
    }
    this.tracker.complete(dest);
  }

  /** Applies -R after extraction: append to postgresql.auto.conf, create the extra files. */
  private async inject(injection: Injection): Promise<void> {
    if (injection.appendToAutoConf !== undefined) {
      const path = join(this.directory, AUTO_CONF);
      const existed = await lstat(path).then(
        () => true,
        () => false,
      );
      try {
        await appendFile(path, injection.appendToAutoConf, { mode: this.fileMode });
      } catch (err) {
        throw ioError(`could not append to "${path}"`, path, err);
      }
      if (existed) this.tracker.touched(path);
      else this.tracker.file(path);
    }
    for (const file of injection.addFiles ?? []) {
      const rel = safeRelativePath(file.name, undefined);
      if (rel === '') throw new ConfigError(`cannot add a file named "${file.name}"`);
      const path = join(this.directory, rel);
      const existed = await lstat(path).then(
        () => true,
        () => false,
      );
      await writeWholeFile(path, file.content, file.mode ?? this.fileMode, undefined, undefined, false);
      if (existed) this.tracker.touched(path);
      else this.tracker.file(path);
    }
  }
}

/**
 * Turns a tar entry name into a safe relative path: `./` and trailing `/` dropped; absolute names and
 * `..` components refused, so nothing is ever written outside the target. `''` for the root itself.
 */
export function safeRelativePath(name: string, offset: number | undefined): string {
  const where = offset === undefined ? '' : ` at offset ${offset}`;
  if (name.includes('\0')) throw new TarError(`tar entry name${where} contains a NUL byte`, { offset });
  if (name.startsWith('/')) {
    throw new TarError(`tar entry "${name}"${where} has an absolute path: refusing to write outside the target directory`, { offset });
  }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new TarError(`tar entry "${name}"${where} contains "..": refusing to write outside the target directory`, { offset });
  }
  return parts.join('/');
}
