/**
 * Framed bytes → typed backend messages ({@link BackendMessage}). Pure, no I/O.
 * Every read is bounded by the message body (see {@link Reader}), so malformed input
 * becomes a {@link ProtocolError} that names the message.
 * @module
 */
import { ProtocolError, type ServerMessageFields } from '../errors.js';
import { AuthCode, Backend, ErrorField } from './codes.js';
import { describeTypeByte, type Frame } from './framer.js';
import type { BackendMessage, ColumnDescription } from './messages.js';
import { Reader } from './reader.js';

const FIELD_NAMES: Partial<Record<number, keyof ServerMessageFields>> = {
  [ErrorField.Severity]: 'severity',
  [ErrorField.SeverityNonLocalized]: 'severityCode',
  [ErrorField.Code]: 'sqlState',
  [ErrorField.Message]: 'message',
  [ErrorField.Detail]: 'detail',
  [ErrorField.Hint]: 'hint',
  [ErrorField.Position]: 'position',
  [ErrorField.InternalPosition]: 'internalPosition',
  [ErrorField.InternalQuery]: 'internalQuery',
  [ErrorField.Where]: 'where',
  [ErrorField.Schema]: 'schema',
  [ErrorField.Table]: 'table',
  [ErrorField.Column]: 'column',
  [ErrorField.DataType]: 'dataType',
  [ErrorField.Constraint]: 'constraint',
  [ErrorField.File]: 'file',
  [ErrorField.Line]: 'line',
  [ErrorField.Routine]: 'routine',
};

/**
 * Parse the body of an ErrorResponse or NoticeResponse: `code byte, string\0` pairs ending
 * with a 0 byte. Unknown field codes are skipped, as the protocol says clients must.
 */
export function parseServerMessageFields(body: Buffer, what = 'ErrorResponse'): ServerMessageFields {
  const r = new Reader(body, what);
  const out: Partial<Record<keyof ServerMessageFields, string>> = {};
  for (;;) {
    const code = r.uint8();
    if (code === 0) break;
    const value = r.cstring();
    const name = FIELD_NAMES[code];
    if (name) out[name] = value;
  }
  r.end();
  // S, C and M are always sent by PostgreSQL; fall back rather than fail on an odd server.
  const fields: ServerMessageFields = {
    severity: out.severity ?? out.severityCode ?? 'ERROR',
    sqlState: out.sqlState ?? 'XX000',
    message: out.message ?? '(the server sent no message text)',
  };
  for (const [k, v] of Object.entries(out) as [keyof ServerMessageFields, string][]) {
    if (k !== 'severity' && k !== 'sqlState' && k !== 'message') fields[k] = v;
  }
  return fields;
}

function parseAuthentication(r: Reader): BackendMessage {
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
    case AuthCode.CleartextPassword:
    case AuthCode.KerberosV5:
    case AuthCode.SSPI:
    case AuthCode.GSS:
      r.end();
      return { type: 'Authentication', code };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4);
      r.end();
      return { type: 'Authentication', code, salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      r.end();
      return { type: 'Authentication', code, mechanisms };
    }
    default:
      // SASLContinue, SASLFinal, GSSContinue and any unknown method carry opaque data.
      return { type: 'Authentication', code, data: r.rest() };
  }
}

function parseColumns(r: Reader): ColumnDescription[] {
  const n = r.int16();
  const columns: ColumnDescription[] = [];
  for (let i = 0; i < n; i++) {
    columns.push({
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    });
  }
  return columns;
}

function parseCopyResponse(r: Reader, type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse'): BackendMessage {
  const format = r.int8();
  const n = r.int16();
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(r.int16());
  r.end();
  return { type, format, columnFormats };
}

const MESSAGE_NAMES = new Map<number, string>(Object.entries(Backend).map(([name, byte]) => [byte, name]));

/**
 * Turn one framed message into its typed form.
 * @throws ProtocolError for an unknown type byte or a malformed body.
 * @example
 * ```ts
 * for (let f; (f = framer.pull()); ) handle(parseMessage(f));
 * ```
 */
export function parseMessage(frame: Frame): BackendMessage {
  const { type, body } = frame;
  // Nearly every message of a backup or a WAL stream: no lookup, no reader.
  if (type === Backend.CopyData) return { type: 'CopyData', payload: body };
  const name = MESSAGE_NAMES.get(type);
  if (name === undefined) {
    throw new ProtocolError(`unknown backend message type ${describeTypeByte(type)} (${body.length}-byte body)`);
  }
  const r = new Reader(body, name);
  let msg: BackendMessage;
  switch (type) {
    case Backend.DataRow: {
      const n = r.int16();
      const values: (string | null)[] = [];
      for (let i = 0; i < n; i++) {
        const len = r.int32();
        values.push(len === -1 ? null : r.string(len));
      }
      msg = { type: 'DataRow', values };
      break;
    }
    case Backend.Authentication:
      return parseAuthentication(r);
    case Backend.ParameterStatus:
      msg = { type: 'ParameterStatus', name: r.cstring(), value: r.cstring() };
      break;
    case Backend.BackendKeyData:
      // Protocol 3.2 (PostgreSQL 18) allows keys of up to 256 bytes; 3.0 sends 4.
      msg = { type: 'BackendKeyData', processId: r.int32(), secretKey: Buffer.from(r.rest()) };
      break;
    case Backend.ReadyForQuery: {
      const s = String.fromCharCode(r.uint8());
      if (s !== 'I' && s !== 'T' && s !== 'E') {
        throw new ProtocolError(`ReadyForQuery with unknown transaction status ${JSON.stringify(s)}`);
      }
      msg = { type: 'ReadyForQuery', status: s };
      break;
    }
    case Backend.RowDescription:
      msg = { type: 'RowDescription', columns: parseColumns(r) };
      break;
    case Backend.CommandComplete:
      msg = { type: 'CommandComplete', tag: r.cstring() };
      break;
    case Backend.EmptyQueryResponse:
      msg = { type: 'EmptyQueryResponse' };
      break;
    case Backend.CopyDone:
      msg = { type: 'CopyDone' };
      break;
    case Backend.CopyInResponse:
      return parseCopyResponse(r, 'CopyInResponse');
    case Backend.CopyOutResponse:
      return parseCopyResponse(r, 'CopyOutResponse');
    case Backend.CopyBothResponse:
      return parseCopyResponse(r, 'CopyBothResponse');
    case Backend.ErrorResponse:
      return { type: 'ErrorResponse', fields: parseServerMessageFields(body, 'ErrorResponse') };
    case Backend.NoticeResponse:
      return { type: 'NoticeResponse', fields: parseServerMessageFields(body, 'NoticeResponse') };
    case Backend.NegotiateProtocolVersion: {
      const newestMinor = r.int32();
      const n = r.int32();
      if (n < 0) throw new ProtocolError(`NegotiateProtocolVersion with negative option count ${n}`);
      const unrecognized: string[] = [];
      for (let i = 0; i < n; i++) unrecognized.push(r.cstring());
      msg = { type: 'NegotiateProtocolVersion', newestMinor, unrecognized };
      break;
    }
    case Backend.NotificationResponse:
      msg = { type: 'NotificationResponse', processId: r.int32(), channel: r.cstring(), payload: r.cstring() };
      break;
    /* c8 ignore next 2 */
    default:
      throw new ProtocolError(`unhandled backend message type ${describeTypeByte(type)}`);
  }
  r.end();
  return msg;
}
