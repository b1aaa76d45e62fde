// ResponsePump.release(): passed on to the connection (releaseHandedOut) only when every data view
// taken from the receive buffers has been handed out: not while a pull is under way.
import { describe, expect, it } from 'vitest';
import { FailureLatch } from '../../../src/backup/failure.js';
import { PENDING, ResponsePump } from '../../../src/backup/pump.js';
import { BaseBackupResponseParser } from '../../../src/backup/response.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { bytes, modernResponse } from './fixtures.js';

function fakeConnection(messages: StreamMessage[]) {
  let i = 0;
  const take = (): IteratorResult<StreamMessage> =>
    i < messages.length ? { done: false, value: messages[i++]! } : { done: true, value: undefined };
  const conn = {
    releases: 0,
    next: async (): Promise<IteratorResult<StreamMessage>> => take(),
    takeBuffered: (): IteratorResult<StreamMessage> | undefined => take(),
    releaseHandedOut: (): void => {
      conn.releases++;
    },
  };
  return conn;
}

function pumpOver(conn: ReturnType<typeof fakeConnection>): ResponsePump {
  const latch = new FailureLatch();
  return new ResponsePump(conn, new BaseBackupResponseParser(15), {
    latch,
    fail: (err) => latch.fail(err),
    observe: () => {},
  });
}

describe('ResponsePump.release', () => {
  const tar = bytes(4096);
  const messages = modernResponse([{ oid: null, location: null, sizeKb: 4, tar }], {
    split: (a) => [a.subarray(0, 1000), a.subarray(1000)],
  });

  it('passes the release on between pulls', async () => {
    const conn = fakeConnection(messages);
    const pump = pumpOver(conn);
    const data: Buffer[] = [];
    for (;;) {
      let ev = pump.nextNow();
      if (ev === PENDING) ev = await pump.next();
      if (ev === undefined) break;
      if (ev.type === 'archive-data') data.push(ev.data);
      pump.release();
    }
    expect(Buffer.concat(data).equals(tar)).toBe(true);
    expect(conn.releases).toBeGreaterThan(0);
  });

  it('ignores a release while a pull is under way', async () => {
    const conn = fakeConnection(messages);
    const pump = pumpOver(conn);
    const pending = pump.next();
    pump.release();
    expect(conn.releases).toBe(0);
    await pending;
    pump.release();
    expect(conn.releases).toBe(1);
  });
});
