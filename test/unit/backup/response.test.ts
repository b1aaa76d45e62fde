import { describe, expect, it } from 'vitest';
import { BaseBackupResponseParser, checkArchiveName, type BackupResponseEvent } from '../../../src/backup/response.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { splitters } from '../helpers/splits.js';
import {
  bytes,
  legacyResponse,
  modernResponse,
  newArchiveMessage,
  positionResult,
  tablespaceResult,
  type FixtureTablespace,
} from './fixtures.js';

const spcs = (): FixtureTablespace[] => [
  { oid: 16385, location: '/srv/ts1', sizeKb: 8, tar: bytes(3000, 7) },
  { oid: null, location: null, sizeKb: 30000, tar: bytes(5000, 9) },
];
const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n');

function run(major: number, msgs: StreamMessage[]): BackupResponseEvent[] {
  const p = new BaseBackupResponseParser(major);
  const out = msgs.flatMap((m) => p.push(m));
  p.finish();
  expect(p.state).toBe('done');
  return out;
}

interface Summary {
  start: unknown;
  end: unknown;
  tablespaces: unknown;
  archives: { name: string; oid: number | null; location: string | null; data: Buffer; terminated: boolean }[];
  manifest: Buffer | undefined;
  progress: number[];
  complete: boolean;
}

function summarize(events: BackupResponseEvent[]): Summary {
  const s: Summary = {
    start: undefined,
    end: undefined,
    tablespaces: undefined,
    archives: [],
    manifest: undefined,
    progress: [],
    complete: false,
  };
  let cur: Buffer[] | undefined;
  let man: Buffer[] | undefined;
  for (const e of events) {
    switch (e.type) {
      case 'start':
        s.start = { lsn: e.lsn, tli: e.timeline };
        break;
      case 'end':
        s.end = { lsn: e.lsn, tli: e.timeline };
        break;
      case 'tablespaces':
        s.tablespaces = e.tablespaces;
        break;
      case 'archive-start':
        expect(cur).toBeUndefined();
        cur = [];
        s.archives.push({ name: e.name, oid: e.tablespaceOid, location: e.location, data: Buffer.alloc(0), terminated: false });
        break;
      case 'archive-data':
        expect(cur).toBeDefined();
        cur!.push(Buffer.from(e.data));
        break;
      case 'archive-end': {
        const a = s.archives.at(-1)!;
        expect(e.name).toBe(a.name);
        a.data = Buffer.concat(cur!);
        a.terminated = e.serverTerminated;
        cur = undefined;
        break;
      }
      case 'manifest-start':
        man = [];
        break;
      case 'manifest-data':
        man!.push(Buffer.from(e.data));
        break;
      case 'manifest-end':
        s.manifest = Buffer.concat(man!);
        break;
      case 'progress':
        s.progress.push(e.bytesDone);
        break;
      case 'complete':
        s.complete = true;
        break;
    }
  }
  expect(cur).toBeUndefined();
  return s;
}

function expectSummary(s: Summary, terminated: boolean, withManifest: boolean): void {
  expect(s.start).toEqual({ lsn: 0x2000028n, tli: 1 });
  expect(s.end).toEqual({ lsn: 0x2000100n, tli: 1 });
  expect(s.tablespaces).toEqual([
    { oid: 16385, location: '/srv/ts1', sizeKb: 8 },
    { oid: null, location: null, sizeKb: 30000 },
  ]);
  expect(s.archives.map((a) => [a.name, a.oid, a.location, a.terminated])).toEqual([
    ['16385.tar', 16385, '/srv/ts1', terminated],
    ['base.tar', null, null, terminated],
  ]);
  const [t1, base] = spcs();
  expect(s.archives[0]!.data.equals(t1!.tar)).toBe(true);
  expect(s.archives[1]!.data.equals(base!.tar)).toBe(true);
  expect(s.manifest?.toString()).toBe(withManifest ? manifest.toString() : undefined);
  expect(s.progress.at(-1)).toBe(8000);
  expect(s.complete).toBe(true);
}

// Bytes are involved only in the archive payloads: feed them every way splits() knows (each piece a
// separate CopyData, as the server may cut anywhere).
describe('BaseBackupResponseParser 13/14', () => {
  for (const [label, split] of splitters()) {
    it(`parses a response with a manifest, archive bytes fed ${label}`, () => {
      expectSummary(summarize(run(13, legacyResponse(spcs(), { manifest, split }))), false, true);
    });
  }

  it('parses a response without a manifest', () => {
    expectSummary(summarize(run(14, legacyResponse(spcs()))), false, false);
  });

  it('counts progress from the received bytes at each archive end', () => {
    expect(summarize(run(14, legacyResponse(spcs()))).progress).toEqual([3000, 8000]);
  });

  it('rejects a second manifest COPY', () => {
    const msgs = legacyResponse(spcs(), { manifest });
    const i = msgs.findIndex((m) => m.type === 'RowDescription' && m.columns[0]?.name === 'recptr' && msgs.indexOf(m) > 5);
    msgs.splice(i, 0, { type: 'CopyOutResponse', format: 0, columnFormats: [] });
    expect(() => run(13, msgs)).toThrow(/unexpected CopyOutResponse/);
  });

  it('rejects the end row before every archive arrived', () => {
    const msgs = [...positionResult('0/1', 1), ...tablespaceResult(spcs()), ...positionResult('0/2', 1)];
    expect(() => run(13, msgs)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
  });
});

describe('BaseBackupResponseParser 15+', () => {
  for (const [label, split] of splitters()) {
    it(`parses a response with a manifest, archive bytes fed ${label}`, () => {
      expectSummary(summarize(run(15, modernResponse(spcs(), { manifest, split }))), true, true);
    });
  }

  it('parses a response without manifest or progress messages', () => {
    const s = summarize(run(18, modernResponse(spcs(), { progress: false })));
    expect(s.archives.map((a) => a.name)).toEqual(['16385.tar', 'base.tar']);
    expect(s.manifest).toBeUndefined();
    expect(s.progress).toEqual([]);
  });

  it('accepts zero-padded LSNs (18) and an int8 timeline', () => {
    const events = run(18, modernResponse(spcs(), { startLsn: '0/02000028', endLsn: '1/00000010', tli: 3 }));
    expect(events[0]).toEqual({ type: 'start', lsn: 0x2000028n, timeline: 3 });
    expect(events.find((e) => e.type === 'end')).toEqual({ type: 'end', lsn: 0x100000010n, timeline: 3 });
  });

  const mutate = (f: (msgs: StreamMessage[]) => void): StreamMessage[] => {
    const msgs = modernResponse(spcs(), { manifest });
    f(msgs);
    return msgs;
  };
  const firstCopyData = (msgs: StreamMessage[]) => msgs.findIndex((m) => m.type === 'CopyData');

  it('rejects an unknown type byte, naming it', () => {
    const msgs = mutate((m) => m.splice(firstCopyData(m) + 1, 0, { type: 'CopyData', payload: Buffer.from('zabc') }));
    expect(() => run(15, msgs)).toThrow(/type byte 0x7a \('z'\)/);
  });

  it.each([
    ['', 'empty'],
    ['.hidden.tar', 'dot'],
    ['a/b.tar', 'slash'],
    ['a\\b.tar', 'backslash'],
  ])('rejects the archive name %j (%s)', (name) => {
    const msgs = mutate((m) => {
      m[firstCopyData(m)] = newArchiveMessage(name, '/srv/ts1');
    });
    expect(() => run(15, msgs)).toThrow(/invalid archive name/);
  });

  it('checkArchiveName accepts server names', () => {
    for (const n of ['base.tar', '16385.tar', 'base.tar.gz', 'base.tar.zst']) expect(() => checkArchiveName(n)).not.toThrow();
  });

  it('rejects data before the first archive', () => {
    const msgs = mutate((m) => m.splice(firstCopyData(m), 0, { type: 'CopyData', payload: Buffer.from('dxx') }));
    expect(() => run(15, msgs)).toThrow(/before announcing an archive/);
  });

  it('rejects an archive for a location that does not match the tablespace row', () => {
    const msgs = mutate((m) => {
      m[firstCopyData(m)] = newArchiveMessage('16385.tar', '/elsewhere');
    });
    expect(() => run(15, msgs)).toThrow(/but tablespace 1 is/);
  });

  it('rejects more archives than tablespaces', () => {
    const msgs = mutate((m) => {
      const i = m.findIndex((x) => x.type === 'CopyData' && x.payload[0] === 0x6d);
      m.splice(i, 0, newArchiveMessage('16386.tar', '/x'));
    });
    expect(() => run(15, msgs)).toThrow(/beyond the 2 tablespaces/);
  });

  it('rejects the manifest before the last archive', () => {
    const msgs = modernResponse(spcs().slice(0, 1).concat(spcs()), { manifest });
    const i = msgs.findIndex((x) => x.type === 'CopyData' && x.payload[0] === 0x6e);
    const j = msgs.findIndex((x, k) => k > i && x.type === 'CopyData' && x.payload[0] === 0x6e);
    msgs.splice(j, 0, { type: 'CopyData', payload: Buffer.from('m') });
    expect(() => run(15, msgs)).toThrow(/manifest after 1 of 3 archives/);
  });

  it('rejects a new archive after the manifest', () => {
    const msgs = mutate((m) => {
      const i = m.findIndex((x) => x.type === 'CopyDone');
      m.splice(i, 0, newArchiveMessage('x.tar', ''));
    });
    expect(() => run(15, msgs)).toThrow(/new archive after the manifest/);
  });

  it('rejects a COPY that ends with archives missing', () => {
    const msgs = modernResponse(spcs());
    const i = msgs.findIndex((x) => x.type === 'CopyData' && x.payload[0] === 0x6e && x.payload.includes(Buffer.from('base')));
    const j = msgs.findIndex((x) => x.type === 'CopyDone');
    msgs.splice(i, j - i);
    expect(() => run(15, msgs)).toThrow(/sent 1 archives for 2 tablespaces/);
  });

  it('rejects a short progress message and an empty CopyData', () => {
    expect(() =>
      run(
        15,
        mutate((m) => m.splice(firstCopyData(m) + 1, 0, { type: 'CopyData', payload: Buffer.from('p1234') })),
      ),
    ).toThrow(/progress message of 5 bytes/);
    expect(() =>
      run(
        15,
        mutate((m) => m.splice(firstCopyData(m) + 1, 0, { type: 'CopyData', payload: Buffer.alloc(0) })),
      ),
    ).toThrow(/empty CopyData/);
  });

  it('rejects a malformed new-archive message', () => {
    const msgs = mutate((m) => {
      m[firstCopyData(m)] = { type: 'CopyData', payload: Buffer.from('nbase.tar') };
    });
    expect(() => run(15, msgs)).toThrow(/missing NUL/);
  });
});

describe('BaseBackupResponseParser, shared rules', () => {
  it.each([13, 15])('rejects messages out of order (%i)', (major) => {
    const p = new BaseBackupResponseParser(major);
    expect(() => p.push({ type: 'CopyDone' })).toThrow(/unexpected CopyDone .*state start-desc/);
  });

  it('rejects a malformed LSN and timeline', () => {
    const p = new BaseBackupResponseParser(16);
    p.push(positionResult('x', 1)[0]!);
    expect(() => p.push({ type: 'DataRow', values: ['nope', '1'] })).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
    const q = new BaseBackupResponseParser(16);
    q.push(positionResult('x', 1)[0]!);
    expect(() => q.push({ type: 'DataRow', values: ['0/1', '-1'] })).toThrow(/invalid start timeline/);
  });

  it('rejects a tablespace row with only one of oid and location, and an empty tablespace list', () => {
    const head = positionResult('0/1', 1);
    const bad = [...head, ...tablespaceResult([{ oid: 1, location: null, sizeKb: null, tar: Buffer.alloc(0) }])];
    expect(() => run(15, bad)).toThrow(/only one of spcoid and spclocation/);
    expect(() => run(15, [...head, ...tablespaceResult([])])).toThrow(/no tablespace rows/);
  });

  it('finish() rejects a response that stopped early', () => {
    const p = new BaseBackupResponseParser(15);
    for (const m of modernResponse(spcs()).slice(0, 8)) p.push(m);
    expect(() => p.finish()).toThrow(/ended early/);
  });

  it('rejects anything after the final CommandComplete', () => {
    const msgs = modernResponse(spcs());
    msgs.push({ type: 'CommandComplete', tag: 'X' });
    expect(() => run(15, msgs)).toThrow(/state done/);
  });

  it('null sizes without PROGRESS', () => {
    const s = spcs().map((t) => ({ ...t, sizeKb: null }));
    const events = run(15, modernResponse(s));
    expect(events.find((e) => e.type === 'tablespaces')).toMatchObject({ tablespaces: [{ sizeKb: null }, { sizeKb: null }] });
  });
});
