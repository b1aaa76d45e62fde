// Fixture builders for tar tests. Headers are assembled here by hand, field by field, independently of
// src/tar/header.ts, so the codec is not only checked against itself.
import { extractTar, type ExtractOptions, type TarExtractor } from '../../../src/tar/extract.js';
import type { TarHeader } from '../../../src/tar/header.js';
import type { SplitOptions } from '../helpers/splits.js';

export { chunked, prng } from '../helpers/splits.js';

export interface RawHeaderSpec {
  name: string;
  typeflag?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** Store the size in GNU base-256 whatever its value. */
  base256Size?: boolean;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  prefix?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  /** Add this to the stored checksum (to corrupt it). */
  checksumDelta?: number;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

export function rawHeader(spec: RawHeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  b.write(spec.name, 0, 100, 'utf8');
  octal(b, 100, 8, spec.mode ?? 0o644);
  octal(b, 108, 8, spec.uid ?? 1000);
  octal(b, 116, 8, spec.gid ?? 1000);
  const size = spec.size ?? 0;
  if (spec.base256Size || size >= 8 ** 11) {
    b[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else {
    octal(b, 124, 12, size);
  }
  octal(b, 136, 12, spec.mtime ?? 1_700_000_000);
  b.write(spec.typeflag ?? '0', 156, 1, 'latin1');
  b.write(spec.linkname ?? '', 157, 100, 'utf8');
  const magic = spec.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\u000000', 257, 8, 'latin1');
  if (magic === 'gnu') b.write('ustar  \u0000', 257, 8, 'latin1');
  if (magic !== 'v7') {
    b.write(spec.uname ?? 'postgres', 265, 32, 'utf8');
    b.write(spec.gname ?? 'postgres', 297, 32, 'utf8');
    octal(b, 329, 8, 0);
    octal(b, 337, 8, 0);
  }
  if (spec.prefix) b.write(spec.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  sum += spec.checksumDelta ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

export function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

/** A header plus its body and padding. */
export function member(spec: RawHeaderSpec, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([rawHeader({ ...spec, size: spec.size ?? data.length }), data, pad(data.length)]);
}

export function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let n = Buffer.byteLength(rest) + 1;
  while (String(n).length + Buffer.byteLength(rest) !== n) n = String(n).length + Buffer.byteLength(rest);
  return `${n}${rest}`;
}

export const END = Buffer.alloc(1024);

/** Tar archives are also fed in 512-byte blocks, the unit the extractor works in. */
export const TAR_SPLITS: SplitOptions = { chunkSizes: [321, 512] };

export async function* source(chunks: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

export interface Collected {
  header: TarHeader;
  data: Buffer;
}

/** Extracts everything, copying bodies (views are only valid until the next chunk). */
export async function collect(
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
  options?: ExtractOptions,
): Promise<{ entries: Collected[]; tar: TarExtractor }> {
  const src = Symbol.asyncIterator in chunks ? chunks : source(chunks as Iterable<Buffer>);
  const tar = extractTar(src, options);
  const entries: Collected[] = [];
  for await (const e of tar) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(Buffer.from(c));
    entries.push({ header: e.header, data: Buffer.concat(parts) });
  }
  return { entries, tar };
}
