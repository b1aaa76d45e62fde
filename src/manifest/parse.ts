/**
 * Parse a `backup_manifest` (version 1 from PostgreSQL 13–16, version 2 with `System-Identifier` from 17),
 * whole or in chunks of any size, checking it the way PostgreSQL's `parse_manifest.c` does: the same
 * document shape (version first, known fields only, `Manifest-Checksum` last), the same required fields,
 * and the `Manifest-Checksum` (SHA-256 of every byte up to and including the newline before the last
 * line). Pure: the caller reads the file.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { ManifestError } from '../errors.js';
import { isLsnText, parseLsn } from '../lsn.js';
import { parseChecksumAlgorithm } from './checksum.js';
import { JsonEvents, JsonSyntaxError, type JsonEventHandler } from './json-events.js';
import type { BackupManifest, ManifestFile, ManifestWalRange } from './types.js';

type State =
  | 'toplevel-start'
  | 'toplevel-field'
  | 'version-value'
  | 'sysid-value'
  | 'files-start'
  | 'files-next'
  | 'file-field'
  | 'file-value'
  | 'wal-start'
  | 'wal-next'
  | 'wal-field'
  | 'wal-value'
  | 'checksum-value'
  | 'toplevel-end'
  | 'eof';

const FILE_FIELDS = ['Path', 'Encoded-Path', 'Size', 'Last-Modified', 'Checksum-Algorithm', 'Checksum'] as const;
type FileField = (typeof FILE_FIELDS)[number];
const WAL_FIELDS = ['Timeline', 'Start-LSN', 'End-LSN'] as const;
type WalField = (typeof WAL_FIELDS)[number];

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
const NEWLINE = 0x0a;

/** Options of {@link parseManifest}. */
export interface ManifestParseOptions {
  /**
   * Check the `Manifest-Checksum`. Turn off only to inspect a manifest known to be damaged.
   * @default true
   */
  verifyChecksum?: boolean;
}

/**
 * Decode `Encoded-Path` bytes into the map key: UTF-8 when valid, else Latin-1 (byte per character).
 * Directory walkers use the same rule for names they read as bytes.
 */
export function pathKeyFromBytes(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * Parses a `backup_manifest` fed in chunks of any size, checking it as PostgreSQL's
 * `parse_manifest.c` does (document shape, required fields, `Manifest-Checksum`). Pure: the caller reads the file.
 */
export class ManifestParser {
  private readonly json: JsonEvents;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly hash: Hash = createHash('sha256');
  private readonly verify: boolean;
  /** Bytes after the second-to-last newline seen so far (not hashed yet). */
  private tail: Buffer = Buffer.alloc(0);
  private newlines = 0;
  private bytes = 0;
  private ended = false;

  private state: State = 'toplevel-start';
  private sawVersion = false;
  private version: 1 | 2 | undefined;
  private systemIdentifier: bigint | undefined;
  private readonly files = new Map<string, ManifestFile>();
  private readonly walRanges: ManifestWalRange[] = [];
  private manifestChecksum: string | undefined;
  private fileField: FileField = 'Path';
  private walField: WalField = 'Timeline';
  private file: Partial<Record<FileField, string>> = {};
  private wal: Partial<Record<WalField, string>> = {};

  constructor(options: ManifestParseOptions = {}) {
    this.verify = options.verifyChecksum ?? true;
    const handler: JsonEventHandler = {
      objectStart: () => this.onObjectStart(),
      objectEnd: () => this.onObjectEnd(),
      arrayStart: () => this.onArrayStart(),
      arrayEnd: () => this.onArrayEnd(),
      field: (name) => this.onField(name),
      scalar: (text) => this.onScalar(text),
    };
    this.json = new JsonEvents(handler);
  }

  /**
   * The fast path for a whole manifest: `JSON.parse` (an order of magnitude faster than the event
   * parser) replayed through the same state machine and checks. Returns `undefined` whenever the
   * document is not plainly well formed (bad UTF-8 or JSON, a repeated top-level field, a number
   * that is not a plain integer, anything a check refuses), so that the streaming parser reports
   * it in PostgreSQL's words.
   */
  static fromWhole(bytes: Uint8Array, options: ManifestParseOptions = {}): BackupManifest | undefined {
    let text: string;
    let doc: unknown;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      doc = JSON.parse(text);
    } catch {
      return undefined;
    }
    const fields = text.match(TOP_LEVEL_FIELD_RE) ?? [];
    if (new Set(fields.map((f) => f.replace(/\s*:$/, ''))).size !== fields.length) return undefined;
    if (NON_INTEGER_NUMBER_RE.test(text)) return undefined;
    // The system identifier is a 64-bit integer: take its digits from the text, not from a double.
    const sysid = /"System-Identifier"\s*:\s*(\d+)/.exec(text)?.[1];
    const parser = new ManifestParser(options);
    try {
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      parser.bytes = buf.length;
      parser.track(buf);
      parser.replay(doc, undefined, sysid);
      if (parser.state !== 'eof') return undefined;
      parser.ended = true;
      parser.checkChecksum();
    } catch (err) {
      if (err instanceof NotSimple || err instanceof ManifestError) return undefined;
      throw err;
    }
    return parser.result();
  }

  /** Drives the state machine with a parsed JSON value, as the event parser would. */
  private replay(value: unknown, key: string | undefined, sysid: string | undefined): void {
    if (Array.isArray(value)) {
      this.onArrayStart();
      for (const v of value) this.replay(v, undefined, sysid);
      this.onArrayEnd();
    } else if (value !== null && typeof value === 'object') {
      this.onObjectStart();
      // for-in rather than Object.entries: the pair arrays, thousands for a large manifest, made the
      // young generation collect again and again while the whole parsed document was still in it.
      // JSON.parse makes plain objects, enumerated in the same order.
      const obj = value as Record<string, unknown>;
      for (const k in obj) {
        if (!Object.hasOwn(obj, k)) continue;
        this.onField(k);
        this.replay(obj[k], k, sysid);
      }
      this.onObjectEnd();
    } else if (typeof value === 'string') {
      this.onScalar(value);
    } else if (typeof value === 'number' && key === 'System-Identifier' && sysid !== undefined) {
      this.onScalar(sysid);
    } else if (typeof value === 'number' && Number.isSafeInteger(value) && key !== 'System-Identifier') {
      this.onScalar(String(value));
    } else {
      throw new NotSimple();
    }
  }

  /** Feed the next bytes. Throws {@link ManifestError} as soon as the text is known to be wrong. */
  push(chunk: Uint8Array): this {
    if (this.ended) throw new ManifestError('ManifestParser.push() after end()');
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.bytes += buf.length;
    this.track(buf);
    let text: string;
    try {
      text = this.decoder.decode(buf, { stream: true });
    } catch (err) {
      throw this.error('the manifest is not valid UTF-8', err);
    }
    this.feed(text, false);
    return this;
  }

  /** Signal the end of input and get the manifest. Throws {@link ManifestError} when it is incomplete or damaged. */
  end(): BackupManifest {
    if (this.ended) throw new ManifestError('ManifestParser.end() called twice');
    this.ended = true;
    let rest: string;
    try {
      rest = this.decoder.decode();
    } catch (err) {
      throw this.error('the manifest is not valid UTF-8', err);
    }
    this.feed(rest, true);
    if (this.state !== 'eof') throw this.error('manifest ended unexpectedly');
    this.checkChecksum();
    return this.result();
  }

  private result(): BackupManifest {
    const manifest: BackupManifest = {
      version: this.version ?? 1,
      files: this.files,
      walRanges: this.walRanges,
      manifestChecksum: this.manifestChecksum ?? '',
    };
    if (this.systemIdentifier !== undefined) manifest.systemIdentifier = this.systemIdentifier;
    return manifest;
  }

  private feed(text: string, final: boolean): void {
    try {
      if (text.length > 0) this.json.write(text);
      if (final) this.json.end();
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw this.error(err.message, err, err.offset);
      throw err;
    }
  }

  /** Hash everything up to the second-to-last newline; keep the rest (a line or two) in `tail`. */
  private track(buf: Buffer): void {
    let count = 0;
    for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) count++;
    this.newlines += count;
    const all = this.tail.length === 0 ? buf : Buffer.concat([this.tail, buf]);
    const last = all.lastIndexOf(NEWLINE);
    const prev = last > 0 ? all.lastIndexOf(NEWLINE, last - 1) : -1;
    if (prev === -1) {
      this.tail = Buffer.from(all);
      return;
    }
    this.hash.update(all.subarray(0, prev + 1));
    // Copy: the tail is small and must not pin the caller's (possibly large) chunk.
    this.tail = Buffer.from(all.subarray(prev + 1));
  }

  private checkChecksum(): void {
    if (this.newlines < 2) throw this.error('expected at least 2 lines');
    if (this.tail[this.tail.length - 1] !== NEWLINE) throw this.error('last line not newline-terminated');
    const actual = this.hash.digest('hex');
    const expected = this.manifestChecksum;
    if (expected === undefined) throw new ManifestError('manifest has no checksum');
    if (expected.length !== 64 || !HEX_RE.test(expected)) {
      throw new ManifestError(`invalid manifest checksum: "${expected}"`);
    }
    if (this.verify && actual !== expected.toLowerCase()) {
      throw new ManifestError(
        `manifest checksum mismatch: the manifest says ${expected.toLowerCase()} but its contents hash to ${actual}; ` +
          'the manifest was changed or damaged after the backup was taken',
      );
    }
  }

  private error(msg: string, cause?: unknown, offset?: number): ManifestError {
    return new ManifestError(`could not parse backup manifest: ${msg}`, { cause, offset: offset ?? this.bytes });
  }

  private onObjectStart(): void {
    switch (this.state) {
      case 'toplevel-start':
        this.state = 'toplevel-field';
        return;
      case 'files-next':
        this.state = 'file-field';
        this.file = {};
        return;
      case 'wal-next':
        this.state = 'wal-field';
        this.wal = {};
        return;
      default:
        throw this.error('unexpected object start');
    }
  }

  private onObjectEnd(): void {
    switch (this.state) {
      case 'toplevel-end':
        this.state = 'eof';
        return;
      case 'file-field':
        this.finishFile();
        this.state = 'files-next';
        return;
      case 'wal-field':
        this.finishWalRange();
        this.state = 'wal-next';
        return;
      default:
        throw this.error('unexpected object end');
    }
  }

  private onArrayStart(): void {
    if (this.state === 'files-start') this.state = 'files-next';
    else if (this.state === 'wal-start') this.state = 'wal-next';
    else throw this.error('unexpected array start');
  }

  private onArrayEnd(): void {
    if (this.state === 'files-next' || this.state === 'wal-next') this.state = 'toplevel-field';
    else throw this.error('unexpected array end');
  }

  private onField(name: string): void {
    switch (this.state) {
      case 'toplevel-field':
        // PostgreSQL requires the version indicator to be the first field.
        if (!this.sawVersion) {
          if (name !== 'PostgreSQL-Backup-Manifest-Version') throw this.error('expected version indicator');
          this.sawVersion = true;
          this.state = 'version-value';
        } else if (name === 'System-Identifier') this.state = 'sysid-value';
        else if (name === 'Files') this.state = 'files-start';
        else if (name === 'WAL-Ranges') this.state = 'wal-start';
        else if (name === 'Manifest-Checksum') this.state = 'checksum-value';
        else throw this.error(`unrecognized top-level field "${name}"`);
        return;
      case 'file-field':
        if (!(FILE_FIELDS as readonly string[]).includes(name)) throw this.error(`unexpected file field "${name}"`);
        this.fileField = name as FileField;
        this.state = 'file-value';
        return;
      case 'wal-field':
        if (!(WAL_FIELDS as readonly string[]).includes(name)) throw this.error(`unexpected WAL range field "${name}"`);
        this.walField = name as WalField;
        this.state = 'wal-value';
        return;
      default:
        throw this.error('unexpected object field');
    }
  }

  private onScalar(text: string): void {
    switch (this.state) {
      case 'version-value': {
        if (!/^-?\d+$/.test(text)) throw this.error('manifest version not an integer');
        if (text !== '1' && text !== '2') throw this.error('unexpected manifest version');
        this.version = text === '1' ? 1 : 2;
        this.state = 'toplevel-field';
        return;
      }
      case 'sysid-value':
        if (!/^\d+$/.test(text) || BigInt(text) > 0xffffffffffffffffn) {
          throw this.error('manifest system identifier not an integer');
        }
        this.systemIdentifier = BigInt(text);
        this.state = 'toplevel-field';
        return;
      case 'file-value':
        this.file[this.fileField] = text;
        this.state = 'file-field';
        return;
      case 'wal-value':
        this.wal[this.walField] = text;
        this.state = 'wal-field';
        return;
      case 'checksum-value':
        this.manifestChecksum = text;
        this.state = 'toplevel-end';
        return;
      default:
        throw this.error('unexpected scalar');
    }
  }

  private finishFile(): void {
    const f = this.file;
    const plain = f['Path'];
    const encoded = f['Encoded-Path'];
    if (plain === undefined && encoded === undefined) throw this.error('missing path name');
    if (plain !== undefined && encoded !== undefined) throw this.error('both path name and encoded path name');
    if (f.Size === undefined) throw this.error(`missing size for "${plain ?? encoded}"`);
    if (f['Checksum-Algorithm'] === undefined && f.Checksum !== undefined) {
      throw this.error(`checksum without algorithm for "${plain ?? encoded}"`);
    }
    let path: string;
    let rawPath: Buffer | undefined;
    if (encoded !== undefined) {
      if (!HEX_RE.test(encoded)) throw this.error(`could not decode file name "${encoded}"`);
      rawPath = Buffer.from(encoded, 'hex');
      path = pathKeyFromBytes(rawPath);
    } else {
      path = plain!;
    }
    if (!/^\d+$/.test(f.Size) || !Number.isSafeInteger(Number(f.Size))) {
      throw this.error(`file size is not an integer for "${path}"`);
    }
    const algName = f['Checksum-Algorithm'];
    const algorithm = algName === undefined ? 'NONE' : parseChecksumAlgorithm(algName);
    if (algorithm === undefined) throw new ManifestError(`unrecognized checksum algorithm: "${algName}"`);
    const checksum = f.Checksum ?? '';
    if (!HEX_RE.test(checksum)) throw new ManifestError(`invalid checksum for file "${path}": "${checksum}"`);
    if (this.files.has(path)) throw new ManifestError(`duplicate path name in backup manifest: "${path}"`);
    const entry: ManifestFile = {
      path,
      size: Number(f.Size),
      lastModified: f['Last-Modified'] ?? '',
      checksumAlgorithm: algorithm,
      checksum: checksum.toLowerCase(),
    };
    if (rawPath !== undefined) entry.encodedPath = rawPath;
    // A checksum whose length does not fit the algorithm is reported per file by the verifier, as
    // pg_verifybackup does, not here.
    this.files.set(path, entry);
  }

  private finishWalRange(): void {
    const w = this.wal;
    if (w.Timeline === undefined) throw this.error('missing timeline');
    if (w['Start-LSN'] === undefined) throw this.error('missing start LSN');
    if (w['End-LSN'] === undefined) throw this.error('missing end LSN');
    if (!/^\d+$/.test(w.Timeline) || Number(w.Timeline) > 0xffffffff) throw this.error('timeline is not an integer');
    if (!isLsnText(w['Start-LSN'])) throw this.error('could not parse start LSN');
    if (!isLsnText(w['End-LSN'])) throw this.error('could not parse end LSN');
    this.walRanges.push({
      timeline: Number(w.Timeline),
      startLsn: parseLsn(w['Start-LSN']),
      endLsn: parseLsn(w['End-LSN']),
    });
  }
}

/**
 * Parse a whole manifest.
 * @throws ManifestError naming what is wrong.
 * @example
 * ```ts
 * const manifest = parseManifest(await readFile('backup/backup_manifest'));
 * manifest.files.get('global/pg_control')?.size // 8192
 * ```
 */
export function parseManifest(bytes: Uint8Array, options?: ManifestParseOptions): BackupManifest {
  return ManifestParser.fromWhole(bytes, options) ?? new ManifestParser(options).push(bytes).end();
}

/** Top-level fields that must not appear twice (JSON.parse would keep only the last). */
const TOP_LEVEL_FIELD_RE = /"(?:PostgreSQL-Backup-Manifest-Version|System-Identifier|Files|WAL-Ranges|Manifest-Checksum)"\s*:/g;
/** A number that is not a plain integer (`1.5`, `1e3`): JSON.parse would turn it into one. */
const NON_INTEGER_NUMBER_RE = /:\s*-?\d+(?:\.|[eE])/;

/** Thrown inside the fast path to hand a document over to the streaming parser. */
class NotSimple extends Error {}
