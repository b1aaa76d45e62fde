/**
 * POSIX pax extended header records (`typeflag 'x'`): `"<length> <key>=<value>\n"`, where `length`
 * counts the whole record including its own digits. Pure functions, no I/O.
 *
 * PostgreSQL never writes pax records; we read them because GNU tar (`--format=pax`) and other tools do,
 * and we write them for names longer than ustar holds in the files we add ourselves.
 * @module
 */
import type { TarHeader } from './header.js';

/** The pax keys this library applies to the following header. Others are kept but ignored. */
export interface PaxOverrides {
  /** Replaces the entry name (`path`). */
  path?: string;
  /** Replaces the link target (`linkpath`). */
  linkpath?: string;
  /** Replaces the size (`size`), for bodies of 8 GiB and more. */
  size?: number;
  /** Replaces the modification time (`mtime`, seconds, may carry a fraction). */
  mtime?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/** Result of {@link parsePax}: every record, and whether the whole buffer was well formed. */
export interface ParsedPax {
  /** Records in order; a later key wins over an earlier one. */
  records: Map<string, string>;
  /** False when a record's length or layout is wrong; `error` says where. */
  valid: boolean;
  /** What was wrong, when `valid` is false. */
  error: string | undefined;
}

/**
 * Parses the body of a pax header. Never throws.
 *
 * @example
 * ```ts
 * parsePax(Buffer.from('20 path=a/long/name\n')).records.get('path'); // 'a/long/name'
 * ```
 */
export function parsePax(body: Buffer): ParsedPax {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    // Writers may pad the body with NULs; stop there.
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    if (space === -1 || space === pos || space - pos > 20) return bad(records, `no record length at byte ${pos}`);
    const lengthText = body.toString('latin1', pos, space);
    if (!/^[0-9]+$/.test(lengthText)) return bad(records, `bad record length "${lengthText}" at byte ${pos}`);
    const length = Number(lengthText);
    const end = pos + length;
    if (length <= space - pos + 1 || end > body.length || body[end - 1] !== 0x0a) {
      return bad(records, `record at byte ${pos} does not end where its length ${length} says`);
    }
    const eq = body.indexOf(0x3d, space + 1);
    if (eq === -1 || eq >= end - 1) return bad(records, `record at byte ${pos} has no "="`);
    records.set(body.toString('utf8', space + 1, eq), body.toString('utf8', eq + 1, end - 1));
    pos = end;
  }
  return { records, valid: true, error: undefined };
}

function bad(records: Map<string, string>, error: string): ParsedPax {
  return { records, valid: false, error };
}

/** Picks the keys this library applies out of parsed records; numeric values that do not parse are dropped. */
export function paxOverrides(records: ReadonlyMap<string, string>): PaxOverrides {
  const out: PaxOverrides = {};
  const path = records.get('path');
  if (path !== undefined) out.path = path;
  const linkpath = records.get('linkpath');
  if (linkpath !== undefined) out.linkpath = linkpath;
  const uname = records.get('uname');
  if (uname !== undefined) out.uname = uname;
  const gname = records.get('gname');
  if (gname !== undefined) out.gname = gname;
  const int = (key: string): number | undefined => {
    const v = records.get(key);
    return v !== undefined && /^[0-9]+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : undefined;
  };
  const size = int('size');
  if (size !== undefined) out.size = size;
  const uid = int('uid');
  if (uid !== undefined) out.uid = uid;
  const gid = int('gid');
  if (gid !== undefined) out.gid = gid;
  const mtime = records.get('mtime');
  if (mtime !== undefined && /^-?[0-9]+(\.[0-9]*)?$/.test(mtime)) out.mtime = Math.floor(Number(mtime));
  return out;
}

/** Returns a copy of `header` with pax overrides applied. */
export function applyPax(header: TarHeader, overrides: PaxOverrides): TarHeader {
  const out = { ...header };
  if (overrides.path !== undefined) out.name = overrides.path;
  if (overrides.linkpath !== undefined) out.linkname = overrides.linkpath;
  if (overrides.size !== undefined) out.size = overrides.size;
  if (overrides.mtime !== undefined) out.mtime = overrides.mtime;
  if (overrides.uid !== undefined) out.uid = overrides.uid;
  if (overrides.gid !== undefined) out.gid = overrides.gid;
  if (overrides.uname !== undefined) out.uname = overrides.uname;
  if (overrides.gname !== undefined) out.gname = overrides.gname;
  return out;
}

/**
 * Encodes pax records. Each record's length prefix counts its own digits, so it is found by iterating
 * until the digit count stops changing.
 *
 * @example
 * ```ts
 * encodePax([['path', 'a/very/long/name']]); // <Buffer "25 path=a/very/long/name\n">
 * ```
 */
export function encodePax(records: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    if (key === '' || key.includes('=')) throw new RangeError(`invalid pax key "${key}"`);
    const rest = Buffer.byteLength(` ${key}=${value}\n`, 'utf8');
    let length = rest + 1;
    while (String(length).length + rest !== length) length = String(length).length + rest;
    parts.push(Buffer.from(`${length} ${key}=${value}\n`, 'utf8'));
  }
  return Buffer.concat(parts);
}
