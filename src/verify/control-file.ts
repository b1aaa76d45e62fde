/**
 * What verification needs from `global/pg_control`: the system identifier (its first 8 bytes, in
 * the machine's byte order), `pg_control_version`, and whether the CRC-32C holds. The CRC sits right
 * after the fields it covers (`offsetof(ControlFileData, crc)`), an offset that differs between
 * majors, so it is found by position instead of by a per-version layout. Pure.
 * @module
 */
import { endianness } from 'node:os';
import { CRC32C_INIT, crc32cFinal, crc32cUpdate } from '../manifest/crc32c.js';

/** `PG_CONTROL_FILE_SIZE`: the file is padded to this size. */
export const PG_CONTROL_FILE_SIZE = 8192;
/** ControlFileData is well under this size in every supported major; the CRC lies before it. */
const MAX_CONTROL_DATA = 512;

/** The parts of pg_control that verification uses. */
export interface ControlFileInfo {
  systemIdentifier: bigint;
  /** `pg_control_version` (1300 for 13–16, 1700 for 17, 1800 for 18). */
  controlVersion: number;
  /** Whether a CRC-32C over the bytes before it matches the stored CRC. */
  crcOk: boolean;
  /** Offset of the CRC field when found. */
  crcOffset?: number;
}

/**
 * Read pg_control's identity fields from its bytes (at least the first 512).
 * @param littleEndian byte order of the machine that wrote it. @default this machine's
 */
export function readControlFile(bytes: Uint8Array, littleEndian = endianness() === 'LE'): ControlFileInfo | undefined {
  if (bytes.length < 16) return undefined;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const systemIdentifier = littleEndian ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
  const controlVersion = littleEndian ? b.readUInt32LE(8) : b.readUInt32BE(8);
  let crc = CRC32C_INIT;
  let done = 0;
  const limit = Math.min(MAX_CONTROL_DATA, b.length - 4);
  for (let off = 16; off <= limit; off += 4) {
    crc = crc32cUpdate(crc, b, done, off);
    done = off;
    const stored = littleEndian ? b.readUInt32LE(off) : b.readUInt32BE(off);
    if (crc32cFinal(crc) === stored) return { systemIdentifier, controlVersion, crcOk: true, crcOffset: off };
  }
  return { systemIdentifier, controlVersion, crcOk: false };
}
