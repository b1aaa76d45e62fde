// Synthetic plain-format backups for combine tests: pg_control with a valid CRC, backup_label, files,
// and a version 2 manifest with CRC32C checksums.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildManifest } from '../../../src/manifest/build.js';
import { createChecksum } from '../../../src/manifest/checksum.js';
import { crc32c } from '../../../src/manifest/crc32c.js';

export function pgControl(sysid: bigint): Buffer {
  const c = Buffer.alloc(8192);
  c.writeBigUInt64LE(sysid, 0);
  c.writeUInt32LE(1700, 8);
  c.writeUInt32LE(crc32c(c.subarray(0, 296)), 296);
  return c;
}

export function label(start: string, from?: string): string {
  return (
    `START WAL LOCATION: ${start} (file 000000010000000000000004)\nCHECKPOINT LOCATION: ${start}\n` +
    'BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-01-01 00:00:00 UTC\nLABEL: t\nSTART TIMELINE: 1\n' +
    (from ? `INCREMENTAL FROM LSN: ${from}\nINCREMENTAL FROM TLI: 1\n` : '')
  );
}

export async function writeBackup(
  dir: string,
  files: Record<string, Buffer | string>,
  o: { sysid?: bigint; start: string; manifest?: boolean },
) {
  const all: Record<string, Buffer> = { PG_VERSION: Buffer.from('17\n'), 'global/pg_control': pgControl(o.sysid ?? 7000000000000000001n) };
  for (const [k, v] of Object.entries(files)) all[k] = Buffer.isBuffer(v) ? v : Buffer.from(v);
  for (const [k, v] of Object.entries(all)) {
    await mkdir(dirname(join(dir, k)), { recursive: true });
    await writeFile(join(dir, k), v);
  }
  await mkdir(join(dir, 'pg_tblspc'), { recursive: true });
  if (o.manifest !== false) {
    const m = buildManifest({
      version: 2,
      systemIdentifier: o.sysid ?? 7000000000000000001n,
      files: Object.entries(all)
        .filter(([k]) => !k.startsWith('pg_wal/'))
        .map(([path, b]) => ({
          path,
          size: b.length,
          lastModified: 0,
          checksumAlgorithm: 'CRC32C' as const,
          checksum: createChecksum('CRC32C').update(b).hex(),
        })),
      walRanges: [{ timeline: 1, startLsn: 0x4000028n as never, endLsn: 0x4000100n as never }],
    });
    await writeFile(join(dir, 'backup_manifest'), m);
  }
}
