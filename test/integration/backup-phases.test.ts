// Phases against real servers: with a spread checkpoint after a large update, 'checkpoint'
// is reported before startBackup() resolves (the wait pg_basebackup announces with "waiting
// for checkpoint to complete"), then 'data' with the start position, 'wal', 'manifest' and
// 'done'; progress carries the phase and the streamed WAL. And runBackup into a custom
// BackupSink with streamed WAL: every archive, pg_wal.tar and the manifest reach the sink, and
// the result restores.
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  runBackup,
  startBackup,
  type ArchiveInfo,
  type BackupPhase,
  type BackupPhaseEvent,
  type BackupProgress,
  type BackupSink,
} from '../../src/index.js';
import { makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { expectRecovered, restoreTar, tarMembers } from './backup-helpers.js';

const ROWS = 200_000;

/** A sink of our own: each archive into a file of `dir`, the manifest beside them. */
class FilesSink implements BackupSink {
  readonly calls: string[] = [];
  constructor(private readonly dir: string) {}
  async writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>): Promise<void> {
    this.calls.push(`archive ${info.name}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await pipeline(Readable.from(bytes), createWriteStream(join(this.dir, info.name), { mode: 0o600 }));
  }
  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer): Promise<void> {
    this.calls.push('manifest');
    const parts: Buffer[] = [];
    if (Buffer.isBuffer(bytes)) parts.push(bytes);
    else for await (const b of bytes) parts.push(Buffer.from(b));
    await writeFile(join(this.dir, 'backup_manifest'), Buffer.concat(parts), { mode: 0o600 });
  }
  async finish(): Promise<void> {
    this.calls.push('finish');
  }
  async cleanup(): Promise<void> {
    this.calls.push('cleanup');
  }
}

describe.each(testMajors())('PostgreSQL %i', (major) => {
  let primary: Cluster;
  beforeAll(async () => {
    // A spread checkpoint is paced over checkpoint_timeout * checkpoint_completion_target: keep it
    // to a few seconds (30 s is the shortest timeout the server takes).
    primary = await startCluster({ major, ssl: false, conf: { checkpoint_timeout: '30s', checkpoint_completion_target: '0.1' } });
    await primary.sql('create table big(id int primary key, payload text)');
    await primary.sql(`insert into big select g, repeat('a', 200) from generate_series(1, ${ROWS}) g`);
    await primary.sql('checkpoint');
  });
  afterAll(async () => {
    await primary?.destroy();
  });

  it("a spread checkpoint after a large update: 'checkpoint' before startBackup resolves, then data, wal, manifest, done", async () => {
    // Dirty every page of the table, so the backup's checkpoint has real work to spread.
    await primary.sql("update big set payload = repeat('b', 200)");
    const order: string[] = [];
    const events: BackupPhaseEvent[] = [];
    const session = await startBackup({
      connection: primary.connectionString(),
      checkpoint: 'spread',
      progressIntervalMs: 0,
      onPhase: (e) => {
        events.push(e);
        order.push(e.phase);
      },
    });
    order.push('resolved');
    const progress: BackupProgress[] = [];
    session.on('progress', (p) => progress.push(p));
    expect(order).toEqual(['checkpoint', 'data', 'resolved']);
    expect(events[0]).toEqual({ phase: 'checkpoint', checkpoint: 'spread' });
    expect(events[1]).toEqual({ phase: 'data', checkpoint: 'spread', startLsn: session.startLsn, timeline: session.startTimeline });
    expect(session.phase).toBe('data');
    const names: string[] = [];
    for await (const archive of session.archives()) {
      names.push(archive.name);
      await archive.skip();
    }
    const result = await session.result();
    expect(names).toEqual(['base.tar', 'pg_wal.tar']);
    expect(order).toEqual(['checkpoint', 'data', 'resolved', 'wal', 'manifest', 'done']);
    // Progress follows the phases, never backwards, and ends finished in 'done' with the WAL counted.
    const rank = (p: BackupPhase): number => ['checkpoint', 'data', 'wal', 'manifest', 'done'].indexOf(p);
    expect(progress.every((p, i) => i === 0 || rank(p.phase) >= rank(progress[i - 1]!.phase))).toBe(true);
    expect(progress.some((p) => p.phase === 'wal')).toBe(true);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ finished: true, phase: 'done' });
    expect(last.walBytesDone).toBeGreaterThan(0);
    const { phases, durationMs } = result.stats;
    for (const v of [...Object.values(phases), durationMs]) expect(Number.isInteger(v), String(v)).toBe(true);
    expect(phases.checkpointMs + phases.dataMs + phases.walMs + phases.manifestMs).toBeLessThanOrEqual(durationMs + 4);
  }, 120_000);

  it('runBackup into a custom sink with streamed WAL: archives, pg_wal.tar and the manifest arrive, and it restores', async () => {
    await primary.sql('create table marker(v text)');
    await primary.sql("insert into marker values ('before the backup')");
    const dir = join(await makeTempDir('sink'), 'out');
    const sink = new FilesSink(dir);
    const phases: BackupPhase[] = [];
    const progress: BackupProgress[] = [];
    const result = await runBackup({
      connection: primary.connectionString(),
      checkpoint: 'fast',
      output: { sink },
      onPhase: (e) => phases.push(e.phase),
      onProgress: (p) => progress.push(p),
    });
    // Progress carries the run's phase: the final report comes before the manifest is written.
    expect(progress.at(-1)).toMatchObject({ finished: true, phase: 'manifest' });
    expect(progress.some((p) => p.phase === 'done')).toBe(false);
    expect(sink.calls).toEqual(['archive base.tar', 'archive pg_wal.tar', 'manifest', 'finish']);
    expect(phases).toEqual(['checkpoint', 'data', 'wal', 'manifest', 'done']);
    expect(result.outputs).toEqual([]);
    for (const v of [...Object.values(result.stats.phases), result.stats.durationMs]) expect(Number.isInteger(v)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
    expect((await tarMembers(join(dir, 'pg_wal.tar'))).some((n) => /^[0-9A-F]{24}$/.test(n))).toBe(true);

    const dataDir = join(await makeTempDir('sink-restore'), 'data');
    await restoreTar(dir, dataDir, await makeTempDir('sink-ts'));
    const restored = await startCluster({ major, dataDir });
    try {
      await expectRecovered(restored);
      expect(await restored.sql('select v from marker')).toEqual([{ v: 'before the backup' }]);
      const [n] = await restored.sql<{ n: number }>('select count(*)::int n from big');
      expect(n!.n).toBe(ROWS);
    } finally {
      await restored.destroy();
    }
  }, 180_000);

  it('a custom sink refuses client-side compression and writeRecoveryConf before connecting', async () => {
    const sink = new FilesSink(join(await makeTempDir('sink-refused'), 'out'));
    await expect(runBackup({ connection: primary.connectionString(), output: { sink }, compression: 'gzip' })).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
    await expect(runBackup({ connection: primary.connectionString(), output: { sink }, writeRecoveryConf: true })).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
    expect(sink.calls).toEqual([]);
  });
});
