/**
 * Typed backend messages: the shapes the framer/parser (src/protocol/parser.ts)
 * produces and the connection hands to the layers above. Pure types.
 * @module
 */
import type { ServerMessageFields } from '../errors.js';

/** One column of a RowDescription. */
export interface ColumnDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: number;
}

export interface AuthenticationMessage {
  type: 'Authentication';
  /** One of AuthCode. */
  code: number;
  /** MD5 salt (4 bytes) for code 5; SASL mechanisms for code 10; SASL data for 11/12. */
  salt?: Buffer;
  mechanisms?: string[];
  data?: Buffer;
}
export interface ParameterStatusMessage {
  type: 'ParameterStatus';
  name: string;
  value: string;
}
export interface BackendKeyDataMessage {
  type: 'BackendKeyData';
  processId: number;
  secretKey: Buffer;
}
export interface ReadyForQueryMessage {
  type: 'ReadyForQuery';
  status: 'I' | 'T' | 'E';
}
export interface RowDescriptionMessage {
  type: 'RowDescription';
  columns: ColumnDescription[];
}
/** Text-format values; `null` for SQL NULL. */
export interface DataRowMessage {
  type: 'DataRow';
  values: (string | null)[];
}
export interface CommandCompleteMessage {
  type: 'CommandComplete';
  tag: string;
}
export interface EmptyQueryResponseMessage {
  type: 'EmptyQueryResponse';
}
export interface CopyResponseMessage {
  type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse';
  /** 0 text, 1 binary. */
  format: number;
  columnFormats: number[];
}
/** `payload` is a view into the received bytes; copy it if you keep it for long. */
export interface CopyDataMessage {
  type: 'CopyData';
  payload: Buffer;
}
export interface CopyDoneMessage {
  type: 'CopyDone';
}
export interface ErrorResponseMessage {
  type: 'ErrorResponse';
  fields: ServerMessageFields;
}
export interface NoticeResponseMessage {
  type: 'NoticeResponse';
  fields: ServerMessageFields;
}
export interface NegotiateProtocolVersionMessage {
  type: 'NegotiateProtocolVersion';
  newestMinor: number;
  unrecognized: string[];
}
export interface NotificationResponseMessage {
  type: 'NotificationResponse';
  processId: number;
  channel: string;
  payload: string;
}

/** Every message the server can send us. */
export type BackendMessage =
  | AuthenticationMessage
  | ParameterStatusMessage
  | BackendKeyDataMessage
  | ReadyForQueryMessage
  | RowDescriptionMessage
  | DataRowMessage
  | CommandCompleteMessage
  | EmptyQueryResponseMessage
  | CopyResponseMessage
  | CopyDataMessage
  | CopyDoneMessage
  | ErrorResponseMessage
  | NoticeResponseMessage
  | NegotiateProtocolVersionMessage
  | NotificationResponseMessage;

/**
 * What {@link ReplicationConnection.stream} yields: the response to one simple query,
 * minus NoticeResponse/ParameterStatus (emitted as events), ErrorResponse (thrown as
 * ServerError once ReadyForQuery arrives) and ReadyForQuery (ends the iteration).
 */
export type StreamMessage =
  | RowDescriptionMessage
  | DataRowMessage
  | CommandCompleteMessage
  | EmptyQueryResponseMessage
  | CopyResponseMessage
  | CopyDataMessage
  | CopyDoneMessage;
