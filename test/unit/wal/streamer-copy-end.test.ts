// The race behind a flaky integration failure (PostgreSQL 18, Node 24): walsender answers
// START_REPLICATION at a removed position with CopyBothResponse and then an ErrorResponse. The
// connection leaves copy-both as soon as its iterator reads the ErrorResponse, but throws the
// ServerError only after ReadyForQuery; a status-update timer firing in between got a StateError
// from sendCopyData(), which used to fail the stream and mask the server's error.
import { describe, expect, it } from 'vitest';
import { ConnectionClosedError, ServerError, StateError } from '../../../src/errors.js';
import { lsn } from '../../../src/lsn.js';
import { startWalStream } from '../../../src/wal/streamer.js';
import { FakeConnection, MemorySink, copyBoth, type Script } from './fake-replication.js';

const SEG = 1024 * 1024;

/** A connection whose sends fail with `sendError()` once `copyEnded` is set, as the real one does. */
class EndingConnection extends FakeConnection {
  copyEnded = false;
  attemptsAfterEnd = 0;
  /** Resolves at the first send attempted after the COPY ended. */
  readonly attemptedAfterEnd: Promise<void>;
  #attempted!: () => void;
  constructor(
    scripts: Script[],
    readonly sendError: () => Error,
  ) {
    super(scripts);
    this.attemptedAfterEnd = new Promise((r) => {
      this.#attempted = r;
    });
  }

  #failSend(): never {
    this.attemptsAfterEnd++;
    this.#attempted();
    throw this.sendError();
  }

  override sendCopyData(payload: Buffer): boolean {
    if (this.copyEnded) this.#failSend();
    return super.sendCopyData(payload);
  }

  override sendCopyDone(): void {
    if (this.copyEnded) this.#failSend();
    super.sendCopyDone();
  }
}

const removed = (): ServerError =>
  new ServerError({
    severity: 'ERROR',
    sqlState: '58P01',
    message: 'requested WAL segment 000000010000000000000001 has already been removed',
  });

/**
 * CopyBothResponse, then the ErrorResponse is read (the COPY ends), and ReadyForQuery comes only after
 * the status-update timer tried to send in between.
 */
function errorAfterCopyBoth(end: () => Error = removed): Script {
  return async function* (conn) {
    yield copyBoth;
    const ending = conn as EndingConnection;
    ending.copyEnded = true;
    await ending.attemptedAfterEnd;
    throw end();
  };
}

function start(conn: FakeConnection, statusIntervalMs: number) {
  return startWalStream({
    connection: conn.api,
    startLsn: lsn(0x1000000n),
    endLsn: lsn(0x1000001n),
    timeline: 1,
    segmentSize: SEG,
    statusIntervalMs,
    sink: new MemorySink(),
  });
}

describe('startWalStream when the COPY ends under a status update', () => {
  it.each([
    ['StateError', () => new StateError('sendCopyData() is not allowed while the connection is busy')],
    ['ConnectionClosedError', () => new ConnectionClosedError('the connection is closed')],
  ])('reports the server error, not the %s of a status update sent in between', async (_name, sendError) => {
    const conn = new EndingConnection([errorAfterCopyBoth()], sendError);
    // The first status update is due at once (receivelog.c sends one as the COPY starts).
    const err = await start(conn, 5).done.catch((e: unknown) => e);
    expect(conn.attemptsAfterEnd).toBeGreaterThan(0); // the race did happen
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER', message: expect.stringMatching(/already been removed/) });
    expect((err as Error).message).toMatch(/replication slot/); // the streamer's advice is kept
  });

  it('still fails on a send error that does not mean the COPY ended', async () => {
    const conn = new EndingConnection([errorAfterCopyBoth()], () => new TypeError('a bug in the encoder'));
    const err = await start(conn, 5).done.catch((e: unknown) => e);
    expect(conn.attemptsAfterEnd).toBeGreaterThan(0);
    expect(err).toMatchObject({ code: 'ERR_PGBB_WAL_STREAM', message: expect.stringMatching(/a bug in the encoder/) });
  });
});
