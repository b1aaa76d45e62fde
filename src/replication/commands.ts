/**
 * Replication commands (PostgreSQL "Streaming Replication Protocol"), typed, over any
 * {@link ReplicationConnectionApi}. Each one runs one simple query and checks the shape of
 * the answer; syntax differences between server versions are handled here.
 * @module
 */
import type { QueryResult, ReplicationConnectionApi } from '../connection/types.js';
import {
  ConfigError,
  OPTIONAL_SERVER_FIELDS,
  ProtocolError,
  ServerError,
  UnsupportedServerError,
  type ServerMessageFields,
} from '../errors.js';
import { parseLsn } from '../lsn.js';
import { SqlState } from '../protocol/codes.js';
import { timelineHistoryFileName } from '../wal-segments.js';
import type {
  CommandOptions,
  CreatedReplicationSlot,
  CreateReplicationSlotOptions,
  DropReplicationSlotOptions,
  IdentifySystemResult,
  ReplicationSlotInfo,
  TimelineHistory,
  TimelineHistoryEntry,
} from './types.js';

/**
 * Quote an identifier for a replication command: `"` + name with `"` doubled + `"`.
 * @throws ConfigError for an empty name or one containing NUL (PostgreSQL would truncate it).
 * @example
 * ```ts
 * quoteIdentifier('my"slot') // '"my""slot"'
 * ```
 */
export function quoteIdentifier(name: string): string {
  if (name === '') throw new ConfigError('an identifier (slot name) cannot be empty');
  if (name.includes('\0')) throw new ConfigError('an identifier (slot name) cannot contain a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quote a string literal for a replication command: `'` + text with `'` doubled + `'`.
 * The replication grammar has no backslash escapes, so nothing else needs escaping.
 * @throws ConfigError when the text contains NUL.
 * @example
 * ```ts
 * quoteLiteral("it's") // "'it''s'"
 * ```
 */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new ConfigError('a string option cannot contain a NUL character');
  return `'${text.replaceAll("'", "''")}'`;
}

/** A copy of `err` with `advice` appended to its message (all fields kept). */
export function withAdvice(err: ServerError, advice: string): ServerError {
  const fields: ServerMessageFields = { severity: err.severity, sqlState: err.sqlState, message: err.serverMessage };
  for (const k of OPTIONAL_SERVER_FIELDS) {
    const v = err[k];
    if (v !== undefined) fields[k] = v;
  }
  const copy = new ServerError(fields, advice);
  if (err.stack !== undefined) copy.stack = err.stack;
  return copy;
}

function signalOf(options: CommandOptions): { signal?: AbortSignal } {
  return options.signal !== undefined ? { signal: options.signal } : {};
}

/** The single result set of a command that returns rows. */
function oneResult(results: QueryResult[], command: string, columns: readonly string[]): QueryResult {
  const r = results.find((x) => x.columns.length > 0);
  if (r === undefined) throw new ProtocolError(`${command} returned no result set`);
  for (const c of columns) {
    if (!r.columns.some((x) => x.name === c)) {
      throw new ProtocolError(`${command} returned no "${c}" column (got ${r.columns.map((x) => x.name).join(', ')})`);
    }
  }
  return r;
}

function column(r: QueryResult, row: number, name: string): string | null {
  const i = r.columns.findIndex((c) => c.name === name);
  return r.rows[row]?.[i] ?? null;
}

function requireValue(r: QueryResult, name: string, command: string): string {
  const v = column(r, 0, name);
  if (v === null) throw new ProtocolError(`${command} returned NULL for "${name}"`);
  return v;
}

function parseTimeline(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > 0xffffffff) {
    throw new ProtocolError(`${what}: invalid timeline ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * `IDENTIFY_SYSTEM`: system identifier, timeline, WAL position.
 * @example
 * ```ts
 * const { systemId, timeline, xlogPos } = await identifySystem(conn);
 * ```
 */
export async function identifySystem(conn: ReplicationConnectionApi, options: CommandOptions = {}): Promise<IdentifySystemResult> {
  const r = oneResult(await conn.query('IDENTIFY_SYSTEM', signalOf(options)), 'IDENTIFY_SYSTEM', ['systemid', 'timeline', 'xlogpos']);
  if (r.rows.length !== 1) throw new ProtocolError(`IDENTIFY_SYSTEM returned ${r.rows.length} rows, expected 1`);
  const systemId = requireValue(r, 'systemid', 'IDENTIFY_SYSTEM');
  if (!/^\d+$/.test(systemId)) throw new ProtocolError(`IDENTIFY_SYSTEM returned an invalid systemid ${JSON.stringify(systemId)}`);
  return {
    systemId,
    // int4 up to 17, int8 in 18: both arrive as decimal text.
    timeline: parseTimeline(requireValue(r, 'timeline', 'IDENTIFY_SYSTEM'), 'IDENTIFY_SYSTEM'),
    xlogPos: parseLsn(requireValue(r, 'xlogpos', 'IDENTIFY_SYSTEM'), 'server'),
    dbName: column(r, 0, 'dbname'),
  };
}

/**
 * `SHOW name` (a server setting's current value, with its unit: `16MB`).
 * @throws ConfigError for a name that is not a plain (optionally dotted) setting name.
 */
export async function show(conn: ReplicationConnectionApi, name: string, options: CommandOptions = {}): Promise<string> {
  // The replication grammar takes `SHOW var_name` (identifiers joined by dots); allowing only
  // plain names keeps anything else out of the command text.
  if (!/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$/.test(name)) {
    throw new ConfigError(`invalid setting name ${JSON.stringify(name)}`);
  }
  const results = await conn.query(`SHOW ${name}`, signalOf(options));
  const r = results.find((x) => x.columns.length > 0);
  const v = r?.rows[0]?.[0];
  if (v === undefined || v === null) throw new ProtocolError(`SHOW ${name} returned no value`);
  return v;
}

/**
 * Parse a timeline history file: `parentTLI<TAB>switchLSN<TAB>reason` lines; `#` comments and
 * blank lines skipped (as PostgreSQL's `readTimeLineHistory`).
 * @throws ProtocolError for a line that does not parse.
 */
export function parseTimelineHistory(content: string): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  for (const [i, raw] of content.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s+(.*))?$/.exec(trimmed);
    if (m === null) throw new ProtocolError(`invalid line ${i + 1} in timeline history: ${JSON.stringify(line)}`);
    entries.push({
      parentTli: parseTimeline(m[1]!, `timeline history line ${i + 1}`),
      switchLsn: parseLsn(m[2]!, 'server'),
      reason: m[3] ?? '',
    });
  }
  return entries;
}

/**
 * `TIMELINE_HISTORY tli`: the history file of timeline `tli` (timelines 2 and up; timeline 1
 * has none and the server answers with an error).
 */
export async function timelineHistory(conn: ReplicationConnectionApi, tli: number, options: CommandOptions = {}): Promise<TimelineHistory> {
  if (!Number.isInteger(tli) || tli < 1 || tli > 0xffffffff) throw new ConfigError(`invalid timeline ${tli}`);
  let results: QueryResult[];
  try {
    results = await conn.query(`TIMELINE_HISTORY ${tli}`, signalOf(options));
  } catch (err) {
    if (err instanceof ServerError && tli === 1) {
      throw withAdvice(err, 'Timeline 1 is the first timeline and has no history file.');
    }
    throw err;
  }
  const r = oneResult(results, 'TIMELINE_HISTORY', ['filename', 'content']);
  const fileName = requireValue(r, 'filename', 'TIMELINE_HISTORY');
  if (fileName !== timelineHistoryFileName(tli)) {
    throw new ProtocolError(`TIMELINE_HISTORY ${tli} returned file name ${JSON.stringify(fileName)}`);
  }
  // Declared bytea before 18 but sent raw (not hex), text in 18: the file is ASCII either way.
  const text = requireValue(r, 'content', 'TIMELINE_HISTORY');
  return { fileName, content: Buffer.from(text, 'utf8'), entries: parseTimelineHistory(text) };
}

/**
 * `CREATE_REPLICATION_SLOT "name" [TEMPORARY] PHYSICAL ...`, with the option syntax of the
 * server's version: `RESERVE_WAL` on 13/14, `(RESERVE_WAL)` on 15+.
 * @throws ServerError with advice when the slot already exists (42710).
 */
export async function createReplicationSlot(
  conn: ReplicationConnectionApi,
  options: CreateReplicationSlotOptions,
): Promise<CreatedReplicationSlot> {
  const name = options.name;
  const reserve = options.reserveWal ?? true;
  let sql = `CREATE_REPLICATION_SLOT ${quoteIdentifier(name)}${options.temporary === true ? ' TEMPORARY' : ''} PHYSICAL`;
  if (reserve) sql += conn.serverMajor >= 15 ? ' (RESERVE_WAL)' : ' RESERVE_WAL';
  let results: QueryResult[];
  try {
    results = await conn.query(sql, signalOf(options));
  } catch (err) {
    if (err instanceof ServerError && err.sqlState === SqlState.DuplicateObject) {
      throw withAdvice(
        err,
        `A replication slot named "${name}" already exists: use it without creating it, ` +
          `drop it first (SELECT pg_drop_replication_slot('${name.replaceAll("'", "''")}')), or choose another name.`,
      );
    }
    throw err;
  }
  const r = oneResult(results, 'CREATE_REPLICATION_SLOT', ['slot_name']);
  const point = column(r, 0, 'consistent_point');
  return {
    slotName: requireValue(r, 'slot_name', 'CREATE_REPLICATION_SLOT'),
    consistentPoint: point === null ? null : parseLsn(point, 'server'),
  };
}

/**
 * `DROP_REPLICATION_SLOT "name" [WAIT]`.
 * @throws ServerError with advice when the slot does not exist (42704) or is in use (55006).
 */
export async function dropReplicationSlot(
  conn: ReplicationConnectionApi,
  name: string,
  options: DropReplicationSlotOptions = {},
): Promise<void> {
  const sql = `DROP_REPLICATION_SLOT ${quoteIdentifier(name)}${options.wait === true ? ' WAIT' : ''}`;
  try {
    await conn.query(sql, signalOf(options));
  } catch (err) {
    if (err instanceof ServerError && err.sqlState === SqlState.UndefinedObject) {
      throw withAdvice(
        err,
        `There is no replication slot named "${name}": check the name ` +
          '(SELECT slot_name FROM pg_replication_slots) — a temporary slot disappears with its connection.',
      );
    }
    if (err instanceof ServerError && err.sqlState === SqlState.ObjectInUse) {
      throw withAdvice(
        err,
        `Replication slot "${name}" is in use by another connection: stop that client ` +
          '(see pg_stat_replication), or drop with wait: true to wait for it to go away.',
      );
    }
    throw err;
  }
}

/**
 * `READ_REPLICATION_SLOT name` (PostgreSQL 15+): `null` when no such slot exists.
 * @throws UnsupportedServerError on 13 and 14, which lack the command.
 */
export async function readReplicationSlot(
  conn: ReplicationConnectionApi,
  name: string,
  options: CommandOptions = {},
): Promise<ReplicationSlotInfo | null> {
  if (conn.serverMajor < 15) {
    throw new UnsupportedServerError(
      `READ_REPLICATION_SLOT needs PostgreSQL 15 or newer; this server is ${conn.serverMajor}: ` +
        'query pg_replication_slots over a normal connection instead',
    );
  }
  const r = oneResult(await conn.query(`READ_REPLICATION_SLOT ${quoteIdentifier(name)}`, signalOf(options)), 'READ_REPLICATION_SLOT', [
    'slot_type',
    'restart_lsn',
    'restart_tli',
  ]);
  const slotType = column(r, 0, 'slot_type');
  if (slotType === null) return null;
  const restart = column(r, 0, 'restart_lsn');
  const tli = column(r, 0, 'restart_tli');
  return {
    slotType,
    restartLsn: restart === null ? null : parseLsn(restart, 'server'),
    restartTli: tli === null ? null : parseTimeline(tli, 'READ_REPLICATION_SLOT'),
  };
}

/** Options of {@link uploadManifest}. */
export interface UploadManifestOptions extends CommandOptions {
  /** Size of each CopyData message, in bytes. @default 65536 */
  chunkBytes?: number;
}

/**
 * `UPLOAD_MANIFEST` (PostgreSQL 17+): hand the server the `backup_manifest` of a prior backup, the
 * first half of an incremental backup. The server keeps it for the rest of the session; the
 * next `BASE_BACKUP (INCREMENTAL)` on the **same connection** is taken relative to it.
 *
 * The command answers with CopyInResponse; the manifest goes as CopyData chunks, then CopyDone,
 * and the server replies CommandComplete once it has parsed the manifest (the system identifier
 * and manifest version are checked then, see basebackup_incremental.c).
 * @throws UnsupportedServerError before sending anything on 13–16.
 * @throws ServerError with advice when the server rejects the manifest (another cluster, a
 *   version 1 manifest, a damaged file).
 * @example
 * ```ts
 * await uploadManifest(conn, await readFile('/backups/full/backup_manifest'));
 * ```
 */
export async function uploadManifest(
  conn: ReplicationConnectionApi,
  manifest: Uint8Array,
  options: UploadManifestOptions = {},
): Promise<void> {
  if (conn.serverMajor < 17) {
    throw new UnsupportedServerError(
      `incremental backups need PostgreSQL 17 or newer; this server is ${conn.serverMajor}: take a full backup instead`,
    );
  }
  const chunkBytes = options.chunkBytes ?? 65536;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new ConfigError(`invalid chunkBytes ${String(chunkBytes)}`);
  const data = Buffer.from(manifest.buffer, manifest.byteOffset, manifest.byteLength);
  let copied = false;
  let completed = false;
  try {
    for await (const m of conn.stream('UPLOAD_MANIFEST', signalOf(options))) {
      if (m.type === 'CopyInResponse') {
        if (copied) throw new ProtocolError('UPLOAD_MANIFEST: a second CopyInResponse');
        copied = true;
        for (let off = 0; off < data.length; off += chunkBytes) {
          // Views, not copies: the connection writes large payloads without copying.
          if (!conn.sendCopyData(data.subarray(off, Math.min(off + chunkBytes, data.length)))) await conn.drained();
        }
        conn.sendCopyDone();
      } else if (m.type === 'CommandComplete') {
        completed = true;
      } else {
        throw new ProtocolError(`UPLOAD_MANIFEST: unexpected ${m.type}`);
      }
    }
  } catch (err) {
    if (err instanceof ServerError) throw withIncrementalAdvice(err);
    throw err;
  }
  if (!copied || !completed) throw new ProtocolError('UPLOAD_MANIFEST ended without a CopyInResponse and CommandComplete');
}

/**
 * Add advice to the server errors of an incremental backup (`UPLOAD_MANIFEST`, `BASE_BACKUP
 * (INCREMENTAL)`); other errors are returned unchanged. The messages matched are those of
 * PostgreSQL 17/18's basebackup.c and basebackup_incremental.c.
 * @example
 * ```ts
 * try { await session.result() } catch (err) { throw err instanceof ServerError ? withIncrementalAdvice(err) : err }
 * ```
 */
export function withIncrementalAdvice(err: ServerError): ServerError {
  const m = err.serverMessage;
  let advice: string | undefined;
  if (/unless WAL summarization is enabled/i.test(m)) {
    advice =
      'incremental backups require summarize_wal = on on the server: set it and reload, then take a new full backup ' +
      '(ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf();)';
  } else if (/system identifier in backup manifest/i.test(m)) {
    advice =
      'the manifest given for the incremental backup belongs to a backup of another cluster: ' +
      'use the backup_manifest of an earlier backup of this server';
  } else if (/manifest version 1 does not support incremental/i.test(m)) {
    advice =
      'the manifest comes from a PostgreSQL 16 or older backup, which cannot anchor an incremental backup: ' +
      'take a new full backup of this server first';
  } else if (/WAL summaries are required/i.test(m)) {
    advice =
      'the server has no WAL summaries for the whole time since the prior backup started ' +
      '(summarize_wal was off then, or the summaries were removed after wal_summary_keep_time): take a new full backup';
  } else if (/not in this server's history|manifest requires WAL from/i.test(m)) {
    advice =
      "the prior backup does not match this server's timeline history: use the manifest of an earlier backup " +
      'of this server (on its current timeline history), or take a new full backup';
  } else if (/manifest/i.test(m)) {
    advice = 'the server could not use the uploaded manifest: give the backup_manifest file of the prior backup, unmodified';
  }
  return advice === undefined ? err : withAdvice(err, advice);
}
