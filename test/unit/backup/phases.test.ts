// Backup phases: the clock (order, durations in whole milliseconds), the progress fields that
// follow them (phase, walBytesDone, the spooled pg_wal.tar handed over), and the order in which a
// session driven by a scripted connection reports them: 'checkpoint' and 'data' before
// startBackup() resolves, then 'wal' (streamed WAL only), 'manifest' (with a manifest), 'done'.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { BackupDeps } from '../../../src/backup/deps.js';
import type { BackupPhase, BackupPhaseEvent, BackupProgress } from '../../../src/backup/events.js';
import type { BaseBackupOptions } from '../../../src/backup/options.js';
import { PhaseClock } from '../../../src/backup/phases.js';
import { ProgressTracker } from '../../../src/backup/progress.js';
import { startBackupWith } from '../../../src/backup/session.js';
import type { ReplicationConnectionApi } from '../../../src/connection/types.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { modernResponse } from './fixtures.js';

describe('PhaseClock', () => {
  it('moves forward only, skipped phases count 0, durations are whole milliseconds', () => {
    let now = 10;
    const clock = new PhaseClock(() => now);
    expect(clock.phase).toBeUndefined();
    now = 12.4;
    expect(clock.enter('checkpoint')).toBe(true);
    now = 1012.9;
    expect(clock.enter('data')).toBe(true);
    expect(clock.enter('checkpoint')).toBe(false);
    expect(clock.enter('data')).toBe(false);
    now = 1500.2;
    expect(clock.enter('manifest')).toBe(true); // 'wal' skipped
    expect(clock.enter('wal')).toBe(false);
    expect(clock.phase).toBe('manifest');
    now = 1600.7;
    expect(clock.durations()).toEqual({ checkpointMs: 1001, dataMs: 487, walMs: 0, manifestMs: 101 });
    expect(clock.enter('done')).toBe(true);
    now = 99_999;
    expect(clock.durations()).toEqual({ checkpointMs: 1001, dataMs: 487, walMs: 0, manifestMs: 101 });
    expect(clock.totalMs()).toBe(1591);
    for (const v of [...Object.values(clock.durations()), clock.totalMs()]) expect(Number.isInteger(v)).toBe(true);
  });
});

describe('ProgressTracker phases and WAL', () => {
  it('carries the phase and WAL bytes; the spooled pg_wal.tar is an archive that counts in neither total', () => {
    const t = new ProgressTracker(0, () => 0);
    t.setTablespaces([1]);
    expect(t.snapshot()).toMatchObject({ phase: 'checkpoint', walBytesDone: 0 });
    t.setPhase('data');
    t.startArchive('base.tar', 0);
    t.addBytes(1024);
    t.addWalBytes(300);
    t.endArchive();
    t.setPhase('wal');
    t.endData();
    expect(t.snapshot()).toMatchObject({ phase: 'wal', bytesDone: 1024, totalBytes: 1024, walBytesDone: 300, finished: false });
    t.addWalBytes(200);
    t.startWalArchive('pg_wal.tar', 1);
    t.addWalArchiveBytes(4096);
    expect(t.snapshot()).toMatchObject({
      walBytesDone: 500,
      bytesDone: 1024,
      archivesDone: 1,
      archive: { name: 'pg_wal.tar', index: 1, bytesDone: 4096 },
    });
    t.endWalArchive();
    t.finish();
    t.setPhase('done');
    expect(t.snapshot()).toMatchObject({ phase: 'done', archive: undefined, finished: true, totalBytes: 1024 });
  });
});

// --- a scripted server ------------------------------------------------------------------------
class ScriptedConnection extends EventEmitter implements ReplicationConnectionApi {
  state = 'ready' as const;
  serverVersionNum = 170002;
  serverMajor = 17;
  parameters = new Map<string, string>();
  options = {} as ReplicationConnectionApi['options'];
  constructor(
    readonly backendPid: number,
    private readonly messages: StreamMessage[],
    private readonly log: string[],
  ) {
    super();
  }
  async query(sql: string): Promise<never> {
    throw new Error(`unexpected query ${sql}`);
  }
  stream(sql: string): AsyncIterableIterator<StreamMessage> {
    const { messages, log } = this;
    return (async function* () {
      // The command goes out with the first pull.
      log.push(sql.split(' ')[0]!);
      for (const m of messages) {
        await new Promise((r) => setImmediate(r));
        yield m;
      }
    })();
  }
  sendCopyData(): boolean {
    return true;
  }
  sendCopyDone(): void {}
  sendCopyFail(): void {}
  async drained(): Promise<void> {}
  async close(): Promise<void> {}
  destroy(): void {}
  async [Symbol.asyncDispose](): Promise<void> {}
}

const SEG = 1024 * 1024;
const MANIFEST = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}\n');

function deps(log: string[], manifest: boolean): BackupDeps {
  let n = 0;
  const response = modernResponse(
    [{ oid: null, location: null, sizeKb: 1, tar: Buffer.alloc(1024) }],
    manifest ? { manifest: MANIFEST } : {},
  );
  return {
    async connect() {
      n++;
      return new ScriptedConnection(4000 + n, n === 1 ? response : [], log);
    },
    async identifySystem() {
      return { systemId: '7300000000000000001', timeline: 1 };
    },
    async show(_c, name) {
      return name === 'wal_segment_size' ? '1MB' : '0700';
    },
    async createPhysicalSlot() {},
    async dropSlot() {},
    startWalStream(p) {
      let setEnd!: () => void;
      const ended = new Promise<void>((r) => {
        setEnd = r;
      });
      const done = (async () => {
        await p.sink.openSegment({ name: '000000010000000000000002', segmentSize: SEG, startOffset: 0 });
        await p.sink.write(Buffer.alloc(SEG / 2, 1));
        await ended;
        // The stream catches up with the end position after the archives: the 'wal' phase.
        log.push('wal catching up');
        await p.sink.write(Buffer.alloc(SEG / 2, 2));
        await p.sink.closeSegment('complete');
        await p.sink.finish();
      })();
      return { setEndLsn: () => setEnd(), done };
    },
  };
}

async function run(o: BaseBackupOptions, manifest = true) {
  const log: string[] = [];
  const events: BackupPhaseEvent[] = [];
  const progress: BackupProgress[] = [];
  const session = await startBackupWith(deps(log, manifest), {
    progressIntervalMs: 0,
    ...o,
    onPhase: (e) => {
      events.push(e);
      log.push(`phase ${e.phase}`);
    },
  });
  log.push('resolved');
  session.on('progress', (p) => progress.push(p));
  const phaseEvents: BackupPhase[] = [];
  session.on('phase', (e) => phaseEvents.push(e.phase));
  for await (const archive of session.archives()) {
    log.push(`archive ${archive.name}`);
    for await (const _chunk of archive.chunks()) {
      /* read */
    }
  }
  const result = await session.result();
  return { log, events, progress, phaseEvents, result, session };
}

describe('a scripted session reports its phases', () => {
  it("wal 'none': checkpoint once BASE_BACKUP is sent, data before startBackup resolves, then manifest and done", async () => {
    const { log, events, phaseEvents, result, session } = await run({ wal: 'none', checkpoint: 'spread' });
    expect(log).toEqual(['phase checkpoint', 'BASE_BACKUP', 'phase data', 'resolved', 'archive base.tar', 'phase manifest', 'phase done']);
    expect(events[0]).toEqual({ phase: 'checkpoint', checkpoint: 'spread' });
    expect(events[1]).toEqual({ phase: 'data', checkpoint: 'spread', startLsn: 0x2000028n, timeline: 1 });
    expect(phaseEvents).toEqual(['manifest', 'done']);
    expect(session.phase).toBe('done');
    const { phases, durationMs } = result.stats;
    expect(phases.walMs).toBe(0);
    for (const v of [...Object.values(phases), durationMs]) expect(Number.isInteger(v), String(v)).toBe(true);
  });

  it('without a manifest the manifest phase is skipped', async () => {
    const { log } = await run({ wal: 'fetch', manifest: false }, false);
    expect(log.filter((l) => l.startsWith('phase'))).toEqual(['phase checkpoint', 'phase data', 'phase done']);
  });

  it("wal 'stream': the wal phase covers the stream catching up and the spooled pg_wal.tar, with progress", async () => {
    const { log, progress, result } = await run({ checkpoint: 'fast' });
    expect(log).toEqual([
      'phase checkpoint',
      'BASE_BACKUP',
      'phase data',
      'resolved',
      'archive base.tar',
      'phase wal',
      'wal catching up',
      'archive pg_wal.tar',
      'phase manifest',
      'phase done',
    ]);
    // WAL bytes keep moving in the wal phase; the data total is exact once the end row came.
    const inWal = progress.filter((p) => p.phase === 'wal');
    expect(inWal.length).toBeGreaterThan(0);
    expect(inWal.at(-1)!.walBytesDone).toBe(SEG);
    expect(inWal.every((p) => p.totalBytes === p.bytesDone && !p.finished)).toBe(true);
    // The spooled pg_wal.tar being handed over is reported, up to its size.
    const handing = inWal.filter((p) => p.archive?.name === 'pg_wal.tar');
    expect(handing.length).toBeGreaterThan(0);
    expect(handing.at(-1)!.archive!.bytesDone).toBe(result.stats.walBytes);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ finished: true, phase: 'done', walBytesDone: SEG, archive: undefined });
    expect(result.stats.walBytes).toBe(512 + SEG + 512 + 1024);
  });
});
