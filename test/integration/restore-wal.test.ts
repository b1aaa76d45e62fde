// restoreWalFile against WAL written by real servers: every archived form of a segment (plain, .gz,
// .lz4, .zst, a .partial) comes back byte-identical, a missing one is "not found", and a damaged one is
// a WalArchiveError (recovery must stop on it, not end there).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { restoreWalFile } from '../../src/recovery/restore-wal.js';
import { makeTempDir, type Cluster } from '../harness/index.js';
import { clustersForMajors } from '../harness/suite.js';
import { walTestMajors } from './receive-wal-helpers.js';

const majors = walTestMajors();
const clusters = clustersForMajors(majors, 'restore-wal');

describe.each(majors)('restoreWalFile on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;
  let out: string;
  let segments: string[];

  beforeAll(async () => {
    c = clusters.get(major);
    await c.sql('CREATE TABLE IF NOT EXISTS t (n int, filler text)');
    for (let i = 0; i < 5; i++) {
      await c.sql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
      await c.sql('SELECT pg_switch_wal()');
    }
    const [cur] = await c.sql<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    // Completed segments only: the current one (and recycled ones past it) hold stale pages.
    segments = readdirSync(join(c.dataDir, 'pg_wal'))
      .filter((n) => /^[0-9A-F]{24}$/.test(n) && n < cur!.f)
      .sort();
    expect(segments.length).toBeGreaterThanOrEqual(3);
    archive = await makeTempDir('wal-archive');
    out = await makeTempDir('wal-out');
    const [plain, gz, lz4, zst] = segments.slice(-4);
    copyFileSync(join(c.dataDir, 'pg_wal', plain!), join(archive, plain!));
    if (gz) execFileSync('sh', ['-c', `gzip -c "$1" > "$2"`, 'sh', join(c.dataDir, 'pg_wal', gz), join(archive, `${gz}.gz`)]);
    if (lz4) execFileSync('lz4', ['-q', join(c.dataDir, 'pg_wal', lz4), join(archive, `${lz4}.lz4`)]);
    if (zst) execFileSync('zstd', ['-q', join(c.dataDir, 'pg_wal', zst), '-o', join(archive, `${zst}.zst`)]);
  });

  const original = (name: string) => readFileSync(join(c.dataDir, 'pg_wal', name));

  it('restores every archived form byte-identical, atomically and with mode 0600', async () => {
    for (const name of segments.slice(-4)) {
      const dest = join(out, `${name}.restored`);
      const r = await restoreWalFile({ fileName: name, destination: dest, archiveDir: archive });
      expect(r).toMatchObject({ found: true, partial: false, segment: { segmentSize: 16 * 1024 * 1024, major } });
      expect(readFileSync(dest).equals(original(name))).toBe(true);
      expect(statSync(dest).mode & 0o777).toBe(0o600);
    }
    expect(readdirSync(out).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('says "not found" for a segment or history file the archive lacks', async () => {
    await expect(
      restoreWalFile({ fileName: '0000000100000000000000FE', destination: join(out, 'x'), archiveDir: archive }),
    ).resolves.toEqual({ found: false });
    await expect(restoreWalFile({ fileName: '00000002.history', destination: join(out, 'h'), archiveDir: archive })).resolves.toEqual({
      found: false,
    });
  });

  it('serves the .partial of the last segment, compressed, padded to the segment size', async () => {
    const name = segments.at(-1)!;
    const dir = await makeTempDir('wal-partial');
    const cut = original(name).subarray(0, 3 * 8192 + 123);
    writeFileSync(join(dir, `${name}.part-src`), cut);
    execFileSync('sh', ['-c', `gzip -c "$1" > "$2"`, 'sh', join(dir, `${name}.part-src`), join(dir, `${name}.gz.partial`)]);
    const dest = join(out, 'partial');
    const r = await restoreWalFile({ fileName: name, destination: dest, archiveDir: dir });
    expect(r).toMatchObject({ found: true, partial: true, bytes: 16 * 1024 * 1024 });
    const got = readFileSync(dest);
    expect(got.subarray(0, cut.length).equals(cut)).toBe(true);
    expect(got.subarray(cut.length).every((b) => b === 0)).toBe(true);
  });

  it('refuses damaged files with ERR_PGBB_WAL_ARCHIVE and leaves no destination', async () => {
    const dir = await makeTempDir('wal-damaged');
    const [a, b, d] = segments.slice(-3);
    // Another segment under this name.
    copyFileSync(join(c.dataDir, 'pg_wal', a!), join(dir, b!));
    // A corrupt gzip stream.
    const gz = execFileSync('gzip', ['-c', join(c.dataDir, 'pg_wal', d!)]);
    gz[Math.floor(gz.length / 2)]! ^= 0xff;
    writeFileSync(join(dir, `${d}.gz`), gz);
    // A truncated complete segment.
    writeFileSync(join(dir, a!), original(a!).subarray(0, 1024 * 1024));
    for (const name of [a!, b!, d!]) {
      const dest = join(out, `damaged-${name}`);
      await expect(restoreWalFile({ fileName: name, destination: dest, archiveDir: dir })).rejects.toMatchObject({
        code: 'ERR_PGBB_WAL_ARCHIVE',
      });
      expect(() => statSync(dest)).toThrow();
    }
    expect(readdirSync(out).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('refuses names that are not WAL file names (no path tricks)', async () => {
    mkdirSync(join(out, 'sub'), { recursive: true });
    for (const fileName of ['../etc/passwd', 'pg_control', '00000001000000000000000G']) {
      await expect(restoreWalFile({ fileName, destination: join(out, 'sub', 'x'), archiveDir: archive })).rejects.toMatchObject({
        code: 'ERR_PGBB_WAL_ARCHIVE',
      });
    }
  });
});
