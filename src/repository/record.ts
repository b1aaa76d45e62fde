/**
 * The catalog record of one backup (`catalog/<id>.json`): written last, after every object of the backup
 * is stored, so that its existence is the commit point. The JSON is documented in docs/repository.md and
 * stable: fields may be added, none removed or changed in meaning. Pure.
 * @module
 */
import { RepositoryError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../lsn.js';
import { isBackupId, type BackupType } from './backup-id.js';
import { encodeRecord, RecordReader } from './json.js';
import { catalogKey } from './layout.js';

export type { BackupType } from './backup-id.js';

/** How the WAL that makes the backup consistent was included (`-X`). */
export type BackupWalMethod = 'stream' | 'fetch' | 'none';

/** One stored object of a backup. */
export interface BackupObject {
  /** File name inside the backup (`base.tar.gz`, `16384.tar`, `pg_wal.tar`, `backup_manifest`). */
  name: string;
  /** Bytes stored. */
  size: number;
  /** SHA-256 of the stored bytes, lower-case hex. */
  sha256: string;
}

/** A committed backup, as the catalog records it. */
export interface BackupRecord {
  /** The backup id (see `backupIdFor`): start time and type. */
  id: string;
  type: BackupType;
  /** The backup an incremental one was taken against; `null` for a full backup. */
  parent: string | null;
  /** Always `complete`: only finished backups get a record. */
  status: 'complete';
  /** When the run started (before the checkpoint). */
  startTime: Date;
  /** When the last object was stored. */
  endTime: Date;
  /** Where recovery must start (the checkpoint's redo position). */
  startLsn: Lsn;
  /** Where recovery may end at the earliest for the backup to be consistent. */
  endLsn: Lsn;
  /** Timeline at the start. */
  timeline: number;
  /** Timeline at the end (differs only when the server was promoted during the backup). */
  endTimeline: number;
  /** The server's version, `17.2`. */
  postgresVersion: string;
  /** The cluster's system identifier. */
  systemIdentifier: string;
  /** Bytes the server sent (the tablespace archives, WAL included when streamed or fetched). */
  originalSize: number;
  /** Bytes stored in the repository (every object of the backup). */
  storedSize: number;
  /** `none`, or the compression in pg_basebackup's syntax (`gzip:level=6`, `server-zstd`). */
  compression: string;
  /** Milliseconds from the start of the run to the end of the last upload. */
  durationMs: number;
  /** How the WAL needed for consistency is included. */
  wal: BackupWalMethod;
  /** The backup label. */
  label: string;
  /** Every object stored under `backups/<id>/`. */
  objects: BackupObject[];
}

/** A field of a {@link BackupRecord} as JSON: a date as ISO 8601 in UTC, a position as `X/X`. */
type JsonField<T> = T extends Date | Lsn ? string : T;

/**
 * A {@link BackupRecord} as JSON (what `catalog/<id>.json` holds, and `pgbb list --json` prints): the same
 * fields, dates as ISO 8601 in UTC and positions as `X/X`. Derived from the record's type, so that a field
 * added there must be written by {@link backupRecordJson} and read by {@link decodeBackupRecord} too.
 */
export interface BackupRecordJson extends BackupRecordJsonFields {}
type BackupRecordJsonFields = { [K in keyof BackupRecord]: JsonField<BackupRecord[K]> };

/** The version of the record's JSON, written in its `formatVersion`. */
const RECORD_FORMAT_VERSION = 1;

/** The record's bytes. */
export function encodeBackupRecord(record: BackupRecord): Buffer {
  return encodeRecord({ formatVersion: RECORD_FORMAT_VERSION, ...backupRecordJson(record) });
}

/** The record as JSON values (dates in ISO 8601, positions as `X/X`), in the documented field order. */
export function backupRecordJson(record: BackupRecord): BackupRecordJson {
  return {
    id: record.id,
    type: record.type,
    parent: record.parent,
    status: record.status,
    startTime: record.startTime.toISOString(),
    endTime: record.endTime.toISOString(),
    startLsn: formatLsn(record.startLsn),
    endLsn: formatLsn(record.endLsn),
    timeline: record.timeline,
    endTimeline: record.endTimeline,
    postgresVersion: record.postgresVersion,
    systemIdentifier: record.systemIdentifier,
    originalSize: record.originalSize,
    storedSize: record.storedSize,
    compression: record.compression,
    durationMs: record.durationMs,
    wal: record.wal,
    label: record.label,
    objects: record.objects.map((o) => ({ name: o.name, size: o.size, sha256: o.sha256 })),
  };
}

/** Decodes a record read from `catalog/<expectedId>.json`; throws {@link RepositoryError} when it is not valid. */
export function decodeBackupRecord(bytes: Uint8Array | string, expectedId: string): BackupRecord {
  const key = catalogKey(expectedId);
  const r = RecordReader.parse(key, bytes);
  const version = r.integer('formatVersion', 1);
  if (version > RECORD_FORMAT_VERSION) {
    throw new RepositoryError(`the catalog record "${key}" has format version ${version}, newer than this pg-basebackup reads`, {
      key,
      advice: 'upgrade pg-basebackup to read this repository',
    });
  }
  const id = r.string('id');
  if (id !== expectedId) r.fail('id', `"${id}" is not the id its key names (${expectedId})`);
  const type = r.oneOf('type', ['full', 'incremental'] as const);
  const parent = r.optionalString('parent') ?? null;
  if (type === 'incremental' && (parent === null || !isBackupId(parent))) r.fail('parent', 'an incremental backup names its parent');
  if (type === 'full' && parent !== null) r.fail('parent', 'a full backup has none');
  const lsnField = (field: string): Lsn => {
    try {
      return parseLsn(r.string(field));
    } catch (cause) {
      throw new RepositoryError(`the repository object "${key}" has an invalid "${field}"`, { key, cause });
    }
  };
  return {
    id,
    type,
    parent,
    status: r.oneOf('status', ['complete'] as const),
    startTime: r.date('startTime'),
    endTime: r.date('endTime'),
    startLsn: lsnField('startLsn'),
    endLsn: lsnField('endLsn'),
    timeline: r.integer('timeline', 1),
    endTimeline: r.integer('endTimeline', 1),
    postgresVersion: r.string('postgresVersion'),
    systemIdentifier: r.string('systemIdentifier'),
    originalSize: r.integer('originalSize'),
    storedSize: r.integer('storedSize'),
    compression: r.string('compression'),
    durationMs: r.integer('durationMs'),
    wal: r.oneOf('wal', ['stream', 'fetch', 'none'] as const),
    label: r.text('label'),
    objects: r.array('objects').map((o) => ({ name: o.string('name'), size: o.integer('size'), sha256: o.string('sha256') })),
  };
}

/** `server_version_num` as PostgreSQL prints its version (`170002` → `17.2`). */
export function postgresVersionText(versionNum: number): string {
  return `${Math.floor(versionNum / 10000)}.${versionNum % 10000}`;
}
