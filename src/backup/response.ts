/**
 * The BASE_BACKUP response as a pure state machine: it consumes the messages
 * `ReplicationConnectionApi.stream()` yields and produces typed backup events. No I/O.
 *
 * What the server sends (basebackup.c / basebackup_copy.c):
 * ```
 * start row       RowDescription(recptr, tli) DataRow CommandComplete "SELECT"
 * tablespaces     RowDescription(spcoid, spclocation, size) DataRow* CommandComplete "SELECT"
 * 13/14 data      per tablespace row, in row order: CopyOutResponse, CopyData*, CopyDone
 *                 then, with MANIFEST: CopyOutResponse, CopyData* (manifest), CopyDone
 * 15+ data        one CopyOutResponse; each CopyData starts with a type byte:
 *                 'n' name\0 location\0 (new archive), 'd' bytes, 'p' uint64 bytes done,
 *                 'm' manifest follows ('d' then carries manifest bytes); then CopyDone
 * end row         RowDescription(recptr, tli) DataRow CommandComplete "SELECT"
 * completion      CommandComplete "BASE_BACKUP" (13+), or an ErrorResponse (thrown by the
 *                 connection, not seen here)
 * ```
 *
 * States (each names what the next message must be):
 * ```
 * start-desc → start-row → start-complete → spc-desc → spc-rows ─┬─ (13/14) between ⇄ archive
 *                                                                 │        between → manifest → between
 *                                                                 └─ (15+) copy-response → copy
 * between | copy ─(RowDescription | CopyDone)→ end-desc → end-row → end-complete → completion → done
 * ```
 * @module
 */
import { ProtocolError } from '../errors.js';
import { parseLsn, type Lsn } from '../lsn.js';
import { BackupCopy } from '../protocol/codes.js';
import type { StreamMessage } from '../protocol/messages.js';

/** One row of the tablespace header: a user tablespace, or the data directory (oid and location null). */
export interface TablespaceRow {
  /** Tablespace OID; `null` for the data directory (always the last row). */
  oid: number | null;
  /** Server-side directory; `null` for the data directory. */
  location: string | null;
  /** Estimated size in kB; `null` when PROGRESS was not requested. */
  sizeKb: number | null;
}

/** What {@link BaseBackupResponseParser.push} produces. */
export type BackupResponseEvent =
  | { type: 'start'; lsn: Lsn; timeline: number }
  | { type: 'tablespaces'; tablespaces: TablespaceRow[] }
  | {
      type: 'archive-start';
      /** `base.tar` for the data directory, `<oid>.tar` otherwise (15+: the name the server sent). */
      name: string;
      /** Position in the tablespace rows (and in the archive sequence). */
      index: number;
      tablespaceOid: number | null;
      location: string | null;
    }
  /** A view into the received CopyData: copy it if it is kept. */
  | { type: 'archive-data'; data: Buffer }
  | {
      type: 'archive-end';
      name: string;
      index: number;
      /** Whether the server ended the tar with its two zero blocks (15+ does, 13/14 do not). */
      serverTerminated: boolean;
    }
  /**
   * Bytes of archive data the server has produced so far: from `p` messages on 15+,
   * counted from the received bytes on 13/14 (emitted at each archive end).
   */
  | { type: 'progress'; bytesDone: number }
  | { type: 'manifest-start' }
  | { type: 'manifest-data'; data: Buffer }
  | { type: 'manifest-end' }
  | { type: 'end'; lsn: Lsn; timeline: number }
  /** The final CommandComplete; nothing follows but ReadyForQuery. */
  | { type: 'complete' };

/**
 * The parser's states, each naming what the next message must be:
 * ```
 * start-desc → start-row → start-complete → spc-desc → spc-rows ─┬─ (13/14) between ⇄ archive
 *                                                                 │        between → manifest → between
 *                                                                 └─ (15+) copy-response → copy
 * between | copy ─(RowDescription | CopyDone)→ end-desc → end-row → end-complete → completion → done
 * ```
 */
export type BackupResponseState =
  | 'start-desc'
  | 'start-row'
  | 'start-complete'
  | 'spc-desc'
  | 'spc-rows'
  | 'between'
  | 'archive'
  | 'manifest'
  | 'copy-response'
  | 'copy'
  | 'end-desc'
  | 'end-row'
  | 'end-complete'
  | 'completion'
  | 'done';

function describe(msg: StreamMessage): string {
  if (msg.type === 'CommandComplete') return `CommandComplete "${msg.tag}"`;
  if (msg.type === 'CopyData') {
    return msg.payload.length > 0 ? `CopyData (type byte 0x${msg.payload[0]!.toString(16).padStart(2, '0')})` : 'empty CopyData';
  }
  return msg.type;
}

function parseInteger(text: string | null, what: string): number {
  if (text === null || !/^\d+$/.test(text)) {
    throw new ProtocolError(`the server sent an invalid ${what} ${JSON.stringify(text)} in the BASE_BACKUP response`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new ProtocolError(`the server sent an out-of-range ${what} ${text}`);
  return n;
}

/**
 * Reject archive names that could escape a target directory or hide a file: the same
 * rule pg_basebackup applies to 'n' messages (empty, leading '.', or any path separator).
 */
export function checkArchiveName(name: string): void {
  if (name.length === 0 || name.startsWith('.') || name.includes('/') || name.includes('\\')) {
    throw new ProtocolError(
      `the server sent an invalid archive name ${JSON.stringify(name)}: ` +
        'names must be non-empty, must not start with "." and must not contain "/" or "\\"',
    );
  }
}

/**
 * Consumes one BASE_BACKUP response message at a time and returns the events it implies.
 *
 * @example
 * ```ts
 * const parser = new BaseBackupResponseParser(conn.serverMajor);
 * for await (const msg of conn.stream(command)) for (const ev of parser.push(msg)) handle(ev);
 * parser.finish();
 * ```
 */
export class BaseBackupResponseParser {
  #state: BackupResponseState = 'start-desc';
  readonly #modern: boolean;
  #startLsn: Lsn | undefined;
  #startTli = 0;
  #rows: TablespaceRow[] = [];
  /** Index of the current (or last) archive; -1 before the first. */
  #archive = -1;
  #archiveName = '';
  #bytesDone = 0;
  #manifestSeen = false;
  #endLsn: Lsn | undefined;
  #endTli = 0;

  /** @param serverMajor the server's major version (13–18): 15+ speaks the single-COPY format. */
  constructor(serverMajor: number) {
    this.#modern = serverMajor >= 15;
  }

  /** The current state (what the next message must be). */
  get state(): BackupResponseState {
    return this.#state;
  }

  /** The tablespace rows, once received. */
  get tablespaces(): readonly TablespaceRow[] {
    return this.#rows;
  }

  /**
   * Feed one message.
   * @throws ProtocolError when the message is not what the current state allows.
   */
  push(msg: StreamMessage): BackupResponseEvent[] {
    switch (this.#state) {
      case 'start-desc':
        this.#expectRowDescription(msg, 2, 'start position');
        this.#state = 'start-row';
        return [];
      case 'start-row': {
        const values = this.#expectRow(msg, 2, 'start position');
        this.#startLsn = parseLsn(values[0] ?? '', 'server');
        this.#startTli = parseInteger(values[1] ?? null, 'start timeline');
        this.#state = 'start-complete';
        return [{ type: 'start', lsn: this.#startLsn, timeline: this.#startTli }];
      }
      case 'start-complete':
        this.#expectComplete(msg);
        this.#state = 'spc-desc';
        return [];
      case 'spc-desc':
        this.#expectRowDescription(msg, 3, 'tablespace header');
        this.#state = 'spc-rows';
        return [];
      case 'spc-rows':
        return this.#onTablespaceRow(msg);
      case 'between':
        return this.#onBetween(msg);
      case 'archive':
        return this.#onLegacyArchive(msg);
      case 'manifest':
        return this.#onLegacyManifest(msg);
      case 'copy-response':
        if (msg.type !== 'CopyOutResponse') throw this.#unexpected(msg);
        this.#state = 'copy';
        return [];
      case 'copy':
        return this.#onCopy(msg);
      case 'end-desc':
        this.#expectRowDescription(msg, 2, 'end position');
        this.#state = 'end-row';
        return [];
      case 'end-row': {
        const values = this.#expectRow(msg, 2, 'end position');
        this.#endLsn = parseLsn(values[0] ?? '', 'server');
        this.#endTli = parseInteger(values[1] ?? null, 'end timeline');
        this.#state = 'end-complete';
        return [{ type: 'end', lsn: this.#endLsn, timeline: this.#endTli }];
      }
      case 'end-complete':
        this.#expectComplete(msg);
        this.#state = 'completion';
        return [];
      case 'completion':
        if (msg.type !== 'CommandComplete') throw this.#unexpected(msg);
        this.#state = 'done';
        return [{ type: 'complete' }];
      case 'done':
        throw this.#unexpected(msg);
    }
  }

  /**
   * Call when the message stream ended (ReadyForQuery).
   * @throws ProtocolError when the response stopped before its final CommandComplete.
   */
  finish(): void {
    if (this.#state !== 'done') {
      throw new ProtocolError(`the BASE_BACKUP response ended early (in state ${this.#state})`);
    }
  }

  #unexpected(msg: StreamMessage): ProtocolError {
    return new ProtocolError(`unexpected ${describe(msg)} in the BASE_BACKUP response (state ${this.#state})`);
  }

  #expectRowDescription(msg: StreamMessage, columns: number, what: string): void {
    if (msg.type !== 'RowDescription') throw this.#unexpected(msg);
    if (msg.columns.length < columns) {
      throw new ProtocolError(`the BASE_BACKUP ${what} result has ${msg.columns.length} columns, expected ${columns}`);
    }
  }

  #expectRow(msg: StreamMessage, columns: number, what: string): (string | null)[] {
    if (msg.type !== 'DataRow') throw this.#unexpected(msg);
    if (msg.values.length < columns) {
      throw new ProtocolError(`the BASE_BACKUP ${what} row has ${msg.values.length} values, expected ${columns}`);
    }
    return msg.values;
  }

  #expectComplete(msg: StreamMessage): void {
    if (msg.type !== 'CommandComplete') throw this.#unexpected(msg);
  }

  #onTablespaceRow(msg: StreamMessage): BackupResponseEvent[] {
    if (msg.type === 'DataRow') {
      const values = this.#expectRow(msg, 3, 'tablespace');
      const oid = values[0] ?? null;
      const location = values[1] ?? null;
      const size = values[2] ?? null;
      if ((oid === null) !== (location === null)) {
        throw new ProtocolError('the server sent a tablespace row with only one of spcoid and spclocation');
      }
      this.#rows.push({
        oid: oid === null ? null : parseInteger(oid, 'tablespace oid'),
        location,
        sizeKb: size === null ? null : parseInteger(size, 'tablespace size'),
      });
      return [];
    }
    if (msg.type !== 'CommandComplete') throw this.#unexpected(msg);
    if (this.#rows.length === 0) throw new ProtocolError('the server sent no tablespace rows in the BASE_BACKUP response');
    this.#state = this.#modern ? 'copy-response' : 'between';
    return [{ type: 'tablespaces', tablespaces: this.#rows.map((r) => ({ ...r })) }];
  }

  #startArchive(index: number, name: string): BackupResponseEvent {
    const row = this.#rows[index]!;
    this.#archive = index;
    this.#archiveName = name;
    return { type: 'archive-start', name, index, tablespaceOid: row.oid, location: row.location };
  }

  #endArchive(): BackupResponseEvent {
    return { type: 'archive-end', name: this.#archiveName, index: this.#archive, serverTerminated: this.#modern };
  }

  // 13/14: between two COPY OUT operations.
  #onBetween(msg: StreamMessage): BackupResponseEvent[] {
    const archivesDone = this.#archive + 1 === this.#rows.length;
    if (msg.type === 'CopyOutResponse') {
      if (!archivesDone) {
        const index = this.#archive + 1;
        const row = this.#rows[index]!;
        this.#state = 'archive';
        return [this.#startArchive(index, row.oid === null ? 'base.tar' : `${row.oid}.tar`)];
      }
      if (this.#manifestSeen) throw this.#unexpected(msg);
      this.#manifestSeen = true;
      this.#state = 'manifest';
      return [{ type: 'manifest-start' }];
    }
    if (msg.type === 'RowDescription' && archivesDone) {
      this.#state = 'end-desc';
      return this.push(msg);
    }
    throw this.#unexpected(msg);
  }

  #onLegacyArchive(msg: StreamMessage): BackupResponseEvent[] {
    if (msg.type === 'CopyData') {
      this.#bytesDone += msg.payload.length;
      return msg.payload.length > 0 ? [{ type: 'archive-data', data: msg.payload }] : [];
    }
    if (msg.type !== 'CopyDone') throw this.#unexpected(msg);
    this.#state = 'between';
    return [this.#endArchive(), { type: 'progress', bytesDone: this.#bytesDone }];
  }

  #onLegacyManifest(msg: StreamMessage): BackupResponseEvent[] {
    if (msg.type === 'CopyData') return msg.payload.length > 0 ? [{ type: 'manifest-data', data: msg.payload }] : [];
    if (msg.type !== 'CopyDone') throw this.#unexpected(msg);
    this.#state = 'between';
    return [{ type: 'manifest-end' }];
  }

  // 15+: inside the single COPY OUT.
  #onCopy(msg: StreamMessage): BackupResponseEvent[] {
    if (msg.type === 'CopyDone') {
      const out: BackupResponseEvent[] = [];
      if (this.#manifestSeen) out.push({ type: 'manifest-end' });
      else if (this.#archive >= 0) out.push(this.#endArchive());
      if (this.#archive + 1 !== this.#rows.length) {
        throw new ProtocolError(`the server sent ${this.#archive + 1} archives for ${this.#rows.length} tablespaces`);
      }
      this.#state = 'end-desc';
      return out;
    }
    if (msg.type !== 'CopyData') throw this.#unexpected(msg);
    const p = msg.payload;
    if (p.length === 0) throw new ProtocolError('the server sent an empty CopyData in the BASE_BACKUP stream');
    const kind = p[0]!;
    switch (kind) {
      case BackupCopy.NewArchive: {
        if (this.#manifestSeen) throw new ProtocolError('the server started a new archive after the manifest');
        const nameEnd = p.indexOf(0, 1);
        const locEnd = nameEnd < 0 ? -1 : p.indexOf(0, nameEnd + 1);
        if (nameEnd < 0 || locEnd < 0) {
          throw new ProtocolError('the server sent a malformed new-archive message (missing NUL terminator)');
        }
        const name = p.toString('utf8', 1, nameEnd);
        const location = p.toString('utf8', nameEnd + 1, locEnd);
        checkArchiveName(name);
        const index = this.#archive + 1;
        const row = this.#rows[index];
        if (row === undefined) {
          throw new ProtocolError(
            `the server sent archive ${JSON.stringify(name)} beyond the ${this.#rows.length} tablespaces it announced`,
          );
        }
        if ((row.location ?? '') !== location) {
          throw new ProtocolError(
            `the server sent archive ${JSON.stringify(name)} for ${JSON.stringify(location)}, ` +
              `but tablespace ${index + 1} is ${JSON.stringify(row.location ?? '(data directory)')}`,
          );
        }
        const out: BackupResponseEvent[] = [];
        if (this.#archive >= 0) out.push(this.#endArchive());
        out.push(this.#startArchive(index, name));
        return out;
      }
      case BackupCopy.ArchiveOrManifestData: {
        const data = p.subarray(1);
        if (this.#manifestSeen) return data.length > 0 ? [{ type: 'manifest-data', data }] : [];
        if (this.#archive < 0) throw new ProtocolError('the server sent archive data before announcing an archive');
        return data.length > 0 ? [{ type: 'archive-data', data }] : [];
      }
      case BackupCopy.Progress: {
        if (p.length !== 9) throw new ProtocolError(`the server sent a progress message of ${p.length} bytes, expected 9`);
        const done = p.readBigUInt64BE(1);
        if (done > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`the server reported an impossible progress of ${done} bytes`);
        this.#bytesDone = Number(done);
        return [{ type: 'progress', bytesDone: this.#bytesDone }];
      }
      case BackupCopy.ManifestFollows: {
        if (this.#manifestSeen) throw new ProtocolError('the server announced the manifest twice');
        if (this.#archive + 1 !== this.#rows.length) {
          throw new ProtocolError(`the server sent the manifest after ${this.#archive + 1} of ${this.#rows.length} archives`);
        }
        this.#manifestSeen = true;
        return [this.#endArchive(), { type: 'manifest-start' }];
      }
      default:
        throw new ProtocolError(
          `the server sent an unknown BASE_BACKUP CopyData type byte 0x${kind.toString(16).padStart(2, '0')}` +
            (kind >= 0x20 && kind < 0x7f ? ` ('${String.fromCharCode(kind)}')` : ''),
        );
    }
  }
}
