// pg_basebackup 15 (Debian's) as the oracle: for the same cluster our plain backup has the
// same files, our tar backup the same archives with the same members, and pg_verifybackup 15
// accepts our plain backups of PostgreSQL 15 (Debian's build and the embedded one).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/index.js';
import { makeTempDir, oracleBin, startCluster, testMajors, type Cluster, type Flavor } from '../harness/index.js';
import { exec, listTree, tarMembers } from './backup-helpers.js';

/**
 * WAL segment names depend on when each backup ran (each one switches segments), and so
 * does how many segments it spans: name them by role, not number.
 */
function normalise(paths: string[]): string[] {
  // A segment completed while streaming gets archive_status/<segment>.done (both tools mark
  // it): whether one did depends on where the segment boundary fell, so .done files are
  // checked separately ({@link expectDoneOnlyForCompleteSegments}).
  return [...new Set(paths.filter((p) => !p.endsWith('.done')).map((p) => p.replace(/[0-9A-F]{24}/g, '<segment>')))].sort();
}

/**
 * .done marks only segments that were completed: every one but the last streamed, and the
 * last one too when the backup ended exactly on a segment boundary (seen with pg_basebackup).
 */
function expectDoneOnlyForCompleteSegments(paths: string[], walDir: string): void {
  const segments = paths
    .filter((p) => new RegExp(`^${walDir}/[0-9A-F]{24}$`).test(p))
    .map((p) => p.slice(walDir.length + 1))
    .sort();
  const done = paths
    .filter((p) => p.endsWith('.done'))
    .map((p) => p.replace(/^.*\//, '').replace(/\.done$/, ''))
    .sort();
  expect(segments.length).toBeGreaterThan(0);
  const last = segments.at(-1);
  const expected = done.includes(last!) ? segments : segments.slice(0, -1);
  expect(done).toEqual(expected);
}

async function pgBasebackup(c: Cluster, args: string[]): Promise<void> {
  await exec(oracleBin('pg_basebackup'), ['-d', c.connectionString(), '-c', 'fast', '-N', ...args]);
}

const flavors: Flavor[] = testMajors().includes(15) ? ['debian', 'embedded'] : [];

describe.concurrent('pg_basebackup 15 as the oracle', () => {
  for (const flavor of flavors) {
    describe.sequential(`PostgreSQL 15 (${flavor})`, () => {
      let primary: Cluster;
      let tsDir: string;
      beforeAll(async () => {
        primary = await startCluster({ major: 15, flavor, ssl: false });
        tsDir = await makeTempDir('oracle-ts');
        await primary.sql(`create tablespace extra location '${tsDir}'`);
        await primary.sql('create table in_ts(i int) tablespace extra');
        await primary.sql('insert into in_ts select generate_series(1, 1000)');
      });
      afterAll(async () => {
        await primary?.destroy();
      });

      it('pg_verifybackup 15 accepts our plain backup', async () => {
        const parent = await makeTempDir('oracle-verify');
        const ours = join(parent, 'ours');
        const oursTs = join(parent, 'ours-ts');
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: ours, tablespaceMapping: new Map([[tsDir, oursTs]]) },
        });
        const { stdout } = await exec(oracleBin('pg_verifybackup'), [ours]);
        expect(stdout).toMatch(/backup successfully verified/);
      });

      if (flavor !== 'debian') return;

      it('plain: the same files as pg_basebackup -Fp', async () => {
        const parent = await makeTempDir('oracle-plain');
        const theirs = join(parent, 'theirs');
        const ours = join(parent, 'ours');
        await pgBasebackup(primary, ['-Fp', '-X', 'stream', '-D', theirs, '-T', `${tsDir}=${join(parent, 'theirs-ts')}`]);
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: ours, tablespaceMapping: new Map([[tsDir, join(parent, 'ours-ts')]]) },
        });
        const ourFiles = await listTree(ours);
        const theirFiles = await listTree(theirs);
        expect(normalise(ourFiles)).toEqual(normalise(theirFiles));
        expectDoneOnlyForCompleteSegments(ourFiles, 'pg_wal');
        expectDoneOnlyForCompleteSegments(theirFiles, 'pg_wal');
        expect(await listTree(join(parent, 'ours-ts'))).toEqual(await listTree(join(parent, 'theirs-ts')));
      });

      it('tar: the same archives, with the same members, as pg_basebackup -Ft', async () => {
        const parent = await makeTempDir('oracle-tar');
        const theirs = join(parent, 'theirs');
        const ours = join(parent, 'ours');
        await pgBasebackup(primary, ['-Ft', '-X', 'stream', '-D', theirs]);
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'tar', directory: ours },
        });
        const archives = (await readdir(theirs)).sort();
        expect((await readdir(ours)).sort()).toEqual(archives);
        expect(archives).toHaveLength(4);
        for (const name of archives.filter((a) => a.endsWith('.tar'))) {
          const ourMembers = await tarMembers(join(ours, name));
          const theirMembers = await tarMembers(join(theirs, name));
          expect(normalise(ourMembers), name).toEqual(normalise(theirMembers));
          if (name === 'pg_wal.tar') {
            // pg_wal.tar members have no directory prefix.
            expectDoneOnlyForCompleteSegments(
              ourMembers.map((m) => `w/${m}`),
              'w',
            );
            expectDoneOnlyForCompleteSegments(
              theirMembers.map((m) => `w/${m}`),
              'w',
            );
          }
        }
      });
    });
  }
});
