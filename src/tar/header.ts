/**
 * Tar header codec: pure functions over 512-byte blocks, no I/O.
 *
 * Decoding never throws: it returns the fields plus flags (checksum valid, all-zero block, first numeric
 * field that did not parse) and leaves the decision to the caller, so the extractor can name the offset.
 * PostgreSQL's server writes plain ustar headers (the `prefix` field unused, no pax, no GNU long names),
 * with numbers in octal or, for files of 8 GiB and more, in GNU base-256 (`src/port/tar.c`,
 * `tarCreateHeader`). Readers should still accept ustar prefixes, pax and GNU long names, which is what
 * GNU tar and other tools produce.
 * @module
 */

/** Size of a tar block: headers are one block, bodies are padded to a multiple of it. */
export const BLOCK_SIZE = 512;

/** What a header's typeflag means. */
export type TarEntryType =
  | 'file'
  | 'hardlink'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'pax-header'
  | 'pax-global-header'
  | 'gnu-long-name'
  | 'gnu-long-linkname'
  | 'unknown';

/** Which header layout the magic field announced. */
export type TarHeaderFormat = 'ustar' | 'gnu' | 'v7';

/** The decoded fields of one tar header. */
export interface TarHeader {
  /** Entry name, with the ustar `prefix` joined (`prefix/name`). Directory names keep their trailing `/`. */
  name: string;
  /** Permission bits (`0o7777` at most). */
  mode: number;
  uid: number;
  gid: number;
  /** Size of the body in bytes, as stored (octal or GNU base-256). */
  size: number;
  /** Modification time in seconds since the Unix epoch. */
  mtime: number;
  /** The raw typeflag character (`'0'`, `'\0'`, `'5'`, `'2'`, `'1'`, `'x'`, `'g'`, `'L'`, `'K'`, ...). */
  typeflag: string;
  /** The meaning of {@link TarHeader.typeflag}. */
  type: TarEntryType;
  /** Target of a symlink or hard link. */
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** `'ustar'` (POSIX magic `ustar\0`), `'gnu'` (magic `ustar  \0`), or `'v7'` (no magic). */
  format: TarHeaderFormat;
}

/** What {@link decodeHeader} found: the fields and flags telling whether to trust them. */
export interface DecodedHeader {
  /** The fields (meaningless when {@link DecodedHeader.zeroBlock} is set or the checksum is wrong). */
  header: TarHeader;
  /** The block is all zero bytes: half of the end-of-archive marker. */
  zeroBlock: boolean;
  /** The stored checksum matches the block (either the unsigned or the historical signed sum). */
  checksumValid: boolean;
  /** The name of the first numeric field that is neither octal nor base-256, if any. */
  invalidField: string | undefined;
}

// Field offsets and widths (POSIX ustar; GNU reuses the prefix area for other data).
const NAME = [0, 100] as const;
const MODE = [100, 8] as const;
const UID = [108, 8] as const;
const GID = [116, 8] as const;
const SIZE = [124, 12] as const;
const MTIME = [136, 12] as const;
const CHKSUM = [148, 8] as const;
const TYPEFLAG = 156;
const LINKNAME = [157, 100] as const;
const MAGIC = 257;
const UNAME = [265, 32] as const;
const GNAME = [297, 32] as const;
const DEVMAJOR = [329, 8] as const;
const DEVMINOR = [337, 8] as const;
const PREFIX = [345, 155] as const;

/** Longest name the ustar `name` field holds. */
export const USTAR_NAME_MAX = 100;
/** Longest string the ustar `prefix` field holds. */
export const USTAR_PREFIX_MAX = 155;

const TYPES: Record<string, TarEntryType> = {
  '\0': 'file',
  '0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere that matters
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  x: 'pax-header',
  g: 'pax-global-header',
  L: 'gnu-long-name',
  K: 'gnu-long-linkname',
};

const TYPEFLAGS: Partial<Record<TarEntryType, string>> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
  'pax-header': 'x',
  'pax-global-header': 'g',
  'gnu-long-name': 'L',
  'gnu-long-linkname': 'K',
};

/** The entry type a typeflag character stands for. */
export function typeOfFlag(flag: string): TarEntryType {
  return TYPES[flag] ?? 'unknown';
}

function readString(block: Buffer, [start, width]: readonly [number, number]): string {
  const field = block.subarray(start, start + width);
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end === -1 ? width : end);
}

/**
 * Parses an octal or GNU base-256 number field; `undefined` when it is neither.
 * Octal fields may be padded with leading spaces and end with a space or NUL (every tar writer differs).
 */
export function readNumber(block: Buffer, start: number, width: number): number | undefined {
  const first = block[start] ?? 0;
  if (first & 0x80) return readBase256(block, start, width);
  let i = start;
  const end = start + width;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i] ?? 0;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  // Anything but spaces and NULs after the digits is garbage.
  for (; i < end; i++) {
    const c = block[i] ?? 0;
    if (c !== 0 && c !== 0x20) return undefined;
  }
  return digits === 0 ? 0 : value;
}

/** GNU base-256: first byte 0x80 (positive) or 0xff (negative, two's complement), big-endian after that. */
function readBase256(block: Buffer, start: number, width: number): number | undefined {
  const first = block[start] ?? 0;
  const negative = first === 0xff;
  if (!negative && first !== 0x80) return undefined;
  let value = 0;
  for (let i = start + 1; i < start + width; i++) {
    const b = block[i] ?? 0;
    value = value * 256 + (negative ? 0xff - b : b);
    if (value > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return negative ? -(value + 1) : value;
}

/**
 * The header checksum: the sum of all 512 bytes with the checksum field counted as spaces.
 * `signed` gives the historical sum over signed chars that some old tars wrote.
 */
export function headerChecksum(block: Buffer, signed = false): number {
  // The checksum field itself counts as eight spaces (8 * 0x20).
  let sum = 8 * 0x20;
  if (!signed) {
    for (let i = 0; i < CHKSUM[0]; i++) sum += block[i] as number;
    for (let i = CHKSUM[0] + CHKSUM[1]; i < BLOCK_SIZE; i++) sum += block[i] as number;
    return sum;
  }
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i >= CHKSUM[0] && i < CHKSUM[0] + CHKSUM[1]) continue;
    const b = block[i] as number;
    sum += b > 127 ? b - 256 : b;
  }
  return sum;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Decodes one 512-byte header block. Never throws: check {@link DecodedHeader.zeroBlock},
 * {@link DecodedHeader.checksumValid} and {@link DecodedHeader.invalidField} before using the fields.
 *
 * @example
 * ```ts
 * const { header, checksumValid } = decodeHeader(block);
 * if (checksumValid) names.push(header.name);
 * ```
 */
export function decodeHeader(block: Buffer): DecodedHeader {
  if (block.length < BLOCK_SIZE) throw new RangeError(`a tar header is ${BLOCK_SIZE} bytes, got ${block.length}`);
  const zeroBlock = isZeroBlock(block);
  const stored = readNumber(block, CHKSUM[0], CHKSUM[1]);
  const checksumValid = !zeroBlock && stored !== undefined && (stored === headerChecksum(block) || stored === headerChecksum(block, true));

  let invalidField: string | undefined;
  const num = (field: string, [start, width]: readonly [number, number]): number => {
    const v = readNumber(block, start, width);
    if (v === undefined) {
      invalidField ??= field;
      return Number.NaN;
    }
    return v;
  };

  const magic = block.toString('latin1', MAGIC, MAGIC + 8);
  const format: TarHeaderFormat = magic === 'ustar  \0' ? 'gnu' : magic.startsWith('ustar\0') ? 'ustar' : 'v7';
  let name = readString(block, NAME);
  if (format === 'ustar') {
    const prefix = readString(block, PREFIX);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[TYPEFLAG] ?? 0);
  const header: TarHeader = {
    name,
    mode: num('mode', MODE),
    uid: num('uid', UID),
    gid: num('gid', GID),
    size: num('size', SIZE),
    mtime: num('mtime', MTIME),
    typeflag,
    type: typeOfFlag(typeflag),
    linkname: readString(block, LINKNAME),
    uname: format === 'v7' ? '' : readString(block, UNAME),
    gname: format === 'v7' ? '' : readString(block, GNAME),
    devmajor: format === 'v7' ? 0 : num('devmajor', DEVMAJOR),
    devminor: format === 'v7' ? 0 : num('devminor', DEVMINOR),
    format,
  };
  if (!zeroBlock && header.size < 0) invalidField ??= 'size';
  return { header, zeroBlock, checksumValid, invalidField };
}

/**
 * How many body bytes follow a header: the size for files and metadata records, zero for
 * directories, links and devices (whose size field POSIX says to ignore).
 */
export function bodySize(header: Pick<TarHeader, 'type' | 'size'>): number {
  switch (header.type) {
    case 'directory':
    case 'symlink':
    case 'hardlink':
    case 'character-device':
    case 'block-device':
    case 'fifo':
      return 0;
    default:
      return header.size;
  }
}

/** Bytes of zero padding after a body of `size` bytes. */
export function paddingSize(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

/** Fields for {@link encodeHeader}. */
export interface HeaderFields {
  /** Entry name; directories conventionally end with `/`. */
  name: string;
  /** Entry type. @default 'file' */
  type?: TarEntryType;
  /** Permission bits. @default 0o600 for files, 0o700 for directories, 0o777 for symlinks */
  mode?: number;
  /** @default 0 */
  uid?: number;
  /** @default 0 */
  gid?: number;
  /** Body size in bytes; must be 0 for directories and links. @default 0 */
  size?: number;
  /** Modification time in seconds since the epoch. @default 0 */
  mtime?: number;
  /** Target of a symlink or hard link. @default '' */
  linkname?: string;
  /** @default '' */
  uname?: string;
  /** @default '' */
  gname?: string;
}

/**
 * Splits a name into ustar `prefix` and `name` fields: the name itself when it fits in 100 bytes,
 * else the longest prefix (≤ 155 bytes) ending at a `/` that leaves a non-empty rest of ≤ 100 bytes.
 * `undefined` when no split fits (the caller then needs a pax `path` record).
 */
export function splitUstarName(name: string): { name: Buffer; prefix: Buffer } | undefined {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= USTAR_NAME_MAX) return { name: bytes, prefix: Buffer.alloc(0) };
  // A trailing '/' belongs to the name part, so do not split on it.
  const searchEnd = Math.min(USTAR_PREFIX_MAX, bytes.length - 2);
  for (let i = searchEnd; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    if (bytes.length - i - 1 > USTAR_NAME_MAX) break;
    return { name: bytes.subarray(i + 1), prefix: bytes.subarray(0, i) };
  }
  return undefined;
}

/** Whether a string fits in a NUL-padded field of `width` bytes (a full field needs no NUL in ustar). */
export function fitsField(value: string, width: number): boolean {
  return Buffer.byteLength(value, 'utf8') <= width;
}

function writeBytes(block: Buffer, [start, width]: readonly [number, number], bytes: Buffer): void {
  // Cut at a UTF-8 boundary so a truncated placeholder stays valid text.
  let n = Math.min(bytes.length, width);
  if (n < bytes.length) while (n > 0 && ((bytes[n] ?? 0) & 0xc0) === 0x80) n--;
  bytes.copy(block, start, 0, n);
}

/**
 * Writes a number as zero-padded octal with a terminating NUL, or in GNU base-256 when it does
 * not fit (sizes of 8 GiB and more, as PostgreSQL's own `tarCreateHeader` does).
 */
function writeNumber(block: Buffer, [start, width]: readonly [number, number], value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`tar header number out of range: ${value}`);
  if (value >= 0 && value < 8 ** (width - 1)) {
    block.write(value.toString(8).padStart(width - 1, '0'), start, width - 1, 'latin1');
    block[start + width - 1] = 0;
    return;
  }
  let v = value < 0 ? -(value + 1) : value;
  for (let i = start + width - 1; i > start; i--) {
    const b = v % 256;
    block[i] = value < 0 ? 0xff - b : b;
    v = Math.floor(v / 256);
  }
  if (v !== 0) throw new RangeError(`tar header number out of range: ${value}`);
  block[start] = value < 0 ? 0xff : 0x80;
}

/**
 * Encodes one ustar header block (POSIX magic `ustar\0`, version `00`).
 * A name over 100 bytes goes into `prefix` + `name` when {@link splitUstarName} can split it; otherwise,
 * and for link targets over 100 bytes, the field is truncated and the caller must precede this block with a
 * pax record carrying the full value (the tar writer's `entryHeader` does that).
 *
 * @example
 * ```ts
 * const block = encodeHeader({ name: 'standby.signal', size: 0, mode: 0o600 });
 * ```
 */
export function encodeHeader(fields: HeaderFields): Buffer {
  const type = fields.type ?? 'file';
  const typeflag = TYPEFLAGS[type];
  if (typeflag === undefined) throw new RangeError(`cannot encode a tar header of type ${type}`);
  const block = Buffer.alloc(BLOCK_SIZE);
  const split = splitUstarName(fields.name);
  if (split) {
    writeBytes(block, NAME, split.name);
    writeBytes(block, PREFIX, split.prefix);
  } else {
    writeBytes(block, NAME, Buffer.from(fields.name, 'utf8'));
  }
  const defaultMode = type === 'directory' ? 0o700 : type === 'symlink' ? 0o777 : 0o600;
  writeNumber(block, MODE, (fields.mode ?? defaultMode) & 0o7777);
  writeNumber(block, UID, fields.uid ?? 0);
  writeNumber(block, GID, fields.gid ?? 0);
  writeNumber(block, SIZE, fields.size ?? 0);
  writeNumber(block, MTIME, Math.floor(fields.mtime ?? 0));
  block.write(typeflag, TYPEFLAG, 1, 'latin1');
  writeBytes(block, LINKNAME, Buffer.from(fields.linkname ?? '', 'utf8'));
  block.write('ustar\x0000', MAGIC, 8, 'latin1');
  writeBytes(block, UNAME, Buffer.from(fields.uname ?? '', 'utf8'));
  writeBytes(block, GNAME, Buffer.from(fields.gname ?? '', 'utf8'));
  writeNumber(block, DEVMAJOR, 0);
  writeNumber(block, DEVMINOR, 0);
  // Checksum: six octal digits, NUL, space (the layout GNU tar and PostgreSQL write).
  block.write(headerChecksum(block).toString(8).padStart(6, '0'), CHKSUM[0], 6, 'latin1');
  block[CHKSUM[0] + 6] = 0;
  block[CHKSUM[0] + 7] = 0x20;
  return block;
}
