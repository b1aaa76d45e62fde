import { describe, expect, it } from 'vitest';
import { ConfigError, StorageError } from '../../../src/errors.js';
import { checkStorageKey, compareStorageKeys, MAX_STORAGE_KEY_BYTES } from '../../../src/storage/keys.js';
import { s3StorageError } from '../../../src/storage/s3-errors.js';

describe('storage keys', () => {
  it('accepts relative /-separated keys', () => {
    for (const key of ['a', 'wal/000000010000000000000001.gz', 'backups/20250101T000000F/base.tar', 'é/日本', '.hidden/x']) {
      expect(() => checkStorageKey(key)).not.toThrow();
    }
  });

  it.each([
    ['', /empty/],
    ['/abs', /empty segment/],
    ['trailing/', /empty segment/],
    ['a//b', /empty segment/],
    ['a/../b', /"\.\." segment/],
    ['./a', /"\." segment/],
    ['a\\b', /backslash/],
    ['a\nb', /control/],
    ['dir/.pgbb-tmp-1', /reserved/],
    ['x'.repeat(MAX_STORAGE_KEY_BYTES + 1), /longer/],
  ])('refuses %j', (key, message) => {
    expect(() => checkStorageKey(key)).toThrow(ConfigError);
    expect(() => checkStorageKey(key)).toThrow(message);
  });

  it('orders keys by their UTF-8 bytes, as object storage lists them', () => {
    // '-' (0x2d) < '/' (0x2f) < '0' (0x30); U+FF21 (3 UTF-8 bytes) < U+1F600 (4 bytes), though not in UTF-16 units.
    const keys = ['a0', 'a/b', 'a-c', '\u{1F600}', '\uFF21', 'a'];
    expect([...keys].sort(compareStorageKeys)).toEqual(['a', 'a-c', 'a/b', 'a0', '\uFF21', '\u{1F600}']);
    expect(['\u{1F600}', '\uFF21'].sort()).toEqual(['\u{1F600}', '\uFF21']); // what a plain sort would do
  });
});

describe('S3 failures as StorageError', () => {
  it('keeps the status, marks server errors, throttling and resets retryable, and names the key', () => {
    const slowDown = s3StorageError(
      'put',
      'k',
      Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503, attempts: 6 } }),
    );
    expect(slowDown).toBeInstanceOf(StorageError);
    expect(slowDown).toMatchObject({ code: 'ERR_PGBB_STORAGE', operation: 'put', key: 'k', statusCode: 503, retryable: true });
    expect(slowDown.message).toMatch(/SlowDown.*HTTP 503, 6 attempts.*retries were exhausted/);
    const reset = s3StorageError('get', 'k', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    expect(reset).toMatchObject({ statusCode: undefined, retryable: true });
    const denied = s3StorageError(
      'list',
      undefined,
      Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    );
    expect(denied).toMatchObject({ statusCode: 403, retryable: false, key: undefined });
    const missing = s3StorageError(
      'get',
      'gone',
      Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }),
    );
    expect(missing.message).toBe('storage get "gone" failed: no such object (HTTP 404)');
  });
});
