import { describe, expect, it } from 'vitest';
import { Framer, MAX_MESSAGE_LENGTH } from '../../src/protocol/framer.js';
import type { BackendMessage } from '../../src/protocol/messages.js';
import { parseMessage } from '../../src/protocol/parser.js';
import { build } from './fixtures/backend-messages.js';
import { splits } from './helpers/splits.js';

function feed(chunks: Buffer[]): BackendMessage[] {
  const f = new Framer();
  const out: BackendMessage[] = [];
  for (const c of chunks) {
    f.push(c);
    for (let fr; (fr = f.pull()); ) out.push(parseMessage(fr));
  }
  expect(f.bufferedBytes).toBe(0);
  return out;
}

const bigPayload = Buffer.alloc(5000, 7);
const stream = Buffer.concat([
  build.authSasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
  build.authSaslContinue('r=abc,s=c2FsdA==,i=4096'),
  build.authSaslFinal('v=xyz'),
  build.authMd5(Buffer.from([1, 2, 3, 4])),
  build.authOk(),
  build.parameterStatus('server_version', '17.2'),
  build.backendKeyData(1234, Buffer.from([9, 9, 9, 9])),
  build.negotiateProtocolVersion(0, ['_pq_.x']),
  build.readyForQuery('I'),
  build.rowDescription([
    { name: 'systemid', typeOid: 25 },
    { name: 'timeline', typeOid: 23 },
  ]),
  build.dataRow(['7345', null, 'é']),
  build.commandComplete('IDENTIFY_SYSTEM'),
  build.emptyQuery(),
  build.copyOutResponse(0, []),
  build.copyBothResponse(0, []),
  build.copyInResponse(1, [1, 1]),
  build.copyData(bigPayload),
  build.copyData(Buffer.alloc(0)),
  build.copyDone(),
  build.notice('checksum failure'),
  build.error('42710', 'replication slot "s" already exists', { detail: 'd', hint: 'h', file: 'slot.c', line: '1', routine: 'r' }),
  build.notification(5, 'ch', 'pl'),
  build.readyForQuery('E'),
]);

describe('Framer + parser', () => {
  const expected = feed([stream]);

  it('parses every message type', () => {
    expect(expected.map((m) => m.type)).toEqual([
      'Authentication',
      'Authentication',
      'Authentication',
      'Authentication',
      'Authentication',
      'ParameterStatus',
      'BackendKeyData',
      'NegotiateProtocolVersion',
      'ReadyForQuery',
      'RowDescription',
      'DataRow',
      'CommandComplete',
      'EmptyQueryResponse',
      'CopyOutResponse',
      'CopyBothResponse',
      'CopyInResponse',
      'CopyData',
      'CopyData',
      'CopyDone',
      'NoticeResponse',
      'ErrorResponse',
      'NotificationResponse',
      'ReadyForQuery',
    ]);
    expect(expected[0]).toEqual({ type: 'Authentication', code: 10, mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    expect((expected[1] as { data: Buffer }).data.toString()).toBe('r=abc,s=c2FsdA==,i=4096');
    expect(expected[3]).toMatchObject({ code: 5, salt: Buffer.from([1, 2, 3, 4]) });
    expect(expected[5]).toEqual({ type: 'ParameterStatus', name: 'server_version', value: '17.2' });
    expect(expected[6]).toMatchObject({ processId: 1234, secretKey: Buffer.from([9, 9, 9, 9]) });
    expect(expected[7]).toEqual({ type: 'NegotiateProtocolVersion', newestMinor: 0, unrecognized: ['_pq_.x'] });
    expect(expected[9]).toMatchObject({
      columns: [
        { name: 'systemid', typeOid: 25 },
        { name: 'timeline', typeOid: 23 },
      ],
    });
    expect(expected[10]).toEqual({ type: 'DataRow', values: ['7345', null, 'é'] });
    expect(expected[15]).toEqual({ type: 'CopyInResponse', format: 1, columnFormats: [1, 1] });
    expect((expected[16] as { payload: Buffer }).payload.equals(bigPayload)).toBe(true);
    expect(expected[20]).toEqual({
      type: 'ErrorResponse',
      fields: {
        severity: 'ERROR',
        severityCode: 'ERROR',
        sqlState: '42710',
        message: 'replication slot "s" already exists',
        detail: 'd',
        hint: 'h',
        file: 'slot.c',
        line: '1',
        routine: 'r',
      },
    });
    expect(expected[22]).toEqual({ type: 'ReadyForQuery', status: 'E' });
  });

  for (const [name, chunks] of splits(stream)) {
    it(`gives the same messages when fed ${name}`, () => {
      expect(feed(chunks)).toEqual(expected);
    });
  }

  it('hands out views (no copy) for a message inside one chunk', () => {
    const f = new Framer();
    const chunk = build.copyData(Buffer.from('hello'));
    f.push(chunk);
    const fr = f.pull()!;
    expect(fr.body.buffer).toBe(chunk.buffer);
    expect(fr.body.byteOffset).toBe(chunk.byteOffset + 5);
  });

  it('does not pin consumed chunks', () => {
    const f = new Framer();
    const a = build.readyForQuery();
    f.push(Buffer.concat([a, a.subarray(0, 3)]));
    expect(f.pull()).not.toBeNull();
    expect(f.pull()).toBeNull();
    f.push(a.subarray(3));
    expect(parseMessage(f.pull()!)).toEqual({ type: 'ReadyForQuery', status: 'I' });
    expect(f.bufferedBytes).toBe(0);
  });

  it('rejects a length below 4 naming the type byte', () => {
    const f = new Framer();
    f.push(Buffer.from([0x5a, 0, 0, 0, 3, 0x49]));
    expect(() => f.pull()).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
    expect(() => f.pull()).toThrow(/'Z' \(0x5a\)/);
  });

  it('rejects an absurd length before buffering it', () => {
    const f = new Framer();
    const h = Buffer.from([0x64, 0, 0, 0, 0]);
    h.writeUInt32BE(MAX_MESSAGE_LENGTH + 1, 1);
    f.push(h);
    expect(() => f.pull()).toThrow(/invalid length/);
  });

  it('rejects an unknown type byte naming it', () => {
    expect(() => feed([build.raw('!', Buffer.alloc(2))])).toThrow(/unknown backend message type '!' \(0x21\)/);
    try {
      feed([build.raw('\x01', Buffer.alloc(0))]);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
      expect((e as Error).message).toMatch(/0x01/);
    }
  });

  it('rejects a truncated ErrorResponse', () => {
    const good = build.error('XX000', 'boom');
    const body = good.subarray(5, good.length - 3); // cut inside the last string and its terminators
    expect(() => feed([build.raw('E', body)])).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
    expect(() => feed([build.raw('E', Buffer.from('SERROR'))])).toThrow(/truncated ErrorResponse/);
  });

  it('rejects trailing bytes and short fixed-size bodies', () => {
    expect(() => feed([build.raw('Z', Buffer.from('II'))])).toThrow(/trailing/);
    expect(() => feed([build.raw('Z', Buffer.from('X'))])).toThrow(/transaction status/);
    expect(() => feed([build.raw('K', Buffer.from([0, 1]))])).toThrow(/truncated BackendKeyData/);
    expect(() => feed([build.raw('D', Buffer.from([0, 1, 0, 0, 0, 9, 65]))])).toThrow(/truncated DataRow/);
    expect(() => feed([build.raw('R', Buffer.from([0, 0, 0, 5, 1]))])).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
  });

  it('keeps unknown auth codes with their data for the connection to name', () => {
    expect(feed([build.authCode(7)])).toEqual([{ type: 'Authentication', code: 7 }]);
    expect(feed([build.authCode(99)])).toMatchObject([{ type: 'Authentication', code: 99 }]);
  });

  it('throws only ProtocolError on random bodies of every message type', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const types = [...'RKCWdcGHDIENvSZTA!'].map((ch) => ch.charCodeAt(0));
    let parsed = 0;
    for (const type of types) {
      for (let i = 0; i < 300; i++) {
        const body = Buffer.alloc(rnd(24));
        for (let j = 0; j < body.length; j++) body[j] = rnd(4) === 0 ? 0 : rnd(256);
        try {
          parseMessage({ type, body });
          parsed++;
        } catch (err) {
          expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
        }
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});
