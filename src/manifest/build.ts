/**
 * Write a `backup_manifest` byte for byte as a PostgreSQL server does (`backup_manifest.c`): the same
 * header, one line per file with the fields in the same order, the same JSON escaping, `Encoded-Path`
 * for names that are not UTF-8, the WAL ranges, and the SHA-256 `Manifest-Checksum` over everything
 * before its line. Incremental, so a manifest for a million files never sits in memory twice. Pure.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { StateError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { ManifestFileChecksumAlgorithm } from './checksum.js';
import type { ManifestWalRange } from './types.js';

/** Options of {@link ManifestBuilder}. */
export interface ManifestBuildOptions {
  /** 1 (the format of servers 13–16) or 2 (17+, with System-Identifier). */
  version: 1 | 2;
  /** Required for version 2: the cluster's system identifier. */
  systemIdentifier?: bigint;
  /**
   * Print LSNs as `%X/%08X` instead of `%X/%X`. Servers 13–18 all write `%X/%X` in manifests
   * (checked against 18's output), so leave this off to match them.
   * @default false
   */
  paddedLsn?: boolean;
  /** Write every path as `Encoded-Path` hex, as the server does with `MANIFEST 'force-encode'`. @default false */
  forceEncode?: boolean;
}

/** One file line's data. */
export interface ManifestBuildFile {
  /** Path relative to the data directory (`pg_tblspc/<oid>/...` for tablespaces). */
  path: string;
  /** Raw path bytes, when the name is not valid UTF-8; written as `Encoded-Path`. Overrides `path`. */
  encodedPath?: Buffer | undefined;
  size: number;
  /** A `Date`, seconds since the Unix epoch, or the text already formatted (`YYYY-MM-DD HH:MM:SS GMT`). */
  lastModified: Date | number | string;
  /** @default 'NONE' */
  checksumAlgorithm?: ManifestFileChecksumAlgorithm;
  /** Lowercase hex digest (see `ChecksumContext.hex()`); ignored for NONE. */
  checksum?: string;
}

/**
 * `YYYY-MM-DD HH:MM:SS GMT`, the server's `pg_strftime("%Y-%m-%d %H:%M:%S %Z", pg_gmtime(...))`.
 * @example
 * ```ts
 * formatManifestTime(0) // '1970-01-01 00:00:00 GMT'
 * ```
 */
export function formatManifestTime(time: Date | number): string {
  const d = typeof time === 'number' ? new Date(time * 1000) : time;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`
  );
}

/**
 * JSON string escaping as PostgreSQL's `escape_json`: `"` `\\` and `\b \f \n \r \t` by name, other
 * control characters as `\u00xx` (lowercase hex), everything else (including non-ASCII) as is.
 */
export function escapeManifestString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const c = ch.charCodeAt(0);
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      default:
        out += c < 0x20 ? `\\u${c.toString(16).padStart(4, '0')}` : ch;
    }
  }
  return `${out}"`;
}

/**
 * Builds a manifest in pieces. Each method returns the bytes to append to the output, in order;
 * {@link ManifestBuilder.finish} returns the last piece (WAL ranges and checksum).
 * @example
 * ```ts
 * const b = new ManifestBuilder({ version: 2, systemIdentifier: 7301234567890123456n });
 * const parts = [b.start()];
 * parts.push(b.addFile({ path: 'PG_VERSION', size: 3, lastModified: new Date(), checksumAlgorithm: 'CRC32C', checksum: '...' }));
 * parts.push(b.finish([{ timeline: 1, startLsn, endLsn }]));
 * const manifest = Buffer.concat(parts);
 * ```
 */
export class ManifestBuilder {
  private readonly hash: Hash = createHash('sha256');
  private state: 'new' | 'files' | 'done' = 'new';
  private firstFile = true;
  private readonly paths = new Set<string>();

  constructor(private readonly options: ManifestBuildOptions) {
    if (options.version === 2 && options.systemIdentifier === undefined) {
      throw new StateError('a version 2 manifest needs the system identifier');
    }
  }

  private emit(text: string): Buffer {
    const buf = Buffer.from(text, 'utf8');
    this.hash.update(buf);
    return buf;
  }

  /** The header: version (and system identifier), and the opening of the file list. */
  start(): Buffer {
    if (this.state !== 'new') throw new StateError('ManifestBuilder.start() called twice');
    this.state = 'files';
    const o = this.options;
    return this.emit(
      o.version === 2
        ? `{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": ${o.systemIdentifier!.toString()},\n"Files": [`
        : `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [`,
    );
  }

  /** One file line. Throws {@link StateError} for a path given twice. */
  addFile(file: ManifestBuildFile): Buffer {
    if (this.state === 'new') this.start();
    if (this.state !== 'files') throw new StateError('ManifestBuilder.addFile() after finish()');
    const key = file.encodedPath ? file.encodedPath.toString('latin1') : file.path;
    if (this.paths.has(key)) throw new StateError(`path "${file.path}" added to the manifest twice`);
    this.paths.add(key);
    // The server terminates the previous line before starting the next, so no comma follows the last.
    let line = this.firstFile ? '\n' : ',\n';
    this.firstFile = false;
    const raw = file.encodedPath;
    if (raw === undefined && !this.options.forceEncode) {
      line += `{ "Path": ${escapeManifestString(file.path)}, `;
    } else {
      line += `{ "Encoded-Path": "${(raw ?? Buffer.from(file.path, 'utf8')).toString('hex')}", `;
    }
    const lm = typeof file.lastModified === 'string' ? file.lastModified : formatManifestTime(file.lastModified);
    line += `"Size": ${file.size}, "Last-Modified": "${lm}"`;
    const alg = file.checksumAlgorithm ?? 'NONE';
    if (alg !== 'NONE') line += `, "Checksum-Algorithm": "${alg}", "Checksum": "${(file.checksum ?? '').toLowerCase()}"`;
    line += ' }';
    return this.emit(line);
  }

  /**
   * Close the file list, write the WAL ranges (newest timeline first, as given) and the
   * `Manifest-Checksum`. Returns the final bytes.
   */
  finish(walRanges: readonly ManifestWalRange[]): Buffer {
    if (this.state === 'new') this.start();
    if (this.state !== 'files') throw new StateError('ManifestBuilder.finish() called twice');
    this.state = 'done';
    const padded = this.options.paddedLsn ?? false;
    const fmt = (l: bigint) => formatLsn(l, { padded });
    const ranges = walRanges
      .map((r) => `{ "Timeline": ${r.timeline}, "Start-LSN": "${fmt(r.startLsn)}", "End-LSN": "${fmt(r.endLsn)}" }`)
      .join(',\n');
    const body = this.emit(`\n],\n"WAL-Ranges": [\n${ranges}\n],\n`);
    const checksum = this.hash.digest('hex');
    // The checksum line is not part of what it covers.
    return Buffer.concat([body, Buffer.from(`"Manifest-Checksum": "${checksum}"}\n`)]);
  }
}

/** Everything {@link buildManifest} needs. */
export interface ManifestBuildInput extends ManifestBuildOptions {
  files: Iterable<ManifestBuildFile>;
  walRanges: readonly ManifestWalRange[];
}

/**
 * A whole manifest in one buffer.
 * @example
 * ```ts
 * const bytes = buildManifest({ version: 1, files: [...manifest.files.values()], walRanges: manifest.walRanges });
 * ```
 */
export function buildManifest(input: ManifestBuildInput): Buffer {
  const b = new ManifestBuilder(input);
  const parts = [b.start()];
  for (const f of input.files) parts.push(b.addFile(f));
  parts.push(b.finish(input.walRanges));
  return Buffer.concat(parts);
}
