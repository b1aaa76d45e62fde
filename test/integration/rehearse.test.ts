// Restore rehearsals against real servers: a backup with archived WAL restores, replays to the end of
// the archive, promotes and passes every check, with its figures; a hole in the archive fails naming
// the missing segment; an abort during replay stops the server (rehearse-damage.test.ts: a damaged page). Whatever happens, no server of the
// scratch directory is left running and the directory is gone (unless kept on purpose).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rehearse } from '../../src/rehearse/rehearse.js';
import { makeTempDir, serverIdentity, TEST_OS_USER, type Cluster } from '../harness/index.js';
import { pgbbForFile } from '../harness/pgbb-cli.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';
import {
  archiveWithHole,
  archivingCluster,
  cliBackup,
  expectNothingLeft,
  processesUnder,
  stepOf,
  waitArchivedBeforeCurrent,
} from './rehearse-helpers.js';

const majors = walTestMajors(WAL_MAJORS_15_17);
const pgbb = pgbbForFile({ forServer: true });
const runAs = serverIdentity() ? TEST_OS_USER : undefined;
/** Debian's PostgreSQL 15 (pg_config on PATH) ships pg_checksums; the embedded builds ship only the server. */
const DEBIAN_15 = '/usr/lib/postgresql/15/bin';

describe.each(majors)('rehearse on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;
  let backupDir: string;
  let lastCommit: string;

  beforeAll(async () => {
    ({ cluster: c, archive } = await archivingCluster(major));
    await c.sql('CREATE TABLE t (n int PRIMARY KEY, pad text)');
    await c.sql("INSERT INTO t SELECT g, repeat('x', 300) FROM generate_series(1, 2000) g");
    // A value stored out of line, in the TOAST table.
    await c.sql("INSERT INTO t SELECT 0, string_agg(md5(g::text), '') FROM generate_series(1, 400) g");
    backupDir = await cliBackup(pgbb(), c, ['-Ft', '-X', 'none']);
    for (let i = 0; i < 3; i++) {
      await c.sql(`INSERT INTO t SELECT g, 'after' FROM generate_series(${3000 + i * 1000}, ${3999 + i * 1000}) g`);
      await c.sql('SELECT pg_switch_wal()');
    }
    const [last] = await c.sql<{ t: string }>("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') AS t");
    lastCommit = last!.t;
    // Everything before the current segment is archived once the archiver catches up.
    await waitArchivedBeforeCurrent(c, archive);
  }, 120_000);

  it('a backup with archived WAL passes every check and reports its figures', async () => {
    const workDir = await makeTempDir('rehearse');
    const r = await rehearse({
      source: { backupDir, walArchive: archive },
      runAs,
      workDir,
      pgbbCommand: [pgbb().node, pgbb().cli],
      // 15: the binaries are found (pg_config, Debian's); other majors: the harness's embedded build.
      ...(major === 15 ? {} : { pgBin: c.binDir }),
      checkSql: 'SELECT count(*) = 5001 FROM t;\nSELECT length(pad) = 12800 FROM t WHERE n = 0; -- the TOAST value\n',
      timeoutMs: 80_000,
    });
    expect(
      r.steps.filter((s) => s.status === 'failed'),
      JSON.stringify(r.steps, null, 1),
    ).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.major).toBe(major);
    // With pg_checksums (Debian's 15) the pages are checked on the stopped cluster; otherwise by the
    // server as the checks read them.
    const offline = major === 15;
    expect(r.steps.map((s) => s.name)).toEqual([
      'restore',
      'archive',
      'binaries',
      'start',
      'recovery',
      'read-tables',
      'amcheck',
      ...(offline ? [] : ['checksums']),
      'sql-checks',
      'stop',
      ...(offline ? ['checksums'] : []),
      'cleanup',
    ]);
    expect(r.steps.every((s) => s.status === 'passed')).toBe(true);
    expect(stepOf(r, 'binaries')?.detail).toBe(`PostgreSQL ${major} in ${offline ? DEBIAN_15 : c.binDir}`);
    expect(stepOf(r, 'checksums')?.detail).toMatch(
      offline ? /^pg_checksums: \d+ blocks scanned, no bad checksum$/ : /^data checksums on: no failure/,
    );
    expect(stepOf(r, 'sql-checks')?.detail).toBe('2 of 2 checks returned true');
    const f = r.figures;
    expect(f.restoreMs).toBeGreaterThan(0);
    expect(f.replayMs).toBeGreaterThan(0);
    expect(f.recoveryMs).toBeCloseTo(f.restoreMs + f.replayMs, 6);
    // Three segments were switched through after the backup: all of them were replayed.
    expect(f.walBytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(f.lastTransactionTime!.slice(0, 19) <= lastCommit).toBe(true);
    expect(Date.parse(f.lastTransactionTime!)).toBeGreaterThan(Date.parse(`${lastCommit}Z`) - 60_000);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expectNothingLeft(workDir);
  }, 90_000);

  it('a hole in the archive fails naming the missing segment; keep-on-failure keeps the directory', async () => {
    // The segment after the backup's own is missing: between the backup and the end of the archive.
    const { holed, missing } = await archiveWithHole(archive);
    for (const keepOnFailure of [false, true]) {
      const workDir = await makeTempDir('rehearse');
      const r = await rehearse({
        source: { backupDir, walArchive: holed },
        runAs,
        workDir,
        pgbbCommand: [pgbb().node, pgbb().cli],
        pgBin: c.binDir,
        keepOnFailure,
      });
      expect(r.ok).toBe(false);
      const failed = r.steps.filter((s) => s.status === 'failed');
      // The archive step finds the hole; the restore's pre-flight, when the backup's end needs the segment.
      expect(failed).toHaveLength(1);
      expect(['archive', 'restore']).toContain(failed[0]!.name);
      expect(failed[0]!.error).toMatchObject({ code: 'ERR_PGBB_REHEARSAL', missingSegment: missing });
      expect(failed[0]!.detail).toContain(missing);
      expect(processesUnder(workDir)).toEqual([]);
      if (keepOnFailure) {
        expect(r.keptDir).toBeDefined();
        expect(existsSync(join(r.keptDir!, 'data', 'PG_VERSION'))).toBe(true);
        expect(stepOf(r, 'cleanup')?.detail).toContain(r.keptDir);
        await rm(r.keptDir!, { recursive: true });
      } else expect(r.keptDir).toBeUndefined();
      expectNothingLeft(workDir);
    }
  }, 60_000);

  it('an abort during replay stops the server and removes everything', async () => {
    const workDir = await makeTempDir('rehearse');
    const ac = new AbortController();
    let startedPid: string | undefined;
    const run = rehearse({
      source: { backupDir, walArchive: archive },
      runAs,
      workDir,
      pgbbCommand: [pgbb().node, pgbb().cli],
      pgBin: c.binDir,
      signal: ac.signal,
      onStep: (s) => {
        if (s.name === 'start') {
          startedPid = /pid (\d+)/.exec(s.detail)?.[1];
          ac.abort();
        }
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(startedPid).toBeDefined();
    expect(existsSync(`/proc/${startedPid}`)).toBe(false);
    expectNothingLeft(workDir);
  }, 60_000);
});
