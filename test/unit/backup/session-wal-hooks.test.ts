// The session's side of WAL sinks: a caller's sink is prepared (with the server's group access)
// before BASE_BACKUP is sent, and the spooled pg_wal.tar is fsynced before a flush position
// that moves a permanent slot is reported.
import { EventEmitter } from 'node:events';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupDeps, BackupWalStreamParams } from '../../../src/backup/deps.js';
import { startBackupWith } from '../../../src/backup/session.js';
import type { ReplicationConnectionApi } from '../../../src/connection/types.js';
import { IoError, ServerError, WalStreamError } from '../../../src/errors.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalServerSettings, WalSink } from '../../../src/wal/sink.js';
import { settle } from '../helpers/deferred.js';
import { modernResponse } from './fixtures.js';

class ScriptedConnection extends EventEmitter implements ReplicationConnectionApi {
  state = 'ready' as const;
  serverVersionNum = 170002;
  serverMajor = 17;
  parameters = new Map<string, string>();
  options = {} as ReplicationConnectionApi['options'];
  commands: string[] = [];
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
    this.log.push(sql.split(' ')[0]!);
    const messages = this.messages;
    return (async function* () {
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
const emptyTar = Buffer.alloc(1024);

function deps(log: string[], mode: string, wal: (p: BackupWalStreamParams) => Promise<void>): BackupDeps {
  let n = 0;
  return {
    async connect() {
      n++;
      log.push(`connect ${n}`);
      return new ScriptedConnection(
        4000 + n,
        n === 1 ? modernResponse([{ oid: null, location: null, sizeKb: 1, tar: emptyTar }]) : [],
        log,
      );
    },
    async identifySystem() {
      return { systemId: '7300000000000000001', timeline: 1 };
    },
    async show(_c, name) {
      return name === 'wal_segment_size' ? '1MB' : mode;
    },
    async createPhysicalSlot(_c, name) {
      log.push(`create slot ${name}`);
    },
    async dropSlot(_c, name) {
      log.push(`drop slot ${name}`);
    },
    startWalStream(p) {
      let setEnd!: () => void;
      const ended = new Promise<void>((r) => {
        setEnd = r;
      });
      const done = (async () => {
        await wal(p);
        await ended;
        await p.sink.finish();
      })();
      return { setEndLsn: () => setEnd(), done };
    },
  };
}

/** Writes one complete segment through the session's sink. */
async function oneSegment(p: BackupWalStreamParams): Promise<void> {
  const target: WalSegmentTarget = { name: '000000010000000000000002', segmentSize: SEG, startOffset: 0 };
  await p.sink.openSegment(target);
  await p.sink.write(Buffer.alloc(SEG, 1));
  await p.sink.flush();
  await p.sink.closeSegment('complete');
}

class RecordingSink implements WalSink {
  constructor(private readonly log: string[]) {}
  async prepare(s: WalServerSettings): Promise<void> {
    this.log.push(`prepare ${s.groupReadable} ${s.segmentSize}`);
  }
  async openSegment(): Promise<void> {}
  async write(): Promise<void> {}
  async flush(): Promise<void> {}
  async closeSegment(_m: WalSegmentCloseMode): Promise<void> {}
  async writeHistoryFile(): Promise<void> {}
  async finish(): Promise<void> {}
  async abort(): Promise<void> {}
}

describe('backup session and WAL sinks', () => {
  it('prepares a caller-supplied sink with the server group access before any WAL connection or BASE_BACKUP', async () => {
    for (const [mode, group] of [
      ['0750', true],
      ['0700', false],
    ] as const) {
      const log: string[] = [];
      const session = await startBackupWith(
        deps(log, mode, async () => {}),
        { walSink: new RecordingSink(log) },
      );
      await session.result();
      expect(log).toEqual(['connect 1', `prepare ${group} ${SEG}`, 'connect 2', 'create slot pg_basebackup_4002', 'BASE_BACKUP']);
    }
  });

  it('a sink whose prepare() fails fails startBackup with its error; no slot is created', async () => {
    const log: string[] = [];
    const sink = new RecordingSink(log);
    sink.prepare = async () => {
      throw new IoError('could not create directory "/x": EACCES', { path: '/x' });
    };
    await expect(
      startBackupWith(
        deps(log, '0700', async () => {}),
        { walSink: sink },
      ),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_IO' });
    expect(log).toEqual(['connect 1']);
  });

  it('the spooled pg_wal.tar is fsynced on flush with a permanent slot, not with a temporary one', async () => {
    const probe = await open(join(tmpdir(), `pgbb-proto-${process.pid}`), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    // Count the fsyncs of every FileHandle (the spool is one).
    const original = proto.sync;
    let syncs = 0;
    proto.sync = function (this: unknown) {
      syncs++;
      return original.call(this);
    };
    try {
      for (const [slot, expectSync] of [
        [{ slot: 'keep', createSlot: true }, true],
        [{}, false],
        [{ slot: 'existing' }, true],
      ] as const) {
        syncs = 0;
        let syncsBeforeClose = -1;
        const session = await startBackupWith(
          deps([], '0700', async (p) => {
            await oneSegment(p);
            syncsBeforeClose = syncs;
          }),
          { ...slot },
        );
        const names: string[] = [];
        for await (const a of session.archives()) names.push(a.name);
        await session.result();
        expect(names).toEqual(['base.tar', 'pg_wal.tar']);
        // flush() and closeSegment() each fsync before returning (the streamer reports after them).
        if (expectSync) expect(syncsBeforeClose).toBeGreaterThanOrEqual(2);
        else expect(syncsBeforeClose).toBe(0);
      }
    } finally {
      proto.sync = original;
    }
  });

  it('a WAL walsender terminated or its connection lost is a WalStreamError; other WAL errors pass unchanged', async () => {
    const fatal = new ServerError({
      severity: 'FATAL',
      severityCode: 'FATAL',
      sqlState: '57P01',
      message: 'terminating connection due to administrator command',
    });
    const noSlot = new ServerError({
      severity: 'ERROR',
      severityCode: 'ERROR',
      sqlState: '42704',
      message: 'replication slot "x" does not exist',
    });
    const full = new IoError('could not write WAL file "/x": ENOSPC', { path: '/x', syscallCode: 'ENOSPC' });
    for (const [thrown, check] of [
      [
        fatal,
        (e: unknown) =>
          e instanceof WalStreamError &&
          e.cause === fatal &&
          e.message.startsWith('the WAL streaming connection of the backup failed (FATAL: terminating connection'),
      ],
      [noSlot, (e: unknown) => e === noSlot],
      [full, (e: unknown) => e === full],
    ] as const) {
      // The WAL failure may surface while the session starts (on a busy machine) or from result().
      let session: Awaited<ReturnType<typeof startBackupWith>> | undefined;
      const err = await startBackupWith(
        deps([], '0700', async () => {
          await settle(); // on a later turn, as a socket error would
          throw thrown;
        }),
        {},
      )
        .then((s) => {
          session = s;
          return s.result();
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(check(err), String(err)).toBe(true);
      if (session) expect(session.state).toBe('failed');
    }
  });

  it('discardCreatedSlot() drops a slot made with createSlot after success, and nothing otherwise', async () => {
    const log: string[] = [];
    const session = await startBackupWith(deps(log, '0700', oneSegment), { slot: 'made', createSlot: true });
    await session.discardCreatedSlot();
    expect(log).not.toContain('drop slot made');
    await session.result();
    expect(log).not.toContain('drop slot made');
    await session.discardCreatedSlot();
    await session.discardCreatedSlot();
    expect(log.filter((l) => l === 'drop slot made')).toHaveLength(1);

    const other: string[] = [];
    const plain = await startBackupWith(deps(other, '0700', oneSegment), { slot: 'theirs' });
    await plain.result();
    await plain.discardCreatedSlot();
    expect(other.some((l) => l.startsWith('drop slot'))).toBe(false);
  });
});
