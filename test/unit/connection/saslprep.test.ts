import { describe, expect, it } from 'vitest';
import { saslprep, scramPasswordBytes } from '../../../src/connection/auth/saslprep.js';
import { BIDI_L, UNASSIGNED_3_2, unpackRanges } from '../../../src/connection/auth/stringprep-tables.js';

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

  it('rejects code points unassigned in Unicode 3.2, including ones assigned since (as PostgreSQL does)', () => {
    expect(saslprep('é\u0378')).toEqual({ ok: false, reason: 'unassigned' });
    expect(saslprep('é\u{1F600}')).toEqual({ ok: false, reason: 'unassigned' }); // emoji, Unicode 6.1
    expect(saslprep('é\u0221')).toEqual({ ok: false, reason: 'unassigned' }); // assigned in 4.0
    // So an emoji password with a character NFKC would change is used raw, as the server does.
    expect(scramPasswordBytes('\u00A0\u{1F600}')).toEqual(Buffer.from('\u00A0\u{1F600}', 'utf8'));
  });

  it('applies the bidi rule', () => {
    expect(saslprep('\u05D0\u05D1\u05D2')).toEqual({ ok: true, value: '\u05D0\u05D1\u05D2' });
    expect(saslprep('\u05D01\u05D1')).toEqual({ ok: true, value: '\u05D01\u05D1' });
    expect(saslprep('\u05D0a\u05D1')).toEqual({ ok: false, reason: 'bidi' }); // RandAL with L
    expect(saslprep('1\u05D0')).toEqual({ ok: false, reason: 'bidi' }); // does not start with RandAL
    expect(saslprep('\u05D0\u0966\u05D1')).toEqual({ ok: false, reason: 'bidi' }); // Devanagari digit is L in D.2
    expect(saslprep('\u05D0\u0661\u05D1')).toEqual({ ok: true, value: '\u05D0\u0661\u05D1' }); // Arabic-Indic digit is AN
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

describe('stringprep tables', () => {
  const has = (ranges: number[], first: number, last: number) =>
    ranges.some((v, i) => i % 2 === 0 && v === first && ranges[i + 1] === last);

  it("unpack to sorted, disjoint ranges with PostgreSQL's boundaries", () => {
    for (const packed of [UNASSIGNED_3_2, BIDI_L]) {
      const r = unpackRanges(packed);
      for (let i = 0; i < r.length; i += 2) {
        expect(r[i]!).toBeLessThanOrEqual(r[i + 1]!);
        if (i > 0) expect(r[i]!).toBeGreaterThan(r[i - 1]! + 1);
      }
    }
    const a1 = unpackRanges(UNASSIGNED_3_2);
    expect(a1.length / 2).toBe(396);
    expect(a1.slice(0, 4)).toEqual([0x0221, 0x0221, 0x0234, 0x024f]);
    expect(a1.slice(-2)).toEqual([0xe0080, 0xefffd]);
    expect(has(a1, 0x1d800, 0x1fffd)).toBe(true);
    expect(has(a1, 0xa4c7, 0xabff)).toBe(true);
    const d2 = unpackRanges(BIDI_L);
    expect(d2.length / 2).toBe(360);
    expect(d2.slice(0, 4)).toEqual([0x41, 0x5a, 0x61, 0x7a]);
    expect(has(d2, 0x00f8, 0x0220)).toBe(true);
    expect(has(d2, 0x0f00, 0x0f17)).toBe(true);
  });
});
