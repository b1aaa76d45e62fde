/**
 * What a WAL archive says about the cluster it belongs to, from the long page header of one of its
 * segments: the segment size, the system identifier and the WAL format (hence the major). A restore needs
 * the segment size to name segments before it has read anything of a tar backup but its head.
 * @module
 */
import { ConfigError, PgBackupError, WalArchiveError } from '../errors.js';
import { majorForPageMagic } from '../verify/wal-check.js';
import { isValidWalSegmentSize } from '../wal/segments.js';
import { decompressorForArchived } from './restore-wal.js';
import { directoryWalArchive, type WalArchiveSource } from './wal-source.js';

/** The identity of the cluster whose WAL an archive holds. */
export interface WalArchiveIdentity {
  segmentSize: number;
  systemIdentifier: bigint;
  major: number;
  /** The segment file the header was read from. */
  file: string;
}

const LONG_HEADER = 40;

/** The name of the first archived segment (by name), or `undefined` when the archive holds none. */
export async function firstArchivedSegment(source: WalArchiveSource): Promise<string | undefined> {
  const names = await source.names('');
  return names.filter((n) => /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?(\.partial)?$/.test(n)).sort()[0];
}

/**
 * Read the first segment of the archive (a directory, or any {@link WalArchiveSource}) by name and
 * return its long page header's identity.
 */
export async function probeWalArchive(archive: string | WalArchiveSource): Promise<WalArchiveIdentity> {
  const source = typeof archive === 'string' ? directoryWalArchive(archive) : archive;
  const first = await firstArchivedSegment(source);
  if (first === undefined) throw new ConfigError(`the WAL archive ${source.location} holds no WAL segment`);
  const path = source.locate(first);
  const raw = await source.open(first);
  const input = raw.pipe(decompressorForArchived(first));
  raw.once('error', (err) => input.destroy(err));
  const parts: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      parts.push(chunk);
      got += chunk.length;
      if (got >= LONG_HEADER) break;
    }
  } catch (err) {
    if (err instanceof PgBackupError && err.code !== 'ERR_PGBB_COMPRESSION') throw err;
    throw new WalArchiveError(`${path}: ${(err as Error).message}`, { cause: err, path });
  } finally {
    input.destroy();
    raw.destroy();
  }
  const h = Buffer.concat(parts);
  if (h.length < LONG_HEADER) throw new WalArchiveError(`${path} is too short to be a WAL segment`, { path });
  const major = majorForPageMagic(h.readUInt16LE(0));
  const segmentSize = h.readUInt32LE(32);
  if (major === undefined || (h.readUInt16LE(2) & 0x0002) === 0 || !isValidWalSegmentSize(segmentSize)) {
    throw new WalArchiveError(`${path} does not start with a WAL long page header of PostgreSQL 13 to 18`, { path });
  }
  return { segmentSize, systemIdentifier: h.readBigUInt64LE(24), major, file: path };
}
