/**
 * The repository layer on real storage, a local directory and S3 on Swift: the identity recorded on first
 * use and another cluster refused, records committed and listed, uncommitted objects found, and the lock
 * (one holder among concurrent contenders, refusal naming the holder, renewal, takeover once expired or
 * once its holder's process is gone).
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { RepositoryError, RepositoryLockedError, RepositoryMismatchError } from '../../src/errors.js';
import { parseLsn } from '../../src/lsn.js';
import { encodeRecord } from '../../src/repository/json.js';
import { acquireLock } from '../../src/repository/lock.js';
import type { BackupRecord } from '../../src/repository/record.js';
import type { Repository } from '../../src/repository/repository.js';
import { repositoryTargets, swiftBucketForFile } from '../harness/repositories.js';

const s3 = swiftBucketForFile('pgbb-repository');
/** Each call opens a new, empty repository. */
const backends = repositoryTargets(s3).map(
  ([name, make]) => [name, async (o: { lockLeaseMs?: number } = {}) => (await make('repo')).open(o)] as const,
);

/** A lease of the repository lock held for a backup by `holder`, as a process on another host or a gone one left it. */
const lease = (holder: string, host: string, pid: number, expiresAt: string) =>
  encodeRecord({ kind: 'lease', holder, operation: 'backup', hostname: host, pid, ticket: 1, expiresAt });

const failure = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );

function record(id: string, over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    id,
    type: 'full',
    parent: null,
    status: 'complete',
    startTime: new Date('2026-12-06T03:38:00.123Z'),
    endTime: new Date('2026-12-06T03:39:00.000Z'),
    startLsn: parseLsn('0/2000028'),
    endLsn: parseLsn('0/2000138'),
    timeline: 1,
    endTimeline: 1,
    postgresVersion: '17.2',
    systemIdentifier: '7443990000000000001',
    originalSize: 100,
    storedSize: 100,
    compression: 'none',
    durationMs: 1,
    wal: 'stream',
    label: 'l',
    objects: [{ name: 'base.tar', size: 100, sha256: 'b'.repeat(64) }],
    ...over,
  };
}

describe.each(backends)('repository on %s', (_name, open) => {
  it('records the cluster on first use and refuses another cluster or major version', async () => {
    await using repo = await open();
    expect(await repo.info()).toBeUndefined();
    const mine = { systemIdentifier: '7443990000000000001', majorVersion: 17 };
    const info = await repo.claim(mine);
    expect(info).toMatchObject({ formatVersion: 1, cluster: mine });
    expect((await repo.info())?.cluster).toEqual(mine);
    expect(await repo.claim(mine)).toMatchObject({ cluster: mine });
    const other = await failure(repo.claim({ systemIdentifier: '7443990000000000002', majorVersion: 17 }));
    expect(other).toBeInstanceOf(RepositoryMismatchError);
    expect(other).toMatchObject({ code: 'ERR_PGBB_REPOSITORY_MISMATCH', expected: mine });
    expect(await failure(repo.claim({ ...mine, majorVersion: 18 }))).toBeInstanceOf(RepositoryMismatchError);
    // A refused cluster changes nothing.
    expect((await repo.info())?.cluster).toEqual(mine);
  });

  it('a backup exists once its record is committed; objects without one are uncommitted', async () => {
    await using repo = await open();
    const a = '20261206-033800.123F';
    const b = '20261206-040000.000F';
    await repo.storage.put(`backups/${a}/base.tar`, Buffer.from('a'));
    await repo.storage.put(`backups/${b}/base.tar`, Buffer.from('b'));
    await repo.storage.put(`backups/${b}/backup_manifest`, Buffer.from('{}'));
    expect(await repo.listBackups()).toEqual([]);
    expect((await repo.uncommittedBackups()).sort()).toEqual([a, b]);
    await repo.commitBackup(record(b));
    await repo.commitBackup(record(a));
    expect((await repo.listBackups()).map((r) => r.id)).toEqual([a, b]);
    expect(await repo.getBackup(b)).toEqual(record(b));
    expect(await repo.uncommittedBackups()).toEqual([]);
    const missing = await failure(repo.getBackup('20990101-000000.000F'));
    expect(missing).toBeInstanceOf(RepositoryError);
    expect((missing as Error).message).toMatch(/has no backup "20990101-000000.000F"/);
    expect(await failure(repo.getBackup('../x'))).toBeInstanceOf(RepositoryError);
    await repo.deleteBackupObjects(b);
    const left: string[] = [];
    for await (const o of repo.storage.list({ prefix: 'backups/' })) left.push(o.key);
    expect(left).toEqual([`backups/${a}/base.tar`]);
  });

  it('a newer repository format is refused before its records are read', async () => {
    await using repo = await open();
    await repo.storage.put(
      'repository.json',
      encodeRecord({ formatVersion: 2, systemIdentifier: '1', majorVersion: 17, createdAt: new Date().toISOString() }),
    );
    expect(((await failure(repo.listBackups())) as Error).message).toMatch(/format version 2/);
  });

  it('one holder at a time: concurrent contenders, exactly one wins; the others are told who holds it', async () => {
    await using repo = await open();
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => repo.lock(i === 0 ? 'backup' : 'expire')));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    for (const r of lost) {
      expect(r.reason).toBeInstanceOf(RepositoryLockedError);
      expect(r.reason).toMatchObject({ code: 'ERR_PGBB_REPOSITORY_LOCKED', holder: { hostname: hostname(), pid: process.pid } });
    }
    const lock = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Repository['lock']>>>).value;
    // The losers left nothing behind: the only object is the holder's lease.
    const keys: string[] = [];
    for await (const o of repo.storage.list({ prefix: 'locks/' })) keys.push(o.key);
    expect(keys).toEqual([`locks/repository/lease-${lock.holder.holder}.json`]);
    await lock.release();
    await lock.release();
    const again = await repo.lock('expire');
    await again.release();
  });

  it('the lease is renewed while held, and taken over once it expired', async () => {
    await using repo = await open({ lockLeaseMs: 1500 });
    const lock = await repo.lock('backup');
    const renewed = new Promise<void>((resolve) => {
      // Three renewals later, the first lease's expiry is long past: a contender must still be refused.
      setTimeout(resolve, 3200);
    });
    await renewed;
    expect(lock.signal.aborted).toBe(false);
    expect(await failure(repo.lock('expire'))).toBeInstanceOf(RepositoryLockedError);
    await lock.release();

    // A holder on another host that stopped renewing: its lease is taken over once expired.
    await repo.storage.put(
      'locks/repository/lease-deadbeefdeadbeef.json',
      lease('deadbeefdeadbeef', 'elsewhere.invalid', 1, new Date(Date.now() + 60_000).toISOString()),
    );
    expect(await failure(repo.lock('expire'))).toMatchObject({ holder: { hostname: 'elsewhere.invalid', operation: 'backup' } });
    await repo.storage.put(
      'locks/repository/lease-deadbeefdeadbeef.json',
      lease('deadbeefdeadbeef', 'elsewhere.invalid', 1, new Date(Date.now() - 1).toISOString()),
    );
    const taken = await repo.lock('expire');
    expect(await repo.storage.stat('locks/repository/lease-deadbeefdeadbeef.json')).toBeUndefined();
    await taken.release();
  });

  it('a lease written on this host by a process that is gone is taken over at once', async () => {
    await using repo = await open();
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid as number;
    await new Promise((resolve) => child.once('exit', resolve));
    await repo.storage.put(
      'locks/repository/lease-0123456789abcdef.json',
      lease('0123456789abcdef', hostname(), pid, new Date(Date.now() + 60_000).toISOString()),
    );
    const lock = await acquireLock(repo.storage, 'repository', { operation: 'expire' });
    expect(await repo.storage.stat('locks/repository/lease-0123456789abcdef.json')).toBeUndefined();
    await lock.release();
  });
});
