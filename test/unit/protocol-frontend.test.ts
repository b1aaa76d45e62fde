import { describe, expect, it } from 'vitest';
import { lsn, parseLsn } from '../../src/lsn.js';
import * as fe from '../../src/protocol/frontend.js';
import {
  buildStandbyStatusUpdate,
  dateToPgEpochUs,
  parseReplicationMessage,
  pgEpochUsToDate,
} from '../../src/protocol/replication-messages.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { build } from './fixtures/backend-messages.js';

describe('frontend messages', () => {
  const w = new Writer(8); // tiny on purpose: forces growth

  it('StartupMessage has length, version 3.0, replication=true and a final NUL', () => {
    const b = fe.startupMessage(w, { user: 'alice', applicationName: 'pgbb' });
    expect(b.readInt32BE(0)).toBe(b.length);
    expect(b.readInt32BE(4)).toBe(196608);
    const pairs = b
      .subarray(8, b.length - 1)
      .toString()
      .split('\0');
    expect(pairs.slice(0, -1)).toEqual(['user', 'alice', 'replication', 'true', 'application_name', 'pgbb', 'client_encoding', 'UTF8']);
    expect(b[b.length - 1]).toBe(0);
  });

  it('SSLRequest is 8 bytes with code 80877103', () => {
    expect(fe.sslRequest(w)).toEqual(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  });

  it('Query, PasswordMessage, CopyDone, CopyFail, Terminate', () => {
    expect(fe.query(w, 'IDENTIFY_SYSTEM')).toEqual(
      Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 20]), Buffer.from('IDENTIFY_SYSTEM\0')]),
    );
    expect(fe.passwordMessage(w, 'pw')).toEqual(Buffer.from([0x70, 0, 0, 0, 7, 0x70, 0x77, 0]));
    expect(fe.copyDone(w)).toEqual(Buffer.from([0x63, 0, 0, 0, 4]));
    expect(fe.copyFail(w, 'x')).toEqual(Buffer.from([0x66, 0, 0, 0, 6, 0x78, 0]));
    expect(fe.terminate(w)).toEqual(Buffer.from([0x58, 0, 0, 0, 4]));
    expect(() => fe.query(w, 'a\0b')).toThrow(TypeError);
    // the writer is usable again after a failed message
    expect(fe.terminate(w)).toEqual(Buffer.from([0x58, 0, 0, 0, 4]));
  });

  it('SASLInitialResponse and SASLResponse', () => {
    const w2 = new Writer();
    const init = fe.saslInitialResponse(w2, 'SCRAM-SHA-256', 'n,,n=,r=abc');
    const r = new Reader(init.subarray(5));
    expect(init[0]).toBe(0x70);
    expect(init.readInt32BE(1)).toBe(init.length - 1);
    expect(r.cstring()).toBe('SCRAM-SHA-256');
    expect(r.int32()).toBe(11);
    expect(r.rest().toString()).toBe('n,,n=,r=abc');
    const resp = fe.saslResponse(w2, 'c=biws,r=abc,p=xyz');
    expect(resp.subarray(5).toString()).toBe('c=biws,r=abc,p=xyz');
    expect(fe.saslInitialResponse(w2, 'M', null).subarray(7)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  });

  it('CopyData whole and as header + payload', () => {
    const payload = Buffer.alloc(3000, 1);
    const whole = fe.copyData(new Writer(), payload);
    expect(Buffer.concat([fe.copyDataHeader(payload.length), payload])).toEqual(whole);
    expect(whole.readInt32BE(1)).toBe(3004);
  });

  it('results never alias the writer buffer', () => {
    const w2 = new Writer();
    const a = fe.query(w2, 'AAAA');
    fe.query(w2, 'BBBB');
    expect(a.subarray(5, 9).toString()).toBe('AAAA');
  });
});

describe('replication messages', () => {
  it('parses XLogData with a view of the WAL bytes', () => {
    const payload = build.xlogData(0x1000000n, 0x2000000n, 123n, Buffer.from('walwal'));
    const m = parseReplicationMessage(payload);
    expect(m).toMatchObject({ type: 'XLogData', dataStart: 0x1000000n, walEnd: 0x2000000n, sendTimeUs: 123n });
    if (m.type !== 'XLogData') throw new Error('type');
    expect(m.data.toString()).toBe('walwal');
    expect(m.data.buffer).toBe(payload.buffer);
  });
  it('parses PrimaryKeepalive', () => {
    expect(parseReplicationMessage(build.keepalive(parseLsn('1/0'), 5n, true))).toEqual({
      type: 'PrimaryKeepalive',
      walEnd: 0x100000000n,
      sendTimeUs: 5n,
      replyRequested: true,
    });
  });
  it('rejects malformed payloads', () => {
    expect(() => parseReplicationMessage(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
    expect(() => parseReplicationMessage(Buffer.from('w123'))).toThrow(/truncated XLogData/);
    expect(() => parseReplicationMessage(build.keepalive(0n, 0n, false).subarray(0, 17))).toThrow(/PrimaryKeepalive/);
    expect(() => parseReplicationMessage(Buffer.from('zzz'))).toThrow(/'z' \(0x7a\)/);
  });
  it('builds StandbyStatusUpdate', () => {
    const b = buildStandbyStatusUpdate({ write: lsn(3n), flush: lsn(2n), apply: 0n, clientTimeUs: 9n, replyRequested: true });
    expect(b.length).toBe(34);
    expect(b[0]).toBe(0x72);
    expect(b.readBigUInt64BE(1)).toBe(3n);
    expect(b.readBigUInt64BE(9)).toBe(2n);
    expect(b.readBigUInt64BE(17)).toBe(0n);
    expect(b.readBigInt64BE(25)).toBe(9n);
    expect(b[33]).toBe(1);
  });
  it('converts PG-epoch timestamps', () => {
    expect(dateToPgEpochUs(new Date('2000-01-01T00:00:00Z'))).toBe(0n);
    expect(dateToPgEpochUs(new Date('2000-01-01T00:00:01Z'))).toBe(1_000_000n);
    expect(pgEpochUsToDate(86_400_000_000n).toISOString()).toBe('2000-01-02T00:00:00.000Z');
    const b = buildStandbyStatusUpdate({ write: 0n, flush: 0n, apply: 0n });
    const sent = pgEpochUsToDate(b.readBigInt64BE(25)).getTime();
    expect(Math.abs(sent - Date.now())).toBeLessThan(5000);
  });
});
