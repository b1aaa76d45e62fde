/**
 * The CopyData sub-protocol of START_REPLICATION PHYSICAL: XLogData ('w') and
 * PrimaryKeepalive ('k') from the server, StandbyStatusUpdate ('r') from us.
 * Timestamps are Int64 microseconds since 2000-01-01 UTC (PostgreSQL's epoch). Pure, no I/O.
 * @module
 */
import { ProtocolError } from '../errors.js';
import { lsn, type Lsn } from '../lsn.js';
import { POSTGRES_EPOCH_OFFSET_US, ReplicationCopy } from './codes.js';
import { describeTypeByte } from './framer.js';
import { Reader } from './reader.js';

/** XLogData: a run of WAL bytes starting at `dataStart`. */
export interface XLogData {
  type: 'XLogData';
  /** WAL position of `data[0]`. */
  dataStart: Lsn;
  /** The server's WAL end (flush position) when it sent this. */
  walEnd: Lsn;
  /** Server clock, microseconds since the PostgreSQL epoch. */
  sendTimeUs: bigint;
  /** WAL bytes: a view into the received message; copy what you keep for long. */
  data: Buffer;
}

/** PrimaryKeepalive: the server's WAL end, and whether it wants a status update now. */
export interface PrimaryKeepalive {
  type: 'PrimaryKeepalive';
  walEnd: Lsn;
  sendTimeUs: bigint;
  /** Reply at once or the server drops us after `wal_sender_timeout`. */
  replyRequested: boolean;
}

/** Anything the server sends inside CopyData during START_REPLICATION. */
export type ReplicationServerMessage = XLogData | PrimaryKeepalive;

const XLOGDATA_HEADER = 1 + 8 + 8 + 8;
const KEEPALIVE_LENGTH = 1 + 8 + 8 + 1;

/**
 * Parse one CopyData payload received during START_REPLICATION.
 * @throws ProtocolError for an unknown sub-type or a wrong length.
 */
export function parseReplicationMessage(payload: Buffer): ReplicationServerMessage {
  if (payload.length === 0) throw new ProtocolError('empty CopyData during START_REPLICATION');
  const kind = payload[0]!;
  if (kind === ReplicationCopy.XLogData) {
    if (payload.length < XLOGDATA_HEADER) {
      throw new ProtocolError(`truncated XLogData: ${payload.length} bytes, the header alone is ${XLOGDATA_HEADER}`);
    }
    const r = new Reader(payload, 'XLogData');
    r.offset = 1;
    return {
      type: 'XLogData',
      dataStart: lsn(r.uint64()),
      walEnd: lsn(r.uint64()),
      sendTimeUs: r.int64(),
      data: r.rest(),
    };
  }
  if (kind === ReplicationCopy.PrimaryKeepalive) {
    if (payload.length !== KEEPALIVE_LENGTH) {
      throw new ProtocolError(`PrimaryKeepalive of ${payload.length} bytes, expected ${KEEPALIVE_LENGTH}`);
    }
    const r = new Reader(payload, 'PrimaryKeepalive');
    r.offset = 1;
    const walEnd = lsn(r.uint64());
    const sendTimeUs = r.int64();
    const reply = r.uint8();
    return { type: 'PrimaryKeepalive', walEnd, sendTimeUs, replyRequested: reply !== 0 };
  }
  throw new ProtocolError(`unknown replication message type ${describeTypeByte(kind)} inside CopyData`);
}

/** Fields of a {@link buildStandbyStatusUpdate}. */
export interface StandbyStatus {
  /** Last WAL position received and written (not necessarily durable). */
  write: Lsn | bigint;
  /** Last WAL position fsynced to disk; only this advances a slot's restart_lsn. 0 when unknown. */
  flush: Lsn | bigint;
  /** Last WAL position applied; 0 for a backup client (pg_receivewal sends 0). */
  apply: Lsn | bigint;
  /** Client clock, µs since the PostgreSQL epoch. @default now */
  clientTimeUs?: bigint;
  /** Ask the server to answer with a keepalive at once. @default false */
  replyRequested?: boolean;
}

/** Build the 34-byte StandbyStatusUpdate ('r') payload; wrap it in CopyData to send it. */
export function buildStandbyStatusUpdate(s: StandbyStatus): Buffer {
  const b = Buffer.allocUnsafe(34);
  b[0] = ReplicationCopy.StandbyStatusUpdate;
  b.writeBigUInt64BE(BigInt(s.write), 1);
  b.writeBigUInt64BE(BigInt(s.flush), 9);
  b.writeBigUInt64BE(BigInt(s.apply), 17);
  b.writeBigInt64BE(s.clientTimeUs ?? nowPgEpochUs(), 25);
  b[33] = s.replyRequested ? 1 : 0;
  return b;
}

/** Now, in microseconds since 2000-01-01 UTC. */
export function nowPgEpochUs(): bigint {
  return dateToPgEpochUs(new Date());
}

/** A Date as µs since the PostgreSQL epoch. */
export function dateToPgEpochUs(d: Date): bigint {
  return BigInt(d.getTime()) * 1000n - POSTGRES_EPOCH_OFFSET_US;
}

/** µs since the PostgreSQL epoch as a Date (millisecond precision). */
export function pgEpochUsToDate(us: bigint): Date {
  return new Date(Number((us + POSTGRES_EPOCH_OFFSET_US) / 1000n));
}
