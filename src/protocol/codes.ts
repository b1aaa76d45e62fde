/**
 * Every protocol constant in one place (PostgreSQL frontend/backend protocol 3.0,
 * "Message Formats" and "Streaming Replication Protocol" chapters).
 * @module
 */

/** Backend (server → client) message type bytes. */
export const Backend = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  CommandComplete: 0x43, // 'C'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterStatus: 0x53, // 'S'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** Frontend (client → server) message type bytes. */
export const Frontend = {
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  PasswordMessage: 0x70, // 'p' (also SASLInitialResponse, SASLResponse)
  Query: 0x51, // 'Q'
  Terminate: 0x58, // 'X'
} as const;

/** Authentication request codes carried by an 'R' message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Special request codes sent in place of a protocol version. */
export const RequestCode = {
  /** Protocol 3.0 = 196608. */
  ProtocolVersion3: 196608,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
  CancelRequest: 80877102,
} as const;

/** Sub-message type bytes inside CopyData during START_REPLICATION (CopyBoth). */
export const ReplicationCopy = {
  XLogData: 0x77, // 'w'
  PrimaryKeepalive: 0x6b, // 'k'
  StandbyStatusUpdate: 0x72, // 'r'
  HotStandbyFeedback: 0x68, // 'h'
} as const;

/** Sub-message type bytes inside CopyData of BASE_BACKUP on PostgreSQL 15+. */
export const BackupCopy = {
  NewArchive: 0x6e, // 'n'
  ArchiveOrManifestData: 0x64, // 'd'
  Progress: 0x70, // 'p'
  ManifestFollows: 0x6d, // 'm'
} as const;

/** ErrorResponse / NoticeResponse field codes. */
export const ErrorField = {
  Severity: 0x53, // 'S'
  SeverityNonLocalized: 0x56, // 'V'
  Code: 0x43, // 'C'
  Message: 0x4d, // 'M'
  Detail: 0x44, // 'D'
  Hint: 0x48, // 'H'
  Position: 0x50, // 'P'
  InternalPosition: 0x70, // 'p'
  InternalQuery: 0x71, // 'q'
  Where: 0x57, // 'W'
  Schema: 0x73, // 's'
  Table: 0x74, // 't'
  Column: 0x63, // 'c'
  DataType: 0x64, // 'd'
  Constraint: 0x6e, // 'n'
  File: 0x46, // 'F'
  Line: 0x4c, // 'L'
  Routine: 0x52, // 'R'
} as const;

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC). */
export const POSTGRES_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** SQLSTATEs we react to. */
export const SqlState = {
  DuplicateObject: '42710',
  UndefinedObject: '42704',
  InvalidPassword: '28P01',
  InvalidAuthorizationSpecification: '28000',
  DataCorrupted: 'XX001',
  ObjectInUse: '55006',
  InsufficientPrivilege: '42501',
  AdminShutdown: '57P01',
} as const;
