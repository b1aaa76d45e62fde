import { describe, expect, it } from 'vitest';
import type { QueryResult, ReplicationConnectionApi } from '../../../src/connection/types.js';
import { ServerError } from '../../../src/errors.js';
import {
  createReplicationSlot,
  dropReplicationSlot,
  identifySystem,
  parseTimelineHistory,
  quoteIdentifier,
  quoteLiteral,
  readReplicationSlot,
  show,
  timelineHistory,
} from '../../../src/replication/commands.js';

/** A scripted connection: records each query and answers from `answers`. */
function fake(major: number, answer: (sql: string) => QueryResult[] | Error): ReplicationConnectionApi & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    serverMajor: major,
    serverVersionNum: major * 10000,
    query: async (sql: string) => {
      sent.push(sql);
      const a = answer(sql);
      if (a instanceof Error) throw a;
      return a;
    },
  } as unknown as ReplicationConnectionApi & { sent: string[] };
}

const result = (command: string, cols: string[], rows: (string | null)[][]): QueryResult[] => [
  { command, columns: cols.map((name) => ({ name, typeOid: 25 })), rows },
];

const serverError = (sqlState: string, message: string) => new ServerError({ severity: 'ERROR', sqlState, message, detail: 'd' });

describe('quoting', () => {
  it('doubles quotes and rejects NUL / empty', () => {
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(() => quoteIdentifier('')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    expect(() => quoteIdentifier('a\0b')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    expect(() => quoteLiteral('a\0b')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
  });
});

describe('identifySystem', () => {
  it('parses the row (int8 timeline text on 18, padded LSN)', async () => {
    const c = fake(18, () =>
      result('IDENTIFY_SYSTEM', ['systemid', 'timeline', 'xlogpos', 'dbname'], [['7345678901234567890', '3', '0/0300A1B8', null]]),
    );
    expect(await identifySystem(c)).toEqual({ systemId: '7345678901234567890', timeline: 3, xlogPos: 0x300a1b8n, dbName: null });
    expect(c.sent).toEqual(['IDENTIFY_SYSTEM']);
  });
  it('rejects malformed answers with ProtocolError', async () => {
    await expect(
      identifySystem(fake(16, () => result('IDENTIFY_SYSTEM', ['systemid', 'timeline', 'xlogpos'], [['x', '1', '0/0']]))),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    await expect(
      identifySystem(fake(16, () => result('IDENTIFY_SYSTEM', ['systemid', 'timeline', 'xlogpos'], [['1', '0', '0/0']]))),
    ).rejects.toThrow(/timeline/);
    await expect(
      identifySystem(fake(16, () => result('IDENTIFY_SYSTEM', ['systemid', 'timeline', 'xlogpos'], [['1', '1', 'zz']]))),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    await expect(identifySystem(fake(16, () => [{ command: 'IDENTIFY_SYSTEM', columns: [], rows: [] }]))).rejects.toThrow(/no result set/);
  });
});

describe('show', () => {
  it('sends SHOW and returns the text', async () => {
    const c = fake(13, () => result('SHOW', ['wal_segment_size'], [['16MB']]));
    expect(await show(c, 'wal_segment_size')).toBe('16MB');
    expect(c.sent).toEqual(['SHOW wal_segment_size']);
  });
  it('refuses names that are not setting names', async () => {
    const c = fake(13, () => []);
    await expect(show(c, 'x; DROP')).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    expect(c.sent).toEqual([]);
  });
});

describe('timeline history', () => {
  const content = '1\t0/3000000\tno recovery target specified\n\n# comment\n2\t0/05000A0\tafter promote\n';
  it('parses history lines', () => {
    expect(parseTimelineHistory(content)).toEqual([
      { parentTli: 1, switchLsn: 0x3000000n, reason: 'no recovery target specified' },
      { parentTli: 2, switchLsn: 0x5000a0n, reason: 'after promote' },
    ]);
    expect(() => parseTimelineHistory('x\ty')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_PROTOCOL' }));
  });
  it('runs TIMELINE_HISTORY and checks the file name', async () => {
    const c = fake(15, () => result('TIMELINE_HISTORY', ['filename', 'content'], [['00000003.history', content]]));
    const h = await timelineHistory(c, 3);
    expect(c.sent).toEqual(['TIMELINE_HISTORY 3']);
    expect(h.fileName).toBe('00000003.history');
    expect(h.content.toString()).toBe(content);
    expect(h.entries).toHaveLength(2);
    await expect(timelineHistory(c, 4)).rejects.toThrow(/file name/);
    await expect(timelineHistory(c, 0)).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
  });
  it('explains the error for timeline 1', async () => {
    const c = fake(15, () => serverError('58P01', 'could not open file "pg_wal/00000001.history"'));
    await expect(timelineHistory(c, 1)).rejects.toThrow(/Timeline 1 is the first timeline/);
  });
});

describe('slots', () => {
  const created = () =>
    result('CREATE_REPLICATION_SLOT', ['slot_name', 'consistent_point', 'snapshot_name', 'output_plugin'], [['s1', '0/0', null, null]]);
  it('uses the keyword syntax on 13/14 and the parenthesized one on 15+', async () => {
    for (const [major, expected] of [
      [13, 'CREATE_REPLICATION_SLOT "s1" PHYSICAL RESERVE_WAL'],
      [14, 'CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL RESERVE_WAL'],
      [15, 'CREATE_REPLICATION_SLOT "s1" PHYSICAL (RESERVE_WAL)'],
      [18, 'CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL (RESERVE_WAL)'],
    ] as const) {
      const c = fake(major, created);
      const r = await createReplicationSlot(c, { name: 's1', temporary: major === 14 || major === 18 });
      expect(c.sent).toEqual([expected]);
      expect(r).toEqual({ slotName: 's1', consistentPoint: 0n });
    }
    const c = fake(16, created);
    await createReplicationSlot(c, { name: 'x"y', reserveWal: false });
    expect(c.sent).toEqual(['CREATE_REPLICATION_SLOT "x""y" PHYSICAL']);
  });
  it('adds advice to a duplicate slot error and keeps the fields', async () => {
    const c = fake(16, () => serverError('42710', 'replication slot "s1" already exists'));
    const err = await createReplicationSlot(c, { name: 's1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('42710');
    expect((err as ServerError).detail).toBe('d');
    expect((err as Error).message).toMatch(/already exists[\s\S]*pg_drop_replication_slot/);
  });
  it('drops with and without WAIT, with advice for a missing or busy slot', async () => {
    const c = fake(16, () => [{ command: 'DROP_REPLICATION_SLOT', columns: [], rows: [] }]);
    await dropReplicationSlot(c, 's1');
    await dropReplicationSlot(c, 's1', { wait: true });
    expect(c.sent).toEqual(['DROP_REPLICATION_SLOT "s1"', 'DROP_REPLICATION_SLOT "s1" WAIT']);
    await expect(
      dropReplicationSlot(
        fake(16, () => serverError('42704', 'replication slot "s1" does not exist')),
        's1',
      ),
    ).rejects.toThrow(/no replication slot named "s1"/);
    await expect(
      dropReplicationSlot(
        fake(16, () => serverError('55006', 'replication slot "s1" is active')),
        's1',
      ),
    ).rejects.toThrow(/in use/);
  });
  it('reads a slot on 15+, null when missing, refuses on 13/14', async () => {
    const cols = ['slot_type', 'restart_lsn', 'restart_tli'];
    const c = fake(15, () => result('READ_REPLICATION_SLOT', cols, [['physical', '0/1000028', '1']]));
    expect(await readReplicationSlot(c, 's1')).toEqual({ slotType: 'physical', restartLsn: 0x1000028n, restartTli: 1 });
    expect(c.sent).toEqual(['READ_REPLICATION_SLOT "s1"']);
    expect(
      await readReplicationSlot(
        fake(17, () => result('READ_REPLICATION_SLOT', cols, [[null, null, null]])),
        'x',
      ),
    ).toBeNull();
    expect(
      await readReplicationSlot(
        fake(17, () => result('READ_REPLICATION_SLOT', cols, [['physical', null, null]])),
        'x',
      ),
    ).toEqual({ slotType: 'physical', restartLsn: null, restartTli: null });
    await expect(
      readReplicationSlot(
        fake(14, () => []),
        's1',
      ),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
  });
});
