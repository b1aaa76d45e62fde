import { describe, expect, it } from 'vitest';
import { md5PasswordMessage } from '../../../src/connection/auth/md5.js';

describe('md5PasswordMessage', () => {
  it('matches a vector computed independently (Python hashlib)', () => {
    expect(md5PasswordMessage('md5user', 'secret', Buffer.from([1, 2, 3, 4]))).toBe('md56b614f1bd5dc8478f5705c783c9bbdc0');
  });

  it('depends on user, password and salt', () => {
    const base = md5PasswordMessage('u', 'p', Buffer.from([0, 0, 0, 0]));
    expect(base).toMatch(/^md5[0-9a-f]{32}$/);
    expect(md5PasswordMessage('v', 'p', Buffer.from([0, 0, 0, 0]))).not.toBe(base);
    expect(md5PasswordMessage('u', 'q', Buffer.from([0, 0, 0, 0]))).not.toBe(base);
    expect(md5PasswordMessage('u', 'p', Buffer.from([0, 0, 0, 1]))).not.toBe(base);
  });

  it('encodes non-ASCII passwords as UTF-8', () => {
    // Vector from Python: md5('päss'.encode('utf-8') + b'u'); Latin-1 would give another digest.
    const utf8 = md5PasswordMessage('u', 'päss', Buffer.from([9, 9, 9, 9]));
    expect(utf8).toBe('md53674cf79c320d150b6bde07469c7a30f');
  });
});
