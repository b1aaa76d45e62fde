// backupToRepository, the library call behind `pgbb backup --repo`, on real servers and a local and an S3
// (Swift) repository: an abort in the middle of an upload leaves no record, no object and no pending
// upload; a held lock refuses the backup before the server is contacted; an incremental backup (17+)
// is taken against the newest backup of the catalog; through a fault-injecting proxy, transient S3 failures are
// retried and the backup completes, while failures past the retries fail it with nothing left behind.
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { AbortError, RepositoryLockedError, StorageError } from '../../src/errors.js';
import { backupToRepository } from '../../src/repository/backup.js';
import { listBackupFailures } from '../../src/repository/history.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { parseLsn } from '../../src/lsn.js';
import { segmentFileNameForLsn } from '../../src/wal-segments.js';
import { startCluster, startFaultProxy, testMajors } from '../harness/index.js';
import { repositoryTargets, swiftBucketForFile } from '../harness/repositories.js';
import { describeEachMajor, trustTcp } from '../harness/suite.js';
import { slotsAfterSettling } from './backup-helpers.js';

const BUCKET = 'pgbb-repo-backup';
const s3 = swiftBucketForFile(BUCKET);
const targets = repositoryTargets(s3);
let admin: S3Client;
let seq = 0;

beforeAll(() => {
  admin = s3.admin;
});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The member names of a tar, as GNU tar lists them. */
function tarNames(tar: Buffer): string[] {
  return execFileSync('tar', ['-tf', '-'], { input: tar, maxBuffer: 1 << 20 })
    .toString()
    .split('\n')
    .filter(Boolean);
}

const segmentFileNameAt = (timeline: number, lsn: bigint) => segmentFileNameForLsn(timeline, lsn, 16 * 1024 * 1024);

async function keysOf(repo: Repository): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of repo.storage.list()) keys.push(o.key);
  return keys.sort();
}

describeEachMajor(
  'backupToRepository',
  testMajors(),
  (major, primary) => {
    for (const [name, make] of targets) {
      describe(name, () => {
        it('an abort in the middle of an upload leaves no record, no object and no pending upload', async () => {
          const target = await make(`lib${major}`);
          await using repo = await target.open();
          const controller = new AbortController();
          const running = backupToRepository(repo, {
            connection: trustTcp(primary()),
            checkpoint: 'fast',
            maxRateKBps: 2048,
            signal: controller.signal,
          });
          const outcome = running.then(
            () => undefined,
            (err: unknown) => err,
          );
          await vi.waitFor(async () => expect(await target.leftovers()).not.toEqual([]), { timeout: 60_000, interval: 100 });
          controller.abort();
          expect(await outcome).toBeInstanceOf(AbortError);
          expect(await repo.listBackups()).toEqual([]);
          // The cluster was recorded before the first object: that stays, with the record of the failed run.
          const [failure] = await listBackupFailures(repo);
          expect(failure).toMatchObject({ type: 'full', error: { code: 'ERR_PGBB_ABORTED' } });
          expect(await keysOf(repo)).toEqual([`failures/${failure!.id}.json`, 'repository.json']);
          expect((await repo.info())?.cluster.walSegmentSize).toBe(16 * 1024 * 1024);
          expect(await target.leftovers()).toEqual([]);
          expect(await slotsAfterSettling(primary())).toEqual([]);
        });

        it('streamed WAL goes into the repository as it arrives (no local spool); a permanent slot is told of no flushed WAL', async () => {
          const target = await make(`lib${major}`);
          await using repo = await target.open();
          // A spool could not be created here: a backup that succeeds did not spool.
          const noSpool = join(tmpdir(), `pgbb-no-such-dir-${process.pid}-${major}`);
          const outcome = await backupToRepository(repo, { connection: trustTcp(primary()), checkpoint: 'fast', tempDir: noSpool });
          if (outcome.skipped) throw new Error('not skipped');
          expect(outcome.record.objects.map((o) => o.name)).toEqual(['base.tar', 'pg_wal.tar', 'backup_manifest']);
          const wal = outcome.record.objects.find((o) => o.name === 'pg_wal.tar')!;
          const stored = await readAll(await repo.openBackupObject(outcome.record.id, 'pg_wal.tar'));
          expect(stored.length).toBe(wal.size);
          expect(createHash('sha256').update(stored).digest('hex')).toBe(wal.sha256);
          // The WAL from the backup's start to its end, whole segments and their archive_status marks.
          const names = tarNames(stored);
          expect(names).toContain(segmentFileNameAt(outcome.result.startTimeline, outcome.result.startLsn));
          expect(names).toContain(segmentFileNameAt(outcome.result.endTimeline, outcome.result.endLsn));
          for (const n of names) expect(n).toMatch(/^(archive_status\/)?[0-9A-F]{24}(\.done)?$/);
          // The record's original size counts the WAL archive too.
          expect(outcome.record.originalSize).toBeGreaterThanOrEqual(outcome.result.stats.totalBytes + 16 * 1024 * 1024);

          // A permanent slot goes the same way, without a spool, and is told of no flushed WAL: the
          // upload is stored only once complete. Its restart position stays at or before the backup's
          // start, where reported flushes would have moved it past the backup's end.
          const slot = `repo_hold_${major}`;
          const held = await backupToRepository(repo, {
            connection: trustTcp(primary()),
            checkpoint: 'fast',
            tempDir: noSpool,
            slot,
            createSlot: true,
          });
          if (held.skipped) throw new Error('not skipped');
          const [row] = await primary().sql<{ r: string }>('select restart_lsn::text r from pg_replication_slots where slot_name = $1', [
            slot,
          ]);
          expect(parseLsn(row!.r)).toBeLessThanOrEqual(held.result.startLsn);
          expect(held.record.objects.map((o) => o.name)).toEqual(['base.tar', 'pg_wal.tar', 'backup_manifest']);
          expect(tarNames(await readAll(await repo.openBackupObject(held.record.id, 'pg_wal.tar')))).toContain(
            segmentFileNameAt(held.result.endTimeline, held.result.endLsn),
          );
          await primary().sql('select pg_drop_replication_slot($1)', [slot]);
          expect((await repo.listBackups()).map((b) => b.id)).toEqual([outcome.record.id, held.record.id]);
          expect(await slotsAfterSettling(primary())).toEqual([]);
          expect(await target.leftovers()).toEqual([]);
        });

        it('a held lock refuses the backup before the server is contacted', async () => {
          const target = await make(`lib${major}`);
          await using repo = await target.open();
          const lock = await repo.lock('expire');
          try {
            // Port 1: were the server contacted, this would be a connection error instead.
            const err = await backupToRepository(repo, { connection: { ...trustTcp(primary()), port: 1 } }).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(RepositoryLockedError);
            expect(err).toMatchObject({ holder: { operation: 'expire', pid: process.pid } });
          } finally {
            await lock.release();
          }
          expect(await keysOf(repo)).toEqual([]);
        });

        if (major >= 17) {
          it('an incremental backup against the newest backup of the catalog', async () => {
            const target = await make(`lib${major}`);
            await using repo = await target.open();
            // WAL summaries since before the full backup: the server's condition for an incremental one.
            const summarized = await startCluster({ major, ssl: false, conf: { summarize_wal: 'on' } });
            onTestFinished(() => summarized.destroy());
            const full = await backupToRepository(repo, { connection: trustTcp(summarized), checkpoint: 'fast' });
            expect(full.skipped).toBe(false);
            await summarized.sql('create table inc_t as select generate_series(1, 1000) as i');
            const inc = await backupToRepository(repo, { connection: trustTcp(summarized), checkpoint: 'fast', incrementalFrom: 'latest' });
            if (full.skipped || inc.skipped) throw new Error('not skipped');
            expect(inc.record).toMatchObject({ type: 'incremental', parent: full.record.id });
            expect(inc.record.id.endsWith('I')).toBe(true);
            expect(inc.record.originalSize).toBeLessThan(full.record.originalSize);
            expect((await repo.listBackups()).map((b) => [b.id, b.type, b.parent])).toEqual([
              [full.record.id, 'full', null],
              [inc.record.id, 'incremental', full.record.id],
            ]);
          });
        }
      });
    }

    describe('s3 (Swift) through a fault-injecting proxy', () => {
      const partRequest = (n: number) => new RegExp(`[?&]partNumber=${n}(&|$)`);

      it('transient failures (503, reset mid-part, 500, SlowDown) are retried: the backup completes', async () => {
        seq += 1;
        const proxy = await startFaultProxy(s3.swift.endpoint);
        onTestFinished(() => proxy.close());
        await using repo = await openRepository(s3.address(`faults${major}-${seq}`, proxy.endpoint), {
          s3: { credentials: s3.swift.credentials },
        });
        proxy.inject({ method: 'POST', url: /[?&]uploads(=|&|$)/, action: { kind: 'status', status: 503, code: 'ServiceUnavailable' } });
        proxy.inject({ method: 'PUT', url: partRequest(1), action: { kind: 'reset', afterBytes: 1024 * 1024 } });
        proxy.inject({ method: 'PUT', url: partRequest(2), action: { kind: 'status', status: 500, code: 'InternalError' } });
        proxy.inject({ method: 'PUT', url: /\/catalog\//, action: { kind: 'status', status: 503, code: 'SlowDown' } });
        const outcome = await backupToRepository(repo, { connection: trustTcp(primary()), checkpoint: 'fast' });
        expect(proxy.hits()).toBe(4);
        if (outcome.skipped) throw new Error('not skipped');
        expect((await repo.listBackups()).map((b) => b.id)).toEqual([outcome.record.id]);
        expect(outcome.record.objects.map((o) => o.name).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
      });

      for (const [what, url, named] of [
        ['a data upload', partRequest(2), undefined],
        ['the WAL upload, fed while the WAL arrives,', /pg_wal\.tar/, 'pg_wal.tar'],
      ] as const) {
        it(`failures of ${what} past the retries fail the backup cleanly: no record, no object, no pending upload`, async () => {
          seq += 1;
          const prefix = `faults${major}-${seq}`;
          const proxy = await startFaultProxy(s3.swift.endpoint);
          onTestFinished(() => proxy.close());
          await using repo = await openRepository(s3.address(prefix, proxy.endpoint), {
            s3: { credentials: s3.swift.credentials, maxAttempts: 2 },
          });
          proxy.inject({ method: 'PUT', url, times: 1000, action: { kind: 'status', status: 500, code: 'InternalError' } });
          const err = await backupToRepository(repo, { connection: trustTcp(primary()), checkpoint: 'fast' }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(StorageError);
          expect(err).toMatchObject({ operation: 'put', statusCode: 500 });
          if (named) expect((err as Error).message).toContain(named);
          expect(await repo.listBackups()).toEqual([]);
          const [failure] = await listBackupFailures(repo);
          expect(failure?.error).toMatchObject({ code: 'ERR_PGBB_STORAGE' });
          expect(await keysOf(repo)).toEqual([`failures/${failure!.id}.json`, 'repository.json']);
          const pending = await admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/` }));
          expect(pending.Uploads ?? []).toEqual([]);
          expect(await slotsAfterSettling(primary())).toEqual([]);
        });
      }
    });
  },
  { ssl: false },
);
