/**
 * Where verification reads from: tar archive naming and opening (the decompression slot), path rules
 * shared with pg_verifybackup (ignore list, canonical member names), and WAL segment sources (a
 * directory, or members of a tar archive read in one forward pass).
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { decompressorFor } from '../compress/decompress.js';
import { extractTar, type TarEntry, type TarExtractor } from '../tar/extract.js';
import type { ArchiveCompression, ArchiveOpener, ArchiveRef } from './types.js';

/** Paths pg_verifybackup always ignores. */
export const ALWAYS_IGNORED: readonly string[] =
  ['backup_manifest', 'pg_wal', 'postgresql.auto.conf', 'recovery.signal', 'standby.signal'];

/**
 * PostgreSQL's `canonicalize_path` for relative `/` paths: no `.` or empty components, `..` applied,
 * no trailing slash.
 */
export function canonicalRelPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** `should_ignore_relpath`: `relpath` is an ignored path or lies below one (`aa/bb` covers `aa/bb/cc`, not `aa/bbb`). */
export function isIgnored(relpath: string, ignore: readonly string[]): boolean {
  for (const v of ignore) {
    if (v === '') continue;
    if (relpath === v || (relpath.startsWith(v) && relpath[v.length] === '/')) return true;
  }
  return false;
}

const COMPRESSION_SUFFIXES: readonly [string, ArchiveCompression][] = [
  ['.tar', 'none'], ['.tgz', 'gzip'], ['.tar.gz', 'gzip'], ['.tar.lz4', 'lz4'], ['.tar.zst', 'zstd'],
];

/** What a file in a tar-format backup directory is. */
export type ArchiveKind =
  | { kind: 'base'; compression: ArchiveCompression }
  | { kind: 'wal'; compression: ArchiveCompression }
  | { kind: 'tablespace'; oid: number; compression: ArchiveCompression }
  | { kind: 'unexpected' };

/**
 * Classify a file name as pg_verifybackup does: `base<ext>`, `pg_wal<ext>`, `<oid><ext>` with `<ext>`
 * one of `.tar`, `.tgz`, `.tar.gz`, `.tar.lz4`, `.tar.zst`.
 */
export function classifyArchive(name: string): ArchiveKind {
  let rest: string;
  let kind: 'base' | 'wal' | 'tablespace';
  let oid = 0;
  if (name.startsWith('base')) {
    kind = 'base';
    rest = name.slice(4);
  } else if (name.startsWith('pg_wal')) {
    kind = 'wal';
    rest = name.slice(6);
  } else {
    const m = /^(\d+)(.*)$/.exec(name);
    if (!m) return { kind: 'unexpected' };
    oid = Number(m[1]);
    if (oid <= 0 || oid > 0xffffffff) return { kind: 'unexpected' };
    kind = 'tablespace';
    rest = m[2]!;
  }
  const found = COMPRESSION_SUFFIXES.find(([s]) => s === rest);
  if (!found) return { kind: 'unexpected' };
  const compression = found[1];
  return kind === 'tablespace' ? { kind, oid, compression } : { kind, compression };
}

const READ_CHUNK = 1024 * 1024;

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

/** A place WAL segments are read from. */
export interface WalSource {
  /** For messages: `directory "x"` or `archive "x"`. */
  readonly description: string;
  /** Segment-like file names with their sizes. */
  list(): Promise<Map<string, number>>;
  /**
   * The bytes of one file; segments are asked for in ascending order. A chunk may be a view of a
   * buffer the source reuses: it is valid until the iterator is asked for the next one.
   */
  read(name: string): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

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
    // the collector to find.
    async *read(name) {
      bufs ??= [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
      const fh = await open(join(dir, name), 'r');
      let pending: Promise<{ bytesRead: number }> | undefined = fh.read(bufs[0], 0, READ_CHUNK, 0);
      try {
        let which = 0;
        let pos = 0;
        while (pending) {
          const bytesRead: number = (await pending).bytesRead;
          pending = undefined;
          if (bytesRead === 0) return;
          const buf = bufs[which]!;
          pos += bytesRead;
          if (bytesRead === READ_CHUNK) {
            which ^= 1;
            pending = fh.read(bufs[which]!, 0, READ_CHUNK, pos);
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
 * WAL segments stored as members of a tar archive (`pg_wal.tar`, or `pg_wal/...` inside `base.tar` with
 * `prefix: 'pg_wal/'`). Members are read in one forward pass when asked for in archive order (as
 * pg_basebackup writes them); asking for an earlier member reopens the archive.
 */
export function archiveWalSource(archive: ArchiveRef, open: ArchiveOpener, prefix = ''): WalSource {
  let index: Map<string, { pos: number; size: number }> | undefined;
  let extractor: TarExtractor | undefined;
  let iterator: AsyncIterator<TarEntry> | undefined;
  let position = -1;

  const openExtractor = (): AsyncIterator<TarEntry> => {
    const src = open(archive);
    if (!src) throw new Error(`no decompressor for ${archive.compression} archive "${archive.name}"`);
    extractor = extractTar(src as AsyncIterable<Buffer>);
    position = -1;
    iterator = extractor[Symbol.asyncIterator]();
    return iterator;
  };

  const memberName = (name: string): string | undefined => {
    const canonical = canonicalRelPath(name);
    if (prefix !== '' && !canonical.startsWith(prefix)) return undefined;
    const rest = canonical.slice(prefix.length);
    return /^[0-9A-F]{24}$/.test(rest) ? rest : undefined;
  };

  return {
    description: `archive "${archive.name}"`,
    async list() {
      if (!index) {
        index = new Map();
        const it = openExtractor();
        for (let r = await it.next(); !r.done; r = await it.next()) {
          position++;
          const e = r.value;
          const name = e.header.type === 'file' ? memberName(e.header.name) : undefined;
          if (name !== undefined) index.set(name, { pos: position, size: e.header.size });
        }
        iterator = undefined;
      }
      return new Map([...index].map(([k, v]) => [k, v.size]));
    },
    async *read(name) {
      const target = index?.get(name);
      if (!target) throw new Error(`"${name}" is not in archive "${archive.name}"`);
      let it = iterator;
      if (!it || position >= target.pos) it = openExtractor();
      for (;;) {
        const r = await it.next();
        if (r.done) throw new Error(`archive "${archive.name}" ended before member "${name}"`);
        position++;
        if (position === target.pos) {
          for await (const chunk of r.value.body) yield chunk;
          return;
        }
      }
    },
    async close() {
      await iterator?.return?.();
      iterator = undefined;
    },
  };
}
