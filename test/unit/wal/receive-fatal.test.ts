// receiveWal's reconnection policy against a scripted server: a lost connection is retried with a
// reconnecting event, unless reconnect is off; a server newer than supported ends the run at once.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { receiveWal, type ReceiveWalEvent } from '../../../src/index.js';
import { FakeServer } from '../connection/fake-server.js';

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const dir = () => join(mkdtempSync(join(tmpdir(), 'pgbb-rfatal-')), 'wal');

function options(port: number) {
  return {
    connection: { host: '127.0.0.1', port, user: 'u', sslmode: 'disable' as const, env: {} },
    directory: dir(),
    reconnectDelayMs: 10,
  };
}

async function drain(events: ReceiveWalEvent[], it: AsyncIterable<ReceiveWalEvent>): Promise<unknown> {
  try {
    for await (const ev of it) events.push(ev);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('receiveWal reconnection policy', () => {
  it('retries a dropped connection, then stops for good on a server newer than supported', async () => {
    server = await FakeServer.start();
    const events: ReceiveWalEvent[] = [];
    const done = drain(events, receiveWal(options(server.port)));
    const first = await server.accept();
    await first.next();
    first.socket.destroy();
    const second = await server.accept();
    await second.acceptTrust(190000);
    const err = await done;
    expect(err).toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
    expect((err as Error).message).toMatch(/PostgreSQL 19/);
    expect(events.map((e) => e.type)).toEqual(['reconnecting']);
    expect(events[0]).toMatchObject({ attempt: 1, delayMs: 10 });
    // No third attempt.
    await new Promise((r) => setImmediate(r));
    expect(server.all).toHaveLength(2);
  });

  it('does not retry with reconnect: false (pg_receivewal --no-loop)', async () => {
    server = await FakeServer.start();
    const events: ReceiveWalEvent[] = [];
    const done = drain(events, receiveWal({ ...options(server.port), reconnect: false }));
    const first = await server.accept();
    await first.next();
    first.socket.destroy();
    const err = await done;
    expect(err).toMatchObject({ code: expect.stringMatching(/ERR_PGBB_CONNECTION/) });
    expect(events).toEqual([]);
    expect(server.all).toHaveLength(1);
  });

  it('stops cleanly while waiting to reconnect', async () => {
    server = await FakeServer.start();
    const ac = new AbortController();
    const events: ReceiveWalEvent[] = [];
    const done = drain(events, receiveWal({ ...options(server.port), reconnectDelayMs: 60_000, signal: ac.signal }));
    const first = await server.accept();
    await first.next();
    first.socket.destroy();
    await expect.poll(() => events.length).toBe(1);
    ac.abort();
    expect(await done).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['reconnecting', 'stopped']);
    expect(events[1]).toMatchObject({ reason: 'aborted' });
  });
});
