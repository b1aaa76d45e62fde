// Builders of BASE_BACKUP response message sequences, as the server sends them
// (basebackup.c for 13/14, basebackup_copy.c for 15+), for unit tests.
import type { ColumnDescription, StreamMessage } from '../../../src/protocol/messages.js';

const col = (name: string, typeOid: number): ColumnDescription => ({
  name,
  tableOid: 0,
  columnAttr: 0,
  typeOid,
  typeSize: -1,
  typeModifier: -1,
  format: 0,
});

export interface FixtureTablespace {
  oid: number | null;
  location: string | null;
  sizeKb: number | null;
  tar: Buffer;
}

export interface FixtureOptions {
  startLsn?: string;
  endLsn?: string;
  tli?: number;
  manifest?: Buffer | undefined;
  /** Cut every archive's bytes into the payloads of its CopyData messages (default: one message). */
  split?: (archive: Buffer) => Buffer[];
  /** 15+: progress messages after each archive (as bbsink_copystream_end_archive does). */
  progress?: boolean;
}

export function positionResult(lsn: string, tli: number): StreamMessage[] {
  return [
    { type: 'RowDescription', columns: [col('recptr', 25), col('tli', 20)] },
    { type: 'DataRow', values: [lsn, String(tli)] },
    { type: 'CommandComplete', tag: 'SELECT' },
  ];
}

export function tablespaceResult(spcs: FixtureTablespace[]): StreamMessage[] {
  return [
    { type: 'RowDescription', columns: [col('spcoid', 26), col('spclocation', 25), col('size', 20)] },
    ...spcs.map(
      (s): StreamMessage => ({
        type: 'DataRow',
        values: [s.oid === null ? null : String(s.oid), s.location, s.sizeKb === null ? null : String(s.sizeKb)],
      }),
    ),
    { type: 'CommandComplete', tag: 'SELECT' },
  ];
}

/** The archive's CopyData payloads: the server never sends an empty one. */
function chunks(archive: Buffer, o: FixtureOptions): Buffer[] {
  return (o.split ?? ((b) => [b]))(archive).filter((c) => c.length > 0);
}

const typed = (type: string, body: Buffer = Buffer.alloc(0)): StreamMessage => ({
  type: 'CopyData',
  payload: Buffer.concat([Buffer.from(type, 'latin1'), body]),
});

export function newArchiveMessage(name: string, location: string): StreamMessage {
  return typed('n', Buffer.from(`${name}\0${location}\0`));
}

export function progressMessage(bytes: number): StreamMessage {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(bytes));
  return typed('p', b);
}

/** A 13/14 response: one COPY per tablespace, then one for the manifest. */
export function legacyResponse(spcs: FixtureTablespace[], o: FixtureOptions = {}): StreamMessage[] {
  const out: StreamMessage[] = [...positionResult(o.startLsn ?? '0/2000028', o.tli ?? 1), ...tablespaceResult(spcs)];
  for (const s of spcs) {
    out.push({ type: 'CopyOutResponse', format: 0, columnFormats: [] });
    for (const c of chunks(s.tar, o)) out.push({ type: 'CopyData', payload: c });
    out.push({ type: 'CopyDone' });
  }
  if (o.manifest) {
    out.push({ type: 'CopyOutResponse', format: 0, columnFormats: [] });
    out.push({ type: 'CopyData', payload: o.manifest });
    out.push({ type: 'CopyDone' });
  }
  out.push(...positionResult(o.endLsn ?? '0/2000100', o.tli ?? 1), { type: 'CommandComplete', tag: 'BASE_BACKUP' });
  return out;
}

/** A 15+ response: one COPY with n/d/p/m CopyData. */
export function modernResponse(spcs: FixtureTablespace[], o: FixtureOptions = {}): StreamMessage[] {
  const out: StreamMessage[] = [
    ...positionResult(o.startLsn ?? '0/2000028', o.tli ?? 1),
    ...tablespaceResult(spcs),
    { type: 'CopyOutResponse', format: 0, columnFormats: [] },
  ];
  let done = 0;
  for (const s of spcs) {
    out.push(newArchiveMessage(s.oid === null ? 'base.tar' : `${s.oid}.tar`, s.location ?? ''));
    for (const c of chunks(s.tar, o)) out.push(typed('d', c));
    done += s.tar.length;
    if (o.progress !== false) out.push(progressMessage(done));
  }
  if (o.manifest) {
    out.push(typed('m'));
    out.push(typed('d', o.manifest.subarray(0, 5)), typed('d', o.manifest.subarray(5)));
  }
  out.push({ type: 'CopyDone' });
  out.push(...positionResult(o.endLsn ?? '0/2000100', o.tli ?? 1), { type: 'CommandComplete', tag: 'BASE_BACKUP' });
  return out;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
