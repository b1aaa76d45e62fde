// A restore rehearsal catches what verify cannot: a heap page damaged at the source before the backup
// was taken (data checksums off, so neither the server nor the backup notices) fails the table reads
// and amcheck, naming the table; nothing is left running or on disk.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CRC32C_INIT, crc32cFinal, crc32cUpdate } from '../../src/manifest/crc32c.js';
import { rehearse } from '../../src/rehearse/rehearse.js';
import { readControlFile } from '../../src/verify/control-file.js';
import { makeTempDir, serverIdentity, startCluster, TEST_OS_USER } from '../harness/index.js';
import { pgbbForFile } from '../harness/pgbb-cli.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';
import { cliBackup, expectNothingLeft, stepOf } from './rehearse-helpers.js';

const majors = walTestMajors(WAL_MAJORS_15_17);
const pgbb = pgbbForFile({ forServer: true });
const runAs = serverIdentity() ? TEST_OS_USER : undefined;

/**
 * Turn data checksums off in a stopped cluster's pg_control, as `pg_checksums --disable` does (the
 * embedded builds ship no pg_checksums): `data_checksum_version` sits before the 32-byte mock
 * authentication nonce that ends the checked part (and, on 18, before `default_char_signedness`).
 */
function disableChecksums(dataDir: string, major: number): void {
  const path = join(dataDir, 'global', 'pg_control');
  const bytes = readFileSync(path);
  const info = readControlFile(bytes);
  const crcOffset = info?.crcOffset;
  if (crcOffset === undefined) throw new Error('pg_control unreadable');
  const at = crcOffset - 32 - (major >= 18 ? 8 : 4);
  expect(bytes.readUInt32LE(at)).toBe(1);
  bytes.writeUInt32LE(0, at);
  bytes.writeUInt32LE(crc32cFinal(crc32cUpdate(CRC32C_INIT, bytes, 0, crcOffset)) >>> 0, crcOffset);
  expect(readControlFile(bytes)?.crcOk).toBe(true);
  writeFileSync(path, bytes);
}

describe.each(majors)('rehearse on PostgreSQL %i', (major) => {
  it('a heap page damaged at the source before the backup (checksums off) is caught by the checks', async () => {
    const d = await startCluster({ major, ssl: false, walSegmentSizeMb: 1 });
    try {
      await d.stop();
      disableChecksums(d.dataDir, major);
      await d.start();
      const [cs] = await d.sql<{ data_checksums: string }>('SHOW data_checksums');
      expect(cs!.data_checksums).toBe('off');
      await d.sql('CREATE TABLE dmg (n int, pad text) WITH (autovacuum_enabled = false)');
      await d.sql("INSERT INTO dmg SELECT g, repeat('y', 100) FROM generate_series(1, 1000) g");
      await d.sql('CREATE TABLE fine (n int PRIMARY KEY)');
      await d.sql('INSERT INTO fine SELECT generate_series(1, 100)');
      await d.sql('CHECKPOINT');
      const [p] = await d.sql<{ p: string }>("SELECT pg_relation_filepath('dmg') AS p");
      await d.stop();
      // pd_lower, pd_upper, pd_special and the version of block 1: a header no page can have.
      const file = join(d.dataDir, p!.p);
      const bytes = readFileSync(file);
      bytes.fill(0xff, 8192 + 12, 8192 + 20);
      writeFileSync(file, bytes);
      await d.start();
      const damaged = await cliBackup(pgbb(), d, ['-Fp', '-X', 'stream']);
      const workDir = await makeTempDir('rehearse');
      const r = await rehearse({
        source: { backupDir: damaged },
        runAs,
        workDir,
        pgBin: d.binDir,
        pgbbCommand: [pgbb().node, pgbb().cli],
      });
      expect(r.ok).toBe(false);
      expect(stepOf(r, 'recovery')?.status).toBe('passed');
      expect(stepOf(r, 'read-tables')).toMatchObject({ status: 'failed' });
      expect(stepOf(r, 'read-tables')!.problems).toEqual([expect.stringMatching(/^postgres: dmg: .*invalid page in block 1/)]);
      expect(stepOf(r, 'amcheck')?.status).toBe('failed');
      expect(stepOf(r, 'amcheck')!.problems!.join('\n')).toContain('dmg');
      expect(stepOf(r, 'amcheck')!.problems!.join('\n')).not.toContain('fine');
      expect(stepOf(r, 'checksums')).toMatchObject({ status: 'skipped' });
      expectNothingLeft(workDir);
    } finally {
      await d.destroy();
    }
  }, 90_000);
});
