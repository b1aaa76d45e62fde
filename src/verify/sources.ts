/**
 * Where verification reads from: tar archive naming (the compression a name or the first bytes say),
 * path rules shared with pg_verifybackup (ignore list, canonical member names), WAL segment sources
 * (members of a tar archive read in one forward pass; directories in sources-io.ts), and the manifest
 * inside a single-tar backup. Archives are read through an {@link ArchiveOpener}, never opened here.
 * @module
 */
import { VerifyError } from '../errors.js';
import { extractTar, readBody, type TarEntry, type TarExtractor } from '../tar/extract.js';
import type { ArchiveCompression, ArchiveOpener, ArchiveRef } from './types.js';

// The files behind the sources: the default opener reads archive files, the directory source segment
// files. Re-exported here, where the package's entry point has always found the opener.

/** Paths pg_verifybackup always ignores. */
export const ALWAYS_IGNORED: readonly string[] = ['backup_manifest', 'pg_wal', 'postgresql.auto.conf', 'recovery.signal', 'standby.signal'];

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
  ['.tar', 'none'],
  ['.tgz', 'gzip'],
  ['.tar.gz', 'gzip'],
  ['.tar.lz4', 'lz4'],
  ['.tar.zst', 'zstd'],
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

/** The compression a file name's suffix announces (`x.tar.gz`, `x.tgz`, `x.tar.lz4`, `x.tar.zst`); `undefined` for any other name. */
export function compressionOfName(name: string): ArchiveCompression | undefined {
  const found = COMPRESSION_SUFFIXES.find(([suffix, c]) => c !== 'none' && name.endsWith(suffix));
  return found?.[1];
}

/** The compression a file's first bytes announce by their magic number (gzip, lz4 frame, zstd frame); `none` otherwise. */
export function compressionOfMagic(head: Buffer): ArchiveCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4) {
    const magic = head.readUInt32LE(0);
    if (magic === 0x184d2204) return 'lz4';
    if (magic === 0xfd2fb528) return 'zstd';
  }
  return 'none';
}

/** Largest `backup_manifest` member read into memory from a single-tar backup. */
export const MAX_MANIFEST_MEMBER_BYTES = 1024 * 1024 * 1024;

/**
 * The body of the top-level `backup_manifest` member of a single-tar backup (the stream `-D - -Ft`
 * writes, where the manifest is the last member), read as a stream through `open`: decompressed and
 * walked to that member. Throws a VerifyError when the archive cannot be read or has no manifest.
 */
export async function readManifestMember(archive: ArchiveRef, open: ArchiveOpener): Promise<Buffer> {
  let src: AsyncIterable<Uint8Array> | undefined;
  try {
    src = open(archive);
  } catch (err) {
    throw new VerifyError(`could not read archive "${archive.name}": ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      path: archive.path,
    });
  }
  if (!src) {
    throw new VerifyError(`could not read archive "${archive.name}": no decompressor for ${archive.compression} is available`, {
      path: archive.path,
    });
  }
  try {
    for await (const entry of extractTar(src as AsyncIterable<Buffer>)) {
      const h = entry.header;
      if (h.type === 'file' && canonicalRelPath(h.name) === 'backup_manifest') return await readBody(entry.body, MAX_MANIFEST_MEMBER_BYTES);
    }
  } catch (err) {
    throw new VerifyError(
      `could not read "backup_manifest" from archive "${archive.name}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err, path: archive.path },
    );
  }
  throw new VerifyError(
    `archive "${archive.name}" has no "backup_manifest" member: it is not a single-tar backup written with ` +
      'its manifest (pgbb backup -D - -Ft, pg_basebackup -D - -Ft), or it is truncated; give the manifest with manifestPath (-m)',
    { path: archive.path },
  );
}
