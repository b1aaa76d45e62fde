import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReplicationConnection, type BufferedMessages } from '../../../src/connection/connection.js';
import type { ConnectionOptions, ServerNotice } from '../../../src/connection/types.js';
import type { ServerError } from '../../../src/errors.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { build } from '../fixtures/backend-messages.js';
import { deferred } from '../helpers/deferred.js';
import { READ_SLAB_BYTES, READ_SLAB_POOL_SIZE } from '../../../src/connection/socket.js';
import { FakeServer, type FakeClient } from './fake-server.js';

let server: FakeServer;
beforeEach(async () => {
  server = await FakeServer.start();
});
afterEach(async () => {
  await server.close();
});

function opts(extra: ConnectionOptions = {}): ConnectionOptions {
  return { host: '127.0.0.1', port: server.port, user: 'alice', sslmode: 'disable', env: {}, passfile: '/nonexistent/pgpass', ...extra };
}

async function connectTrust(extra: ConnectionOptions = {}, tuning = {}): Promise<{ conn: ReplicationConnection; client: FakeClient }> {
  const p = ReplicationConnection.connect(opts(extra), tuning);
  const client = await server.accept();
  await client.acceptTrust();
  return { conn: await p, client };
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function startupParams(body: Buffer): Record<string, string> {
  const parts = body.subarray(4).toString().split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) out[parts[i]!] = parts[i + 1]!;
  return out;
}

describe('startup', () => {
  it('sends user, replication=true and application_name, and reads the version', async () => {
    const p = ReplicationConnection.connect(opts({ applicationName: 'app' }));
    const client = await server.accept();
    const startup = await client.acceptTrust(160004);
    const conn = await p;
    expect(startup.readInt32BE(0)).toBe(196608);
    expect(startupParams(startup)).toMatchObject({ user: 'alice', replication: 'true', application_name: 'app' });
    expect(conn.state).toBe('ready');
    expect(conn.serverVersionNum).toBe(160004);
    expect(conn.serverMajor).toBe(16);
    expect(conn.backendPid).toBe(4242);
    expect(conn.parameters.get('server_version')).toBe('16.2');
    await conn.close();
  });

  it('never shows the password when printed', async () => {
    const p = ReplicationConnection.connect(opts({ password: 'Hidden-S3cret' }));
    await (await server.accept()).acceptTrust();
    const conn = await p;
    expect(JSON.stringify(conn)).not.toContain('Hidden-S3cret');
    expect(inspect(conn, { depth: 10 })).not.toContain('Hidden-S3cret');
    expect(inspect(conn)).toContain('alice@127.0.0.1');
    conn.destroy();
  });

  it('refuses servers older than 13', async () => {
    const p = ReplicationConnection.connect(opts());
    const client = await server.accept();
    await client.acceptTrust(120015);
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
    expect(err.message).toMatch(/120015/);
    expect(err.message).toMatch(/supports PostgreSQL 13 to 18/);
  });

  it('refuses a server newer than the newest major it is tested with, and closes the connection', async () => {
    const p = ReplicationConnection.connect(opts());
    const client = await server.accept();
    await client.acceptTrust(190000);
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
    expect(err.message).toMatch(/^server major 19 is newer than the newest PostgreSQL version pg-basebackup is tested with \(18\)/);
    expect(err.message).toMatch(/server_version_num 190000/);
    // The refused connection is not left open on the server.
    await vi.waitFor(
      () => {
        expect(client.closed).toBe(true);
      },
      { timeout: 5000 },
    );
  });

  it('accepts the newest tested major (18)', async () => {
    const p = ReplicationConnection.connect(opts());
    await (await server.accept()).acceptTrust(180004);
    const conn = await p;
    expect(conn.serverMajor).toBe(18);
    conn.destroy();
  });

  it('takes a connection string in place of options', async () => {
    const p = ReplicationConnection.connect(`host=127.0.0.1 port=${server.port} user=bob sslmode=disable passfile=/nonexistent/pgpass`);
    const client = await server.accept();
    const startup = await client.acceptTrust();
    const conn = await p;
    expect(startupParams(startup)).toMatchObject({ user: 'bob', replication: 'true' });
    expect(conn.options.port).toBe(server.port);
    conn.destroy();

    const p2 = ReplicationConnection.connect(`postgresql://carol@127.0.0.1:${server.port}/?sslmode=disable&passfile=/nonexistent/pgpass`);
    const startup2 = await (await server.accept()).acceptTrust();
    const conn2 = await p2;
    expect(startupParams(startup2)).toMatchObject({ user: 'carol' });
    conn2.destroy();
  });

  it('accepts NegotiateProtocolVersion and a long BackendKeyData key (protocol 3.2)', async () => {
    const p = ReplicationConnection.connect(opts());
    const client = await server.accept();
    await client.next();
    client.send(build.negotiateProtocolVersion(0, []), build.authOk(), build.backendKeyData(7, Buffer.alloc(32, 1)), build.readyForQuery());
    await client.answerShowVersion();
    const conn = await p;
    expect(conn.backendPid).toBe(7);
    conn.destroy();
  });

  it('turns a FATAL at startup into a ServerError with pg_hba advice', async () => {
    const p = ReplicationConnection.connect(opts());
    const client = await server.accept();
    await client.next();
    client.send(build.fatal('28000', 'no pg_hba.conf entry for replication connection from host "127.0.0.1", user "alice", no encryption'));
    client.socket.end();
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('28000');
    expect(err.message).toMatch(/host {4}replication alice <client address>\/32/);
  });
});

describe('sslmode', () => {
  it('rejects bytes sent after the SSLRequest answer (CVE-2021-23222)', async () => {
    const p = ReplicationConnection.connect(opts({ sslmode: 'require' }));
    const client = await server.accept();
    const req = await client.next();
    expect(req!.body.readInt32BE(0)).toBe(80877103);
    client.send(Buffer.from('S'), build.authOk());
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    expect(err.message).toMatch(/CVE-2021-23222/);
  });

  it('fails with TlsError under require when the server answers N', async () => {
    const p = ReplicationConnection.connect(opts({ sslmode: 'require' }));
    const client = await server.accept();
    await client.next();
    client.send(Buffer.from('N'));
    expect(await errorOf(p)).toMatchObject({ code: 'ERR_PGBB_TLS' });
  });

  it('goes on without TLS under prefer when the server answers N', async () => {
    const p = ReplicationConnection.connect(opts({ sslmode: 'prefer' }));
    const client = await server.accept();
    await client.next();
    client.send(Buffer.from('N'));
    await client.acceptTrust();
    const conn = await p;
    expect(conn.encrypted).toBe(false);
    conn.destroy();
  });

  it('under allow retries with TLS after a refused plain attempt, reporting the first error if TLS is refused too', async () => {
    const p = ReplicationConnection.connect(opts({ sslmode: 'allow' }));
    const first = await server.accept();
    const startup = await first.next();
    expect(startup!.body.readInt32BE(0)).toBe(196608);
    first.send(build.fatal('28000', 'no pg_hba.conf entry for replication connection, no encryption'));
    first.socket.end();
    const second = await server.accept();
    expect((await second.next())!.body.readInt32BE(0)).toBe(80877103);
    second.send(Buffer.from('N'));
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('28000');
  });
});

describe('authentication', () => {
  async function authWith(
    request: Buffer,
    extra: ConnectionOptions = {},
  ): Promise<{ p: Promise<ReplicationConnection>; client: FakeClient }> {
    const p = ReplicationConnection.connect(opts(extra));
    const client = await server.accept();
    await client.next();
    client.send(request);
    return { p, client };
  }

  it('sends a cleartext password', async () => {
    const { p, client } = await authWith(build.authCleartext(), { password: 's3cret' });
    const pw = await client.next();
    expect(pw).toEqual({ type: 'p', body: Buffer.from('s3cret\0') });
    client.send(build.authOk(), build.readyForQuery());
    await client.answerShowVersion();
    (await p).destroy();
  });

  it('answers MD5 with md5(md5(password + user) + salt)', async () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const { p, client } = await authWith(build.authMd5(salt), { password: 's3cret' });
    const inner = createHash('md5').update('s3cretalice').digest('hex');
    const expected = `md5${createHash('md5').update(inner).update(salt).digest('hex')}`;
    expect((await client.next())!.body.toString()).toBe(`${expected}\0`);
    client.send(build.authOk(), build.readyForQuery());
    await client.answerShowVersion();
    (await p).destroy();
  });

  it('asks for PGPASSWORD/.pgpass when no password is available', async () => {
    const { p } = await authWith(build.authCleartext());
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_AUTH' });
    expect(err.message).toMatch(/PGPASSWORD/);
  });

  it('names unsupported methods', async () => {
    for (const [code, name] of [
      [2, 'Kerberos V5'],
      [7, 'GSSAPI'],
      [9, 'SSPI'],
      [42, 'code 42'],
    ] as const) {
      const { p } = await authWith(build.authCode(code));
      const err = await errorOf(p);
      expect(err).toMatchObject({ code: 'ERR_PGBB_AUTH' });
      expect(err.message).toContain(name);
    }
  });

  it('channel_binding=require refuses trust and MD5 without sending the password', async () => {
    const t = await authWith(build.authOk(), { channelBinding: 'require' });
    expect(await errorOf(t.p)).toMatchObject({ code: 'ERR_PGBB_AUTH' });

    const m = await authWith(build.authMd5(Buffer.alloc(4)), { channelBinding: 'require', password: 'pw' });
    const err = await errorOf(m.p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_AUTH' });
    expect(err.message).toMatch(/channel_binding=require/);
    // Whatever the client sent arrives before it closes: the next thing is the close, not a password.
    expect(await m.client.next()).toBeNull();
  });

  it('refuses AuthenticationOk before SCRAM finished', async () => {
    const { p, client } = await authWith(build.authSasl(['SCRAM-SHA-256']), { password: 'pw' });
    const init = await client.next();
    expect(init!.type).toBe('p');
    expect(init!.body.toString()).toMatch(/^SCRAM-SHA-256\0/);
    client.send(build.authOk());
    expect(await errorOf(p)).toMatchObject({ code: 'ERR_PGBB_AUTH' });
  });

  it('never puts the password into an error message', async () => {
    const { p, client } = await authWith(build.authCleartext(), { password: 'Very-S3cret' });
    await client.next();
    client.send(build.fatal('28P01', 'password authentication failed for user "alice"'));
    const err = await errorOf(p);
    expect(err.message).toMatch(/password was rejected/);
    expect(err.message).not.toContain('Very-S3cret');
  });
});

describe('timeouts and aborts while connecting', () => {
  it('bounds the whole connect by connectTimeoutMs', async () => {
    const t0 = Date.now();
    const p = ReplicationConnection.connect(opts({ connectTimeoutMs: 200 }));
    await server.accept(); // never answers
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECT_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('honours an AbortSignal', async () => {
    const ac = new AbortController();
    const p = ReplicationConnection.connect(opts({ signal: ac.signal }));
    const client = await server.accept();
    await client.next();
    ac.abort();
    expect(await errorOf(p)).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect.poll(() => client.closed).toBe(true);
    await expect(ReplicationConnection.connect(opts({ signal: ac.signal }))).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
  });
});

describe('queries and COPY', () => {
  it('collects result sets and throws ServerError after ReadyForQuery, staying usable', async () => {
    const { conn, client } = await connectTrust();
    const q = conn.query('IDENTIFY_SYSTEM');
    expect((await client.next())!.body.toString()).toBe('IDENTIFY_SYSTEM\0');
    client.send(
      build.rowDescription([{ name: 'systemid', typeOid: 25 }]),
      build.dataRow(['1']),
      build.dataRow([null]),
      build.commandComplete('IDENTIFY_SYSTEM'),
      build.readyForQuery(),
    );
    expect(await q).toEqual([{ command: 'IDENTIFY_SYSTEM', columns: [{ name: 'systemid', typeOid: 25 }], rows: [['1'], [null]] }]);

    const q2 = conn.query('SELECT 1');
    await client.next();
    // The notice is read after the error (messages are handled in order): by then the error was seen.
    const noticed = deferred();
    conn.on('notice', () => noticed.resolve());
    client.send(
      build.error('XX000', 'cannot execute SQL commands in WAL sender for physical replication'),
      build.notice('after the error'),
    );
    await noticed.promise;
    expect(conn.state).toBe('busy'); // the error is held until ReadyForQuery
    client.send(build.readyForQuery());
    const err = await errorOf(q2);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(conn.state).toBe('ready');
    conn.destroy();
  });

  it('keeps notices and ParameterStatus mid-COPY as events, in order, and stays in COPY', async () => {
    const { conn, client } = await connectTrust();
    const events: string[] = [];
    conn.on('notice', (n: ServerNotice) => events.push(`notice:${n.message}`));
    conn.on('parameter', (name, value) => events.push(`param:${name}=${value}`));
    const states: string[] = [];
    const seen: string[] = [];
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    client.send(
      build.copyOutResponse(),
      build.copyData(Buffer.from('a')),
      build.notice('checksum failure'),
      build.parameterStatus('in_hot_standby', 'off'),
      build.copyData(Buffer.from('b')),
      build.copyDone(),
      build.commandComplete('BASE_BACKUP'),
      build.readyForQuery(),
    );
    for await (const m of it) {
      seen.push(m.type === 'CopyData' ? `CopyData:${m.payload.toString()}` : m.type);
      states.push(conn.state);
      events.push(m.type);
    }
    expect(seen).toEqual(['CopyOutResponse', 'CopyData:a', 'CopyData:b', 'CopyDone', 'CommandComplete']);
    expect(states).toEqual(['copy-out', 'copy-out', 'copy-out', 'busy', 'busy']);
    expect(events).toEqual([
      'CopyOutResponse',
      'CopyData',
      'notice:checksum failure',
      'param:in_hot_standby=off',
      'CopyData',
      'CopyDone',
      'CommandComplete',
    ]);
    expect(conn.state).toBe('ready');
    expect(conn.parameters.get('in_hot_standby')).toBe('off');
    conn.destroy();
  });

  it('takeBuffered() hands out whole buffered messages without waiting, and undefined when next() must wait', async () => {
    const { conn, client } = await connectTrust();
    const events: string[] = [];
    conn.on('notice', (n: ServerNotice) => events.push(`notice:${n.message}`));
    const it = conn.stream('BASE_BACKUP') as AsyncIterableIterator<StreamMessage> & BufferedMessages;
    expect(it.takeBuffered()).toBeUndefined(); // nothing arrived yet
    await client.next();
    // One write of a few bytes: on loopback it arrives in the read that brings the CopyOutResponse.
    client.send(build.copyOutResponse(), build.copyData(Buffer.from('a')), build.notice('n1'), build.copyData(Buffer.from('b')));
    expect(((await it.next()).value as StreamMessage).type).toBe('CopyOutResponse');
    const taken: string[] = [];
    for (let r = it.takeBuffered(); r !== undefined && !r.done; r = it.takeBuffered()) {
      const m = r.value;
      taken.push(m.type === 'CopyData' ? `CopyData:${m.payload.toString()}` : m.type);
    }
    expect(taken).toEqual(['CopyData:a', 'CopyData:b']);
    expect(events).toEqual(['notice:n1']);
    // A pending next() comes first: takeBuffered() waits behind it.
    const pending = it.next();
    expect(it.takeBuffered()).toBeUndefined();
    client.send(build.copyDone(), build.commandComplete('BASE_BACKUP'), build.readyForQuery());
    // CommandComplete and ReadyForQuery came in the same read as CopyDone.
    expect(((await pending).value as StreamMessage).type).toBe('CopyDone');
    expect(it.takeBuffered()?.value).toMatchObject({ type: 'CommandComplete' });
    expect(it.takeBuffered()).toEqual({ done: true, value: undefined });
    expect(conn.state).toBe('ready');
    conn.destroy();
  });

  it('leaving a stream() iterator early (return()) destroys the connection', async () => {
    const { conn, client } = await connectTrust();
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    client.send(build.copyOutResponse(), build.copyData(Buffer.from('a')));
    await it.next();
    await it.return!();
    expect(conn.state).toBe('closed');
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('sends CopyData/CopyDone during copy-both and follows the states', async () => {
    const { conn, client } = await connectTrust();
    const it = conn.stream('START_REPLICATION 0/0');
    await client.next();
    client.send(build.copyBothResponse());
    const first = await it.next();
    expect((first.value as StreamMessage).type).toBe('CopyBothResponse');
    expect(conn.state).toBe('copy-both');
    const big = Buffer.alloc(1000, 7);
    conn.sendCopyData(Buffer.from('r-small'));
    conn.sendCopyData(big);
    await conn.drained();
    conn.sendCopyDone();
    expect(conn.state).toBe('copy-out');
    expect(() => conn.sendCopyData(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_STATE' }));
    expect(await client.next()).toEqual({ type: 'd', body: Buffer.from('r-small') });
    expect(await client.next()).toEqual({ type: 'd', body: big });
    expect((await client.next())!.type).toBe('c');
    client.send(build.copyDone(), build.commandComplete('START_STREAMING'), build.readyForQuery());
    const rest: string[] = [];
    for await (const m of it) rest.push(m.type);
    expect(rest).toEqual(['CopyDone', 'CommandComplete']);
    expect(conn.state).toBe('ready');
    conn.destroy();
  });

  it('drops CopyData the server sends after its own CopyDone (a keepalive at the end of a historic timeline)', async () => {
    const { conn, client } = await connectTrust();
    const it = conn.stream('START_REPLICATION 0/0 TIMELINE 1');
    await client.next();
    client.send(build.copyBothResponse(), build.copyDone());
    expect(((await it.next()).value as StreamMessage).type).toBe('CopyBothResponse');
    expect(((await it.next()).value as StreamMessage).type).toBe('CopyDone');
    conn.sendCopyDone();
    expect(conn.state).toBe('busy');
    client.send(build.copyData(Buffer.from('k')), build.commandComplete('START_STREAMING'), build.readyForQuery());
    const rest: string[] = [];
    for await (const m of it) rest.push(m.type);
    expect(rest).toEqual(['CommandComplete']);
    expect(conn.state).toBe('ready');
    conn.destroy();
  });

  it('still refuses CopyData outside a COPY the server never ended', async () => {
    const { conn, client } = await connectTrust();
    const it = conn.stream('IDENTIFY_SYSTEM');
    await client.next();
    client.send(build.copyData(Buffer.from('x')));
    await expect(it.next()).rejects.toThrow(/unexpected CopyData message during a command in state busy/);
  });

  it('ends with ServerError and closes on a FATAL mid-COPY', async () => {
    const { conn, client } = await connectTrust();
    const closes: (Error | undefined)[] = [];
    conn.on('close', (e) => closes.push(e));
    const p = (async () => {
      for await (const _ of conn.stream('START_REPLICATION 0/0')) {
        /* drain */
      }
    })();
    await client.next();
    client.send(build.copyBothResponse(), build.fatal('57P01', 'terminating connection due to administrator command'));
    client.socket.end();
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('57P01');
    expect(conn.state).toBe('closed');
    await expect.poll(() => closes.length).toBe(1);
  });

  it('reports a connection the server drops mid-command as ConnectionClosedError', async () => {
    const { conn, client } = await connectTrust();
    const p = conn.query('IDENTIFY_SYSTEM');
    await client.next();
    client.socket.destroy();
    expect(await errorOf(p)).toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
    expect(conn.state).toBe('closed');
  });

  it('turns bad bytes into ProtocolError and closes', async () => {
    const { conn, client } = await connectTrust();
    const p = conn.query('IDENTIFY_SYSTEM');
    await client.next();
    client.send(Buffer.from([0x21, 0, 0, 0, 4]));
    const err = await errorOf(p);
    expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    expect(err.message).toMatch(/'!' \(0x21\)/);
    expect(conn.state).toBe('closed');
  });

  it('destroys the connection when the consumer leaves stream() early', async () => {
    const { conn, client } = await connectTrust();
    const closes: (Error | undefined)[] = [];
    conn.on('close', (e) => closes.push(e));
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    client.send(build.copyOutResponse(), build.copyData(Buffer.from('x')));
    for await (const m of it) if (m.type === 'CopyData') break;
    expect(conn.state).toBe('closed');
    await expect.poll(() => closes.length).toBe(1);
    expect(closes[0]).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect.poll(() => client.closed).toBe(true);
  });

  it('aborts a query through its AbortSignal with one listener, removed afterwards', async () => {
    const { conn, client } = await connectTrust();
    const ac = new AbortController();
    let listeners = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => {
      listeners++;
      add(...a);
    }) as typeof add;
    ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => {
      listeners--;
      remove(...a);
    }) as typeof remove;

    const q1 = conn.query('IDENTIFY_SYSTEM', { signal: ac.signal });
    await client.next();
    client.send(build.commandComplete('IDENTIFY_SYSTEM'), build.readyForQuery());
    await q1;
    expect(listeners).toBe(0);

    const q2 = conn.query('IDENTIFY_SYSTEM', { signal: ac.signal });
    await client.next();
    expect(listeners).toBe(1);
    ac.abort();
    expect(await errorOf(q2)).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(listeners).toBe(0);
    expect(conn.state).toBe('closed');
  });

  it('does not send anything for an already aborted signal', async () => {
    const { conn, client } = await connectTrust();
    const err = await errorOf(conn.query('IDENTIFY_SYSTEM', { signal: AbortSignal.abort() }));
    expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(conn.state).toBe('ready');
    // The next query is the first thing the server hears.
    const q = conn.query('IDENTIFY_SYSTEM');
    expect((await client.next())!.body.toString()).toBe('IDENTIFY_SYSTEM\0');
    client.send(build.commandComplete('IDENTIFY_SYSTEM'), build.readyForQuery());
    await q;
    conn.destroy();
  });

  it('pauses the socket when the consumer does not pull (backpressure reaches the server)', async () => {
    const { conn, client } = await connectTrust({}, { highWaterMarkBytes: 64 * 1024 });
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    const chunk = build.copyData(Buffer.alloc(64 * 1024, 1));
    const total = 1024; // 64 MiB
    let written = 0;
    let flushed = 0;
    let waitingForDrain = false;
    const writer = (async () => {
      client.send(build.copyOutResponse());
      for (let i = 0; i < total; i++) {
        written++;
        if (!client.socket.write(chunk)) {
          waitingForDrain = true;
          await new Promise((r) => client.socket.once('drain', r));
          waitingForDrain = false;
        }
        flushed = written;
      }
      client.send(build.copyDone(), build.commandComplete('BASE_BACKUP'), build.readyForQuery());
    })();
    expect((await it.next()).value).toMatchObject({ type: 'CopyOutResponse' });
    // Stall: the server can only fill the kernel buffers and our high-water mark.
    await vi.waitFor(() => expect(waitingForDrain).toBe(true), { timeout: 10_000, interval: 10 });
    const stalledAt = flushed;
    expect(stalledAt).toBeLessThan(total / 2);
    // Deliberate observation window: an unpaused socket would be read in it and the writer would move on.
    await new Promise((r) => setTimeout(r, 200));
    expect(waitingForDrain).toBe(true);
    expect(flushed).toBe(stalledAt);
    let n = 0;
    for await (const m of it) if (m.type === 'CopyData') n++;
    await writer;
    expect(n).toBe(total);
    expect(conn.state).toBe('ready');
    conn.destroy();
  });

  it('reads a single message larger than the high-water mark', async () => {
    const { conn, client } = await connectTrust({}, { highWaterMarkBytes: 16 * 1024 });
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    const big = Buffer.alloc(3 * 1024 * 1024, 9);
    client.send(
      build.copyOutResponse(),
      build.copyData(big),
      build.copyDone(),
      build.commandComplete('BASE_BACKUP'),
      build.readyForQuery(),
    );
    let got: Buffer | undefined;
    for await (const m of it) if (m.type === 'CopyData') got = Buffer.from(m.payload);
    expect(got?.equals(big)).toBe(true);
    conn.destroy();
  });

  it('close() during a running COPY sends Terminate, closes at once and rejects the command', async () => {
    const { conn, client } = await connectTrust();
    const closes: (Error | undefined)[] = [];
    conn.on('close', (e) => closes.push(e));
    const it = conn.stream('BASE_BACKUP');
    await client.next();
    client.send(build.copyOutResponse(), build.copyData(Buffer.from('x')));
    expect((await it.next()).value).toMatchObject({ type: 'CopyOutResponse' });
    const t0 = Date.now();
    await conn.close();
    expect(Date.now() - t0).toBeLessThan(900);
    expect(await errorOf(it.next())).toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
    await expect.poll(() => client.closed).toBe(true);
    expect(client.received.at(-1)).toEqual({ type: 'X', body: Buffer.alloc(0) });
    expect(closes).toEqual([undefined]);
  });

  it('close() sends Terminate, fires close once, and is idempotent', async () => {
    const { conn, client } = await connectTrust();
    const closes: (Error | undefined)[] = [];
    conn.on('close', (e) => closes.push(e));
    client.socket.on('end', () => client.socket.end());
    const a = conn.close();
    const b = conn.close();
    await Promise.all([a, b]);
    expect(conn.state).toBe('closed');
    expect(client.received.at(-1)).toEqual({ type: 'X', body: Buffer.alloc(0) });
    conn.destroy();
    await conn[Symbol.asyncDispose]();
    expect(closes).toEqual([undefined]);
    await expect(conn.query('IDENTIFY_SYSTEM')).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });
});

describe('receive buffers', () => {
  // An odd size, so that messages straddle the receive slabs.
  const SIZE = 32 * 1024 - 7;
  const COUNT = 200; // over 6 MiB: a dozen slabs
  const payload = (i: number): Buffer => {
    const b = Buffer.alloc(SIZE, i & 0xff);
    b.writeUInt32BE(i, 0);
    return b;
  };

  /** Streams COUNT CopyData messages and calls `onPayload` with each, in order. */
  async function streamPayloads(onPayload: (p: Buffer, i: number, it: BufferedMessages) => void): Promise<void> {
    const { conn, client } = await connectTrust();
    const it = conn.stream('BASE_BACKUP') as AsyncIterableIterator<StreamMessage> & BufferedMessages;
    await client.next();
    const messages = [build.copyOutResponse()];
    for (let i = 0; i < COUNT; i++) messages.push(build.copyData(payload(i)));
    client.send(...messages, build.copyDone(), build.commandComplete('BASE_BACKUP'), build.readyForQuery());
    let i = 0;
    for await (const m of it) if (m.type === 'CopyData') onPayload(m.payload, i++, it);
    expect(i).toBe(COUNT);
    conn.destroy();
  }

  it('without releaseHandedOut(), every payload stays intact for as long as it is held', async () => {
    const held: Buffer[] = [];
    await streamPayloads((p) => held.push(p));
    held.forEach((p, i) => expect(p.equals(payload(i)), `payload ${i}`).toBe(true));
    // Never reused: the payloads lie in at least as many slabs as their bytes fill.
    expect(new Set(held.map((p) => p.buffer)).size).toBeGreaterThanOrEqual(Math.floor((COUNT * SIZE) / READ_SLAB_BYTES));
  });

  it('with releaseHandedOut() between pulls, each payload is intact until released, and the slabs are reused', async () => {
    const buffers = new Set<ArrayBufferLike>();
    let previous: { p: Buffer; i: number } | undefined;
    await streamPayloads((p, i, it) => {
      // The last payload was not released before this pull: it is still intact.
      if (previous) expect(previous.p.equals(payload(previous.i)), `payload ${previous.i}`).toBe(true);
      expect(p.equals(payload(i)), `payload ${i}`).toBe(true);
      // Only the slabs: a payload the framer had to copy has a buffer of its own.
      if (p.buffer.byteLength === READ_SLAB_BYTES) buffers.add(p.buffer);
      previous = { p, i };
      it.releaseHandedOut();
    });
    expect(buffers.size).toBeLessThanOrEqual(READ_SLAB_POOL_SIZE + 4);
    expect(buffers.size).toBeLessThan(Math.floor((COUNT * SIZE) / READ_SLAB_BYTES));
  });
});
