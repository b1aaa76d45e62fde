// pgbb restore and restore-wal against real servers: a tar backup taken with -X none, rows committed in
// batches with a restore point and WAL switches between them, a real WAL archive (archive_command cp).
// Restoring to an LSN, a restore point, a time and an xid each gives a server that is out of recovery
// and holds exactly the batches committed before the target; the pre-flight refuses what the archive
// cannot reach before writing anything; restore-wal's exit statuses make a damaged segment stop recovery.
import { copyFileSync, existsSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { restoreBackup } from '../../src/recovery/restore.js';
import { parseLsn } from '../../src/lsn.js';
import { chownToServer, makeTempDir, startCluster, type Cluster, atomicArchiveCommand } from '../harness/index.js';
import { pgbbForFile, runPgbb } from '../harness/pgbb-cli.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';

const majors = walTestMajors(WAL_MAJORS_15_17);

/** pgbb as the server user can run it too (restore_command names this node and main.js). */
const runnable = pgbbForFile({ forServer: true });
const pgbb = (args: string[]) => runPgbb(runnable(), args);

interface Batch {
  xid: string;
  lsnAfter: string;
  timeAfter: string;
}

describe.each(majors)('pgbb restore on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;
  let tsOld: string;
  let backupDir: string;
  const batches: Batch[] = [];
  const restored: Cluster[] = [];

  beforeAll(async () => {
    archive = await makeTempDir('archive');
    tsOld = await makeTempDir('ts-old');
    c = await startCluster({ major, conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(archive) } });
    await c.sql(`CREATE TABLESPACE ts LOCATION '${tsOld}'`);
    await c.sql('CREATE TABLE t (batch int, n int) TABLESPACE ts');
    await c.sql('INSERT INTO t SELECT 0, g FROM generate_series(1, 100) g');
    backupDir = await makeTempDir('backup');
    // 15: compressed by the client (lz4); 16+: by the server (gzip: the embedded builds have no lz4);
    // 13 and 14, which cannot compress on the server: by the client (gzip).
    const r = await pgbb([
      'backup',
      '-d',
      c.connectionString(),
      '-D',
      backupDir,
      '-Ft',
      '-X',
      'none',
      '-c',
      'fast',
      ...(major === 15 ? ['-Z', 'client-lz4'] : major < 15 ? ['-Z', 'client-gzip'] : ['-Z', 'server-gzip']),
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    for (let b = 1; b <= 4; b++) {
      const [row] = await c.sql<{ xid: string }>(
        `WITH ins AS (INSERT INTO t SELECT ${b}, g FROM generate_series(1, 100) g RETURNING 1) SELECT pg_current_xact_id()::text AS xid FROM ins LIMIT 1`,
      );
      const [after] = await c.sql<{ lsn: string; time: string }>(
        "SELECT pg_current_wal_insert_lsn()::text AS lsn, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS time",
      );
      batches.push({ xid: row!.xid, lsnAfter: after!.lsn, timeAfter: after!.time });
      if (b === 2) await c.sql("SELECT pg_create_restore_point('after-2')");
      await c.sql('SELECT pg_switch_wal()');
    }
    // The segment holding the last batch was switched away from above: wait until the archiver has it.
    const [last] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[3]!.lsnAfter}') AS f`);
    await vi.waitFor(
      () =>
        expect(
          existsSync(join(archive, last!.f)),
          `${last!.f} archived? archive: ${readdirSync(archive).join(' ')}\n${c.logText().slice(-2000)}`,
        ).toBe(true),
      { timeout: 60_000, interval: 100 },
    );
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled([c, ...restored].filter(Boolean).map((x) => x.destroy()));
  });

  /** Start a restored directory (archiving off: it must not write into the shared archive) and wait for promotion. */
  async function startRestored(dataDir: string, tsNew: string): Promise<Cluster> {
    const r = await startCluster({ major, dataDir, conf: { archive_mode: 'off' }, chownPaths: [tsNew] });
    restored.push(r);
    await vi.waitFor(
      async () => {
        const [row] = await r.sql<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        expect(row!.rec).toBe(false);
      },
      { timeout: 90_000, interval: 200 },
    );
    return r;
  }

  async function batchesIn(r: Cluster): Promise<number[]> {
    const rows = await r.sql<{ batch: number; n: string }>('SELECT batch, count(*)::text AS n FROM t GROUP BY batch ORDER BY batch');
    for (const row of rows) expect(row.n).toBe('100');
    return rows.map((row) => row.batch);
  }

  async function restoreWithCli(target: string[]): Promise<{ dataDir: string; tsNew: string; stderr: string }> {
    const dataDir = await makeTempDir('restored');
    const tsNew = await makeTempDir('ts-new');
    const r = await pgbb([
      'restore',
      backupDir,
      '-D',
      dataDir,
      '--wal-archive',
      archive,
      '-T',
      `${tsOld}=${tsNew}`,
      '--target-action',
      'promote',
      ...target,
    ]);
    expect(r.stderr).toMatch(/recovery will stop at [0-9A-F]+\/[0-9A-F]+ on timeline 1/);
    expect(r.code).toBe(0);
    return { dataDir, tsNew, stderr: r.stderr };
  }

  it('restores to a restore point (CLI): batches 0-2, tablespace relocated, modes and settings as PostgreSQL wants', async () => {
    const { dataDir, tsNew } = await restoreWithCli(['--target-name', 'after-2']);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'PG_VERSION')).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dataDir, 'recovery.signal'))).toBe(true);
    expect(existsSync(join(dataDir, 'tablespace_map'))).toBe(false);
    const [oid] = readdirSync(join(dataDir, 'pg_tblspc'));
    expect(readlinkSync(join(dataDir, 'pg_tblspc', oid!))).toBe(tsNew);
    const auto = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8');
    // Shell-quoted, then GUC-quoted (each ' doubled).
    expect(auto).toContain(`restore-wal "%f" "%p" --wal-archive ''${archive}'''`);
    expect(auto).toContain("recovery_target_name = 'after-2'");
    const r = await startRestored(dataDir, tsNew);
    expect(await batchesIn(r)).toEqual([0, 1, 2]);
    expect(readdirSync(tsOld).length).toBeGreaterThan(0); // the original tablespace is untouched
  });

  it('restores to an LSN (library): batches 0-1', async () => {
    const dataDir = await makeTempDir('restored');
    const tsNew = await makeTempDir('ts-new');
    const result = await restoreBackup({
      backupDir,
      dataDir,
      walArchive: archive,
      target: { kind: 'lsn', lsn: parseLsn(batches[0]!.lsnAfter) },
      pgbbCommand: [runnable().node, runnable().cli],
      targetAction: 'promote',
      tablespaceMapping: new Map([[tsOld, tsNew]]),
      noSync: true,
    });
    expect(result.format).toBe('tar');
    expect(readdirSync(backupDir)).toContain(major === 15 ? 'base.tar.lz4' : 'base.tar.gz');
    expect(result.targetLsn).toBe(parseLsn(batches[0]!.lsnAfter));
    expect(await batchesIn(await startRestored(dataDir, tsNew))).toEqual([0, 1]);
  });

  it('restores to a time (CLI): the batches committed before it, 0-3', async () => {
    const { dataDir, tsNew } = await restoreWithCli(['--target-time', batches[2]!.timeAfter]);
    expect(await batchesIn(await startRestored(dataDir, tsNew))).toEqual([0, 1, 2, 3]);
  });

  it('restores to consistency (--target-immediate): only what the backup holds', async () => {
    const { dataDir, tsNew } = await restoreWithCli(['--target-immediate']);
    expect(await batchesIn(await startRestored(dataDir, tsNew))).toEqual([0]);
  });

  it('restores to an xid (CLI), inclusive and exclusive', async () => {
    const inc = await restoreWithCli(['--target-xid', batches[1]!.xid]);
    const exc = await restoreWithCli(['--target-xid', batches[1]!.xid, '--target-exclusive']);
    expect(await batchesIn(await startRestored(inc.dataDir, inc.tsNew))).toEqual([0, 1, 2]);
    expect(await batchesIn(await startRestored(exc.dataDir, exc.tsNew))).toEqual([0, 1]);
  });

  it('follows a promoted restore onto timeline 2 (latest, the default) or stays on timeline 1 (current)', async () => {
    // A copy of the archive that the restored, promoted server archives into.
    const tlArchive = await makeTempDir('archive-tl');
    await cp(archive, tlArchive, { recursive: true });
    await chownToServer(tlArchive, { recursive: true });
    const first = await makeTempDir('restored');
    const tsFirst = await makeTempDir('ts-new');
    const r = await pgbb([
      'restore',
      backupDir,
      '-D',
      first,
      '--wal-archive',
      tlArchive,
      '-T',
      `${tsOld}=${tsFirst}`,
      '--target-name',
      'after-2',
      '--target-action',
      'promote',
    ]);
    expect(r.code).toBe(0);
    const s = await startCluster({
      major,
      dataDir: first,
      conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(tlArchive) },
      chownPaths: [tsFirst],
    });
    restored.push(s);
    await vi.waitFor(async () => expect((await s.sql<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(false), {
      timeout: 90_000,
      interval: 200,
    });
    await s.sql('INSERT INTO t SELECT 9, g FROM generate_series(1, 100) g');
    const [pos] = await s.sql<{ f: string; tli: number }>(
      'SELECT pg_walfile_name(pg_current_wal_insert_lsn()) AS f, timeline_id AS tli FROM pg_control_checkpoint()',
    );
    expect(pos!.tli).toBe(2);
    await s.sql('SELECT pg_switch_wal()');
    await vi.waitFor(() => expect(existsSync(join(tlArchive, pos!.f))).toBe(true), { timeout: 60_000, interval: 100 });
    expect(existsSync(join(tlArchive, '00000002.history'))).toBe(true);
    await s.stop();

    const latest = await makeTempDir('restored');
    const tsLatest = await makeTempDir('ts-new');
    const l = await pgbb(['restore', backupDir, '-D', latest, '--wal-archive', tlArchive, '-T', `${tsOld}=${tsLatest}`]);
    expect(l.stderr).toMatch(/recovery will stop at [0-9A-F]+\/[0-9A-F]+ on timeline 2/);
    expect(l.code).toBe(0);
    expect(await batchesIn(await startRestored(latest, tsLatest))).toEqual([0, 1, 2, 9]);

    const current = await makeTempDir('restored');
    const tsCurrent = await makeTempDir('ts-new');
    const cur = await pgbb([
      'restore',
      backupDir,
      '-D',
      current,
      '--wal-archive',
      tlArchive,
      '-T',
      `${tsOld}=${tsCurrent}`,
      '--target-timeline',
      'current',
    ]);
    expect(cur.stderr).toMatch(/on timeline 1/);
    expect(cur.code).toBe(0);
    expect(await batchesIn(await startRestored(current, tsCurrent))).toEqual([0, 1, 2, 3, 4]);
  }, 150_000); // three restores and a promoted server archiving: over a minute on a loaded machine

  it('restores a plain backup with its WAL (no archive) into --waldir, tablespace mapped twice', async () => {
    const plain = await makeTempDir('plain-backup');
    const tsBackup = await makeTempDir('ts-plain-backup');
    const b = await pgbb([
      'backup',
      '-d',
      c.connectionString(),
      '-D',
      plain,
      '-Fp',
      '-X',
      'stream',
      '-c',
      'fast',
      '-T',
      `${tsOld}=${tsBackup}`,
    ]);
    expect(b.code).toBe(0);
    const dataDir = await makeTempDir('restored');
    const tsNew = await makeTempDir('ts-new');
    const walDir = await makeTempDir('waldir');
    const r = await pgbb(['restore', plain, '-D', dataDir, '--waldir', walDir, '-T', `${tsBackup}=${tsNew}`, '--json']);
    expect(r.code).toBe(0);
    const done = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; format?: string })
      .find((e) => e.event === 'done');
    expect(done?.format).toBe('plain');
    expect(readlinkSync(join(dataDir, 'pg_wal'))).toBe(walDir);
    expect(readdirSync(walDir).some((n) => /^[0-9A-F]{24}$/.test(n))).toBe(true);
    expect(existsSync(join(dataDir, 'recovery.signal'))).toBe(false);
    expect(existsSync(join(dataDir, 'backup_manifest'))).toBe(false);
    const s = await startCluster({ major, dataDir, conf: { archive_mode: 'off' }, chownPaths: [tsNew, walDir] });
    restored.push(s);
    expect(await batchesIn(s)).toEqual([0, 1, 2, 3, 4]);
  });

  it('pre-flight refusals: before the backup end, beyond the archive (newest commit named), a missing segment; nothing written', async () => {
    const tsNew = await makeTempDir('ts-new');
    const dataDir = await makeTempDir('refused');
    const common = ['restore', backupDir, '-D', dataDir, '-T', `${tsOld}=${tsNew}`];
    let r = await pgbb([...common, '--wal-archive', archive, '--target-lsn', '0/10']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/before the end of the backup/);
    r = await pgbb([...common, '--wal-archive', archive, '--target-time', '2099-01-01 00:00:00+00']);
    expect(r.code).toBe(1);
    // The newest commit in the archive: batch 4's, or a later one (autovacuum, earlier tests' backups).
    const newest = /newest reachable commit is transaction (\d+) at \d{4}-/.exec(r.stderr);
    expect(newest, r.stderr).not.toBeNull();
    expect(Number(newest![1])).toBeGreaterThanOrEqual(Number(batches[3]!.xid));
    // An archive without the segment holding batch 2's commit.
    const holed = await makeTempDir('archive-holed');
    await cp(archive, holed, { recursive: true });
    const [seg] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[1]!.lsnAfter}') AS f`);
    await rm(join(holed, seg!.f));
    r = await pgbb([...common, '--wal-archive', holed, '--target-name', 'after-2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${seg!.f} is missing`);
    expect(readdirSync(dataDir)).toEqual([]);
    expect(readdirSync(tsNew)).toEqual([]);
  });

  it('takes back what it wrote when the restore fails half-way (a truncated tablespace archive, --no-verify)', async () => {
    const broken = await makeTempDir('backup-broken');
    await cp(backupDir, broken, { recursive: true });
    const tsArchive = readdirSync(broken).find((n) => /^\d+\.tar/.test(n))!;
    const whole = readFileSync(join(broken, tsArchive));
    writeFileSync(join(broken, tsArchive), whole.subarray(0, Math.floor(whole.length / 2)));
    const dataDir = await makeTempDir('restored');
    const tsNew = await makeTempDir('ts-new');
    const r = await pgbb(['restore', broken, '-D', dataDir, '--wal-archive', archive, '-T', `${tsOld}=${tsNew}`, '--no-verify']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: /m);
    expect(readdirSync(dataDir)).toEqual([]);
    expect(readdirSync(tsNew)).toEqual([]);
    // Verification (the default) refuses the same backup before writing anything.
    const v = await pgbb(['restore', broken, '-D', dataDir, '--wal-archive', archive, '-T', `${tsOld}=${tsNew}`]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/does not match its manifest/);
  });

  it('an abort after the pre-flight removes the directory it created (library, AbortSignal)', async () => {
    const parent = await makeTempDir('abort');
    const dataDir = join(parent, 'new');
    const tsNew = join(parent, 'ts');
    const ac = new AbortController();
    const events: string[] = [];
    await expect(
      restoreBackup({
        backupDir,
        dataDir,
        walArchive: archive,
        tablespaceMapping: new Map([[tsOld, tsNew]]),
        noSync: true,
        signal: ac.signal,
        onEvent: (e) => {
          events.push(e.type);
          if (e.type === 'preflight') ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(events).toEqual(['inspected', 'verified', 'preflight']);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses a non-empty target directory and leaves it as it was', async () => {
    const dataDir = await makeTempDir('nonempty');
    await writeFile(join(dataDir, 'keep'), 'x');
    const r = await pgbb(['restore', backupDir, '-D', dataDir, '--wal-archive', archive]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not empty/);
    expect(readdirSync(dataDir)).toEqual(['keep']);
  });

  it('restore-wal: 0 with the segment byte-identical, 1 when missing, 126 when damaged', async () => {
    const out = await makeTempDir('rw-out');
    const [seg] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[0]!.lsnAfter}') AS f`);
    let r = await pgbb(['restore-wal', seg!.f, join(out, 'x'), '--wal-archive', archive]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'x')).equals(readFileSync(join(archive, seg!.f)))).toBe(true);
    r = await pgbb(['restore-wal', '0000000100000000000000FF', join(out, 'y'), '--wal-archive', archive]);
    expect(r.code).toBe(1);
    const damaged = await makeTempDir('archive-damaged');
    const bytes = readFileSync(join(archive, seg!.f));
    bytes.writeBigUInt64LE(0x7000000n, 8); // the first page's address: another segment's
    writeFileSync(join(damaged, seg!.f), bytes);
    r = await pgbb(['restore-wal', seg!.f, join(out, 'z'), '--wal-archive', damaged]);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/not segment/);
    expect(existsSync(join(out, 'z'))).toBe(false);
  });

  it('a segment damaged after the restore stops recovery (FATAL) instead of promoting early', async () => {
    const copy = await makeTempDir('archive-copy');
    for (const n of readdirSync(archive)) {
      copyFileSync(join(archive, n), join(copy, n));
      await chownToServer(join(copy, n)); // restore-wal runs as the server's OS user
    }
    const dataDir = await makeTempDir('restored');
    const tsNew = await makeTempDir('ts-new');
    const r = await pgbb(['restore', backupDir, '-D', dataDir, '--wal-archive', copy, '-T', `${tsOld}=${tsNew}`]);
    expect(r.stderr).toMatch(/recovery will stop at/);
    expect(r.code).toBe(0);
    // Damage the segment holding batch 3 (after the backup's end) once the pre-flight has passed.
    const [seg] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[2]!.lsnAfter}') AS f`);
    const bytes = readFileSync(join(copy, seg!.f));
    bytes.writeBigUInt64LE(0x7000000n, 8); // the first page's address (later pages may be zeros after the switch)
    writeFileSync(join(copy, seg!.f), bytes);
    let log = '';
    try {
      const s = await startCluster({ major, dataDir, conf: { archive_mode: 'off' }, chownPaths: [tsNew] });
      restored.push(s);
      await vi.waitFor(() => expect(s.logText(), s.logText().slice(-3000)).toMatch(/FATAL/), { timeout: 30_000, interval: 200 });
      log = s.logText();
    } catch (err) {
      log = String(err);
    }
    expect(log).toMatch(/could not restore file "?\w*"? from archive|restore_command.*(126|exit code)/i);
    expect(log).toContain(seg!.f);
    expect(log).not.toMatch(/selected new timeline ID|archive recovery complete/);
  });
});
