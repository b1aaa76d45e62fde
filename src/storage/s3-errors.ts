/**
 * How an AWS SDK failure becomes a {@link StorageError}: status, retryability, a message without secrets.
 * Pure.
 * @module
 */
import { StorageError, type StorageOperation } from '../errors.js';

// The answers and failures the SDK's standard retry strategy also treats as transient: server errors,
// throttling (S3 answers 503 SlowDown), timeouts and broken connections.
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'TimeoutError',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
]);
const RETRYABLE_SYSCALL_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/** The HTTP status of an SDK error, when the server answered. */
export function statusOf(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/** A failure of the SDK (after its retries) as a {@link StorageError}. */
export function s3StorageError(operation: StorageOperation, key: string | undefined, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const statusCode = statusOf(err);
  const name = e.name ?? 'Error';
  const retryable =
    (statusCode !== undefined && RETRYABLE_STATUS.has(statusCode)) ||
    RETRYABLE_NAMES.has(name) ||
    (e.code !== undefined && RETRYABLE_SYSCALL_CODES.has(e.code));
  const attempts = e.$metadata?.attempts;
  const what = key === undefined ? '' : ` "${key}"`;
  // The SDK's messages name the failing check, never the secret key or the signature.
  const detail = statusCode === 404 ? 'no such object' : `${name}: ${e.message ?? String(err)}`;
  const status = statusCode === undefined ? '' : ` (HTTP ${statusCode}${attempts && attempts > 1 ? `, ${attempts} attempts` : ''})`;
  const advice = retryable ? '; the retries were exhausted: check the storage server and try again' : '';
  return new StorageError(`storage ${operation}${what} failed: ${detail}${status}${advice}`, {
    operation,
    key,
    statusCode,
    retryable,
    cause: err,
  });
}
