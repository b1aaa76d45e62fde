import { describe, expect, it } from 'vitest';
import { saslprep, scramPasswordBytes } from '../../../src/connection/auth/saslprep.js';

describe('saslprep', () => {
  it('passes the RFC 4013 §3 examples', () => {
    expect(saslprep('I\u00ADX')).toEqual({ ok: true, value: 'IX' });
    expect(saslprep('user')).toEqual({ ok: true, value: 'user' });
    expect(saslprep('USER')).toEqual({ ok: true, value: 'USER' });
    expect(saslprep('\u00AA')).toEqual({ ok: true, value: 'a' });
    expect(saslprep('\u2168')).toEqual({ ok: true, value: 'IX' });
    expect(saslprep('\u0627\u0031')).toEqual({ ok: false, reason: 'bidi' });
  });

  it('leaves pure ASCII alone, control characters included (PostgreSQL shortcut, unlike RFC 4013 example 6)', () => {
    expect(saslprep('a\u0007b')).toEqual({ ok: true, value: 'a\u0007b' });
    expect(saslprep('')).toEqual({ ok: true, value: '' });
  });

  it('maps non-ASCII spaces to U+0020 and drops B.1 characters', () => {
    expect(saslprep('a\u00A0b\u3000c')).toEqual({ ok: true, value: 'a b c' });
    expect(saslprep('pa\u200Dss\uFEFFw\u00ADord')).toEqual({ ok: true, value: 'password' });
  });

  it('rejects a password that maps to nothing', () => {
    expect(saslprep('\u00AD\u200D\uFEFF')).toEqual({ ok: false, reason: 'empty' });
    // U+200B is in PostgreSQL's C.1.2 table as well as B.1; the space mapping wins there.
    expect(saslprep('\u200B')).toEqual({ ok: true, value: ' ' });
  });

  it('normalizes with NFKC', () => {
    expect(saslprep('ﬁ\u0065\u0301')).toEqual({ ok: true, value: 'fi\u00e9' });
  });

  it('rejects prohibited code points', () => {
    expect(saslprep('é\u0085')).toEqual({ ok: false, reason: 'prohibited' }); // C.2.2
    expect(saslprep('é\uE000')).toEqual({ ok: false, reason: 'prohibited' }); // C.3 private use
    expect(saslprep('é\uFFFE')).toEqual({ ok: false, reason: 'prohibited' }); // C.4
    expect(saslprep('é\u2FF0')).toEqual({ ok: false, reason: 'prohibited' }); // C.7
    expect(saslprep('é\u200E')).toEqual({ ok: false, reason: 'prohibited' }); // C.8 LRM
    expect(saslprep('é\u{E0041}')).toEqual({ ok: false, reason: 'prohibited' }); // C.9 tag
    expect(saslprep('é\u0007')).toEqual({ ok: false, reason: 'prohibited' }); // C.2.1 once not pure ASCII
  });

  it('rejects unassigned code points', () => {
    expect(saslprep('é\u0378')).toEqual({ ok: false, reason: 'unassigned' });
  });

  it('applies the bidi rule', () => {
    expect(saslprep('\u05D0\u05D1\u05D2')).toEqual({ ok: true, value: '\u05D0\u05D1\u05D2' });
    expect(saslprep('\u05D01\u05D1')).toEqual({ ok: true, value: '\u05D01\u05D1' });
    expect(saslprep('\u05D0a\u05D1')).toEqual({ ok: false, reason: 'bidi' }); // RandAL with L
    expect(saslprep('1\u05D0')).toEqual({ ok: false, reason: 'bidi' }); // does not start with RandAL
  });

  it('rejects invalid UTF-8 and lone surrogates', () => {
    expect(saslprep(Buffer.from([0x70, 0xff, 0x71]))).toEqual({ ok: false, reason: 'invalid-utf8' });
    expect(saslprep('a\uD800b')).toEqual({ ok: false, reason: 'invalid-utf8' });
    expect(saslprep(Buffer.from('\u2168', 'utf8'))).toEqual({ ok: true, value: 'IX' });
  });
});

describe('scramPasswordBytes', () => {
  it('uses the prepared form when SASLprep succeeds', () => {
    expect(scramPasswordBytes('\u2168').toString('utf8')).toBe('IX');
  });

  it('falls back to the raw bytes when SASLprep fails, as PostgreSQL does', () => {
    expect(scramPasswordBytes('\u0627\u0031')).toEqual(Buffer.from('\u0627\u0031', 'utf8'));
    const invalid = Buffer.from([0x70, 0xff, 0x71]);
    expect(scramPasswordBytes(invalid)).toEqual(invalid);
  });
});
