/**
 * Frontend (client → server) message builders over a per-connection {@link Writer}.
 * Pure, no I/O. Each function returns a fresh Buffer ready for `socket.write()`.
 * @module
 */
import { Frontend, RequestCode } from './codes.js';
import type { Writer } from './writer.js';

/** Parameters of {@link startupMessage}. */
export interface StartupParameters {
  user: string;
  /**
   * `true` asks for a physical walsender (replication commands and SHOW only).
   * @default true
   */
  replication?: boolean;
  /** Shown in `pg_stat_replication.application_name` and `pg_stat_activity`. */
  applicationName?: string;
  /** Database name: ignored by a physical walsender, sent only when set. */
  database?: string;
}

/** StartupMessage for protocol 3.0 (no type byte; Int32 length, Int32 196608, `key\0value\0`..., `\0`). */
export function startupMessage(w: Writer, p: StartupParameters): Buffer {
  w.begin(null).int32(RequestCode.ProtocolVersion3);
  w.cstring('user').cstring(p.user);
  if (p.database !== undefined) w.cstring('database').cstring(p.database);
  w.cstring('replication').cstring(p.replication === false ? 'false' : 'true');
  if (p.applicationName !== undefined) w.cstring('application_name').cstring(p.applicationName);
  // Our text decoding is UTF-8; ask the server to send UTF-8 regardless of the database encoding.
  w.cstring('client_encoding').cstring('UTF8');
  return w.uint8(0).end();
}

/** SSLRequest: Int32 8, Int32 80877103. */
export function sslRequest(w: Writer): Buffer {
  return w.begin(null).int32(RequestCode.SSLRequest).end();
}

/** Query ('Q'): one simple-query string. */
export function query(w: Writer, sql: string): Buffer {
  return w.begin(Frontend.Query).cstring(sql).end();
}

/** PasswordMessage ('p') for cleartext and MD5 authentication. */
export function passwordMessage(w: Writer, password: string): Buffer {
  return w.begin(Frontend.PasswordMessage).cstring(password).end();
}

/** SASLInitialResponse ('p'): mechanism name, Int32 length (−1 for none), initial response bytes. */
export function saslInitialResponse(w: Writer, mechanism: string, initial: Buffer | string | null): Buffer {
  w.begin(Frontend.PasswordMessage).cstring(mechanism);
  if (initial === null) return w.int32(-1).end();
  const data = typeof initial === 'string' ? Buffer.from(initial, 'utf8') : initial;
  return w.int32(data.length).bytes(data).end();
}

/** SASLResponse ('p'): the mechanism's data, no length prefix (the message length covers it). */
export function saslResponse(w: Writer, data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return w.begin(Frontend.PasswordMessage).bytes(bytes).end();
}

/** CopyData ('d') with the payload copied in; for small payloads such as status updates. */
export function copyData(w: Writer, payload: Uint8Array): Buffer {
  return w.begin(Frontend.CopyData).bytes(payload).end();
}

/**
 * The 5-byte header of a CopyData message carrying `payloadLength` bytes. Write it followed by
 * the payload itself to send large payloads without copying them.
 */
export function copyDataHeader(payloadLength: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = Frontend.CopyData;
  h.writeInt32BE(payloadLength + 4, 1);
  return h;
}

/** CopyDone ('c'). */
export function copyDone(w: Writer): Buffer {
  return w.begin(Frontend.CopyDone).end();
}

/** CopyFail ('f') with a reason the server puts into its error message. */
export function copyFail(w: Writer, reason: string): Buffer {
  return w.begin(Frontend.CopyFail).cstring(reason.replaceAll('\0', '')).end();
}

/** Terminate ('X'). */
export function terminate(w: Writer): Buffer {
  return w.begin(Frontend.Terminate).end();
}
