// A plain backup of a group-readable cluster (data_directory_mode 0750) keeps group access,
// WAL streamed during the backup included, as pg_basebackup does; a strict cluster stays strict.
import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/index.js';
import { makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';

const major = testMajors().includes(18) ? 18 : testMajors()[0]!;
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe(`plain backup modes (PostgreSQL ${major})`, () => {
  let primary: Cluster;
  beforeAll(async () => {
    primary = await startCluster({ major, ssl: false });
  });
  afterAll(async () => {
    await primary?.destroy();
  });

  for (const group of [true, false]) {
    it(`${group ? 'group-readable' : 'strict'} cluster: data directory, pg_wal and streamed segments follow it`, async () => {
      // The server takes data_directory_mode from the directory's mode at startup.
      await chmod(primary.dataDir, group ? 0o750 : 0o700);
      await primary.restart();
      const [row] = await primary.sql<{ m: string }>("select current_setting('data_directory_mode') m");
      expect(row!.m).toBe(group ? '0750' : '0700');
      const dir = join(await makeTempDir('modes'), 'data');
      const oldUmask = process.umask(0o077);
      try {
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: dir },
        });
      } finally {
        process.umask(oldUmask);
      }
      const d = group ? 0o750 : 0o700;
      const f = group ? 0o640 : 0o600;
      expect(await mode(dir)).toBe(d);
      expect(await mode(join(dir, 'pg_wal'))).toBe(d);
      expect(await mode(join(dir, 'pg_wal', 'archive_status'))).toBe(d);
      expect(await mode(join(dir, 'global', 'pg_control'))).toBe(f);
      expect(await mode(join(dir, 'backup_manifest'))).toBe(f);
      const segments = (await readdir(join(dir, 'pg_wal'))).filter((n) => /^[0-9A-F]{24}$/.test(n));
      expect(segments.length).toBeGreaterThan(0);
      for (const s of segments) expect(await mode(join(dir, 'pg_wal', s)), s).toBe(f);
      const done = await readdir(join(dir, 'pg_wal', 'archive_status'));
      for (const s of done) expect(await mode(join(dir, 'pg_wal', 'archive_status', s)), s).toBe(f);
    });
  }
});
