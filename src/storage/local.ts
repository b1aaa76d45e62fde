/**
 * The local-directory backend: one file per key below a root directory (keys' `/` are directories).
 * Files are 0600 and directories 0700. A put writes a temporary file beside the target
 * (`.pgbb-tmp-*`, a name no key can have), fsyncs it, renames it into place and fsyncs the directory,
 * so that a key holds either its old object or the complete new one, also after a crash.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortError, StorageError, type StorageOperation } from '../errors.js';
import { fsyncDirectory } from '../sinks/fsync.js';
import { bodyStream, checkRange, DigestingStream, mappedReadable, throwIfAborted } from './body.js';
import { checkStorageKey, compareStorageKeys, RESERVED_SEGMENT_PREFIX } from './keys.js';
import type {
  Storage,
  StorageBody,
  StorageCallOptions,
  StorageGetOptions,
  StorageListOptions,
  StorageObjectInfo,
  StoragePutOptions,
  StoragePutResult,
} from './types.js';

const TEMP_PREFIX = `${RESERVED_SEGMENT_PREFIX}tmp-`;

/** Options of {@link LocalStorage}. */
export interface LocalStorageOptions {
  /** The root directory; created (0700, with its parents) on the first put when missing. */
  path: string;
}

/** {@link Storage} on a local directory. */
export class LocalStorage implements Storage {
  readonly kind = 'local';
  readonly location: string;
  readonly #root: string;

  constructor(options: LocalStorageOptions) {
    this.#root = resolve(options.path);
    this.location = this.#root;
  }

  #path(key: string): string {
    checkStorageKey(key);
    return join(this.#root, ...key.split('/'));
  }

  async *list(options: StorageListOptions = {}): AsyncIterable<StorageObjectInfo> {
    const prefix = options.prefix ?? '';
    const { signal, startAfter } = options;
    throwIfAborted(signal, 'list');
    // Start from the deepest directory the prefix names; below it, a string prefix match decides.
    const slash = prefix.lastIndexOf('/');
    const base = slash === -1 ? '' : prefix.slice(0, slash);
    if (base !== '') checkStorageKey(base);
    const found: StorageObjectInfo[] = [];
    try {
      await this.#walk(base, prefix, found, signal);
    } catch (err) {
      if (err instanceof AbortError) throw err;
      throw storageError('list', prefix === '' ? undefined : prefix, err);
    }
    found.sort((a, b) => compareStorageKeys(a.key, b.key));
    for (const info of found) {
      if (startAfter !== undefined && compareStorageKeys(info.key, startAfter) <= 0) continue;
      throwIfAborted(signal, 'list');
      yield info;
    }
  }

  async #walk(dirKey: string, prefix: string, out: StorageObjectInfo[], signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal, 'list');
    const dir = dirKey === '' ? this.#root : join(this.#root, ...dirKey.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(RESERVED_SEGMENT_PREFIX)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where keys below could still match the prefix.
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(key, prefix, out, signal);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await stat(join(dir, entry.name)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined; // deleted while we listed
          throw err;
        });
        if (st) out.push({ key, size: st.size, lastModified: st.mtime });
      }
    }
  }

  async stat(key: string, options: StorageCallOptions = {}): Promise<StorageObjectInfo | undefined> {
    const path = this.#path(key);
    throwIfAborted(options.signal, 'stat');
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw storageError('stat', key, err);
    }
  }

  async get(key: string, options: StorageGetOptions = {}): Promise<Readable> {
    const path = this.#path(key);
    const { range, signal } = options;
    if (range) checkRange(range);
    throwIfAborted(signal, 'get');
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw storageError('get', key, err);
    });
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new StorageError(`storage object "${key}" is not a regular file`, { operation: 'get', key, statusCode: 404 });
      let start = 0;
      let end: number | undefined;
      if (range) {
        if (range.offset >= st.size) {
          throw new StorageError(`the range starting at byte ${range.offset} of "${key}" is past its end (${st.size} bytes)`, {
            operation: 'get',
            key,
            statusCode: 416,
          });
        }
        start = range.offset;
        if (range.length !== undefined) end = Math.min(st.size, range.offset + range.length) - 1;
      }
      const stream = createReadStream('', { fd: handle, start, ...(end === undefined ? {} : { end }), autoClose: true });
      return mappedReadable(stream, (err) => storageError('get', key, err), signal);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err instanceof StorageError ? err : storageError('get', key, err);
    }
  }

  async put(key: string, body: StorageBody, options: StoragePutOptions = {}): Promise<StoragePutResult> {
    const path = this.#path(key);
    const { signal } = options;
    throwIfAborted(signal, 'put');
    const dir = dirname(path);
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
    const digest = new DigestingStream();
    let created = false;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'wx', 0o600);
      created = true;
      try {
        await pipeline(
          bodyStream(body),
          digest,
          async (source: AsyncIterable<Buffer>) => {
            for await (const chunk of source) {
              // A write may take fewer bytes than given; the rest follows in the next call.
              for (let written = 0; written < chunk.length; ) written += (await handle.write(chunk, written)).bytesWritten;
            }
          },
          signal ? { signal } : {},
        );
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
      created = false;
      await fsyncDirectory(dir);
      return { key, size: digest.bytes, sha256: digest.sha256 };
    } catch (err) {
      if (created) await unlink(temp).catch(() => undefined);
      if (signal?.aborted) throw new AbortError(`put of "${key}" was aborted`, { cause: signal.reason });
      if (err instanceof StorageError || err instanceof AbortError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
        throw new StorageError(
          `storage put "${key}" failed: in a local directory a key cannot be both an object and ` +
            `the folder of other keys ("a" beside "a/b"), and this one would be`,
          { operation: 'put', key, statusCode: 409, cause: err },
        );
      }
      throw storageError('put', key, err);
    }
  }

  async delete(key: string, options: StorageCallOptions = {}): Promise<void> {
    const path = this.#path(key);
    throwIfAborted(options.signal, 'delete');
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw storageError('delete', key, err);
    }
  }

  async deleteMany(keys: readonly string[], options: StorageCallOptions = {}): Promise<void> {
    for (const key of keys) checkStorageKey(key);
    for (const key of keys) await this.delete(key, options);
  }

  async removeIncomplete(prefix: string, options: StorageCallOptions = {}): Promise<number> {
    throwIfAborted(options.signal, 'delete');
    const slash = prefix.lastIndexOf('/');
    const base = slash === -1 ? '' : prefix.slice(0, slash);
    if (base !== '') checkStorageKey(base);
    let removed = 0;
    const visit = async (dirKey: string): Promise<void> => {
      const dir = dirKey === '' ? this.#root : join(this.#root, ...dirKey.split('/'));
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw storageError('delete', dirKey === '' ? undefined : dirKey, err);
      }
      for (const entry of entries) {
        const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
        if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX) && `${dirKey}/`.startsWith(prefix.slice(0, slash + 1))) {
          await rm(join(dir, entry.name), { force: true });
          removed += 1;
        } else if (entry.isDirectory() && !entry.name.startsWith(RESERVED_SEGMENT_PREFIX)) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await visit(key);
        }
      }
    };
    await visit(base);
    return removed;
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A file-system error as a {@link StorageError}: ENOENT is 404, EACCES/EPERM 403; none is retryable. */
function storageError(operation: StorageOperation, key: string | undefined, err: unknown): StorageError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const statusCode = code === 'ENOENT' || code === 'ENOTDIR' ? 404 : code === 'EACCES' || code === 'EPERM' ? 403 : undefined;
  const what = key === undefined ? '' : ` "${key}"`;
  const reason = statusCode === 404 ? 'no such object' : err instanceof Error ? err.message : String(err);
  return new StorageError(`storage ${operation}${what} failed: ${reason}`, { operation, key, statusCode, retryable: false, cause: err });
}
