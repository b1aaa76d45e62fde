/**
 * SASLprep (RFC 4013, a stringprep profile of RFC 3454) for SCRAM passwords, following
 * PostgreSQL's `src/common/saslprep.c` closely enough that client and server derive the
 * same salted password.
 *
 * PostgreSQL never fails a login over SASLprep: when the password is not valid UTF-8 or
 * preparation rejects it, both libpq and the server use the raw bytes instead
 * (`pg_fe_scram.c`, `scram_verify_plain_password`). {@link scramPasswordBytes} mirrors that.
 *
 * Normalization is `String.prototype.normalize('NFKC')` (the runtime's Unicode, where
 * PostgreSQL uses its own tables; they agree on every character assigned in Unicode 3.2,
 * the only ones SASLprep lets through). The RFC 3454 tables are PostgreSQL's: the small ones
 * inline, A.1 and D.2 packed in stringprep-tables.ts.
 * @module
 */

import { BIDI_L, UNASSIGNED_3_2, unpackRanges } from './stringprep-tables.js';

/** Why {@link saslprep} rejected its input. */
export type SaslprepFailure = 'invalid-utf8' | 'empty' | 'prohibited' | 'unassigned' | 'bidi';

/** Outcome of {@link saslprep}. */
export type SaslprepResult = { ok: true; value: string } | { ok: false; reason: SaslprepFailure };

type Ranges = readonly number[]; // flat [first, last, first, last, ...], inclusive, sorted

function inRanges(cp: number, ranges: Ranges): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const first = ranges[mid * 2]!;
    const last = ranges[mid * 2 + 1]!;
    if (cp < first) hi = mid - 1;
    else if (cp > last) lo = mid + 1;
    else return true;
  }
  return false;
}

/** RFC 3454 C.1.2, non-ASCII space characters: mapped to U+0020 (RFC 4013 §2.1). */
const NON_ASCII_SPACE: Ranges = [0x00a0, 0x00a0, 0x1680, 0x1680, 0x2000, 0x200b, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000];

/** RFC 3454 B.1, "commonly mapped to nothing": removed (RFC 4013 §2.1). */
const MAPPED_TO_NOTHING: Ranges = [
  0x00ad, 0x00ad, 0x034f, 0x034f, 0x1806, 0x1806, 0x180b, 0x180d, 0x200b, 0x200d, 0x2060, 0x2060, 0xfe00, 0xfe0f, 0xfeff, 0xfeff,
];

/**
 * The union of RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9, the
 * "prohibited output" of RFC 4013 §2.3, with adjacent ranges merged.
 */
const PROHIBITED: Ranges = [
  0x0000, 0x001f, 0x007f, 0x00a0, 0x0340, 0x0341, 0x06dd, 0x06dd, 0x070f, 0x070f, 0x1680, 0x1680, 0x180e, 0x180e, 0x2000, 0x200f, 0x2028,
  0x202f, 0x205f, 0x2063, 0x206a, 0x206f, 0x2ff0, 0x2ffb, 0x3000, 0x3000, 0xd800, 0xf8ff, 0xfdd0, 0xfdef, 0xfeff, 0xfeff, 0xfff9, 0xffff,
  0x1d173, 0x1d17a, 0x1fffe, 0x1ffff, 0x2fffe, 0x2ffff, 0x3fffe, 0x3ffff, 0x4fffe, 0x4ffff, 0x5fffe, 0x5ffff, 0x6fffe, 0x6ffff, 0x7fffe,
  0x7ffff, 0x8fffe, 0x8ffff, 0x9fffe, 0x9ffff, 0xafffe, 0xaffff, 0xbfffe, 0xbffff, 0xcfffe, 0xcffff, 0xdfffe, 0xdffff, 0xe0001, 0xe0001,
  0xe0020, 0xe007f, 0xefffe, 0xeffff, 0xf0000, 0x10ffff,
];

/** RFC 3454 D.1: characters with bidirectional property R or AL (Unicode 3.2). */
const RAND_AL_CAT: Ranges = [
  0x05be, 0x05be, 0x05c0, 0x05c0, 0x05c3, 0x05c3, 0x05d0, 0x05ea, 0x05f0, 0x05f4, 0x061b, 0x061b, 0x061f, 0x061f, 0x0621, 0x063a, 0x0640,
  0x064a, 0x066d, 0x066f, 0x0671, 0x06d5, 0x06dd, 0x06dd, 0x06e5, 0x06e6, 0x06fa, 0x06fe, 0x0700, 0x070d, 0x0710, 0x0710, 0x0712, 0x072c,
  0x0780, 0x07a5, 0x07b1, 0x07b1, 0x200f, 0x200f, 0xfb1d, 0xfb1d, 0xfb1f, 0xfb28, 0xfb2a, 0xfb36, 0xfb38, 0xfb3c, 0xfb3e, 0xfb3e, 0xfb40,
  0xfb41, 0xfb43, 0xfb44, 0xfb46, 0xfbb1, 0xfbd3, 0xfd3d, 0xfd50, 0xfd8f, 0xfd92, 0xfdc7, 0xfdf0, 0xfdfc, 0xfe70, 0xfe74, 0xfe76, 0xfefc,
];

const UNASSIGNED = unpackRanges(UNASSIGNED_3_2);
const L_CAT = unpackRanges(BIDI_L);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Prepare a password with SASLprep the way PostgreSQL does.
 *
 * Pure ASCII is returned unchanged, control characters included (PostgreSQL's shortcut).
 * Otherwise: map C.1.2 spaces to U+0020 and drop B.1 characters; an empty result is
 * rejected; normalize with NFKC; reject prohibited and unassigned code points and
 * violations of the bidi rule (RFC 3454 §6). Like PostgreSQL, the prohibition and bidi
 * checks look at the mapped string before normalization.
 *
 * @param input - The password. A `Buffer` is decoded as UTF-8 and must be valid UTF-8.
 * @returns `{ ok: true, value }` or `{ ok: false, reason }`.
 *
 * @example
 * ```ts
 * saslprep('I\u00ADX'); // { ok: true, value: 'IX' }
 * saslprep('\u2168');   // { ok: true, value: 'IX' }  (NFKC)
 * saslprep('a\u0007b'); // { ok: true, value: 'a\u0007b' }  (pure ASCII is left alone)
 * ```
 */
export function saslprep(input: string | Buffer): SaslprepResult {
  let text: string;
  if (typeof input === 'string') {
    if (LONE_SURROGATE.test(input)) return { ok: false, reason: 'invalid-utf8' };
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      return { ok: false, reason: 'invalid-utf8' };
    }
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII fast path, control characters included.
  if (/^[\x00-\x7f]*$/.test(text)) return { ok: true, value: text };

  const mapped: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, NON_ASCII_SPACE)) mapped.push(0x20);
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped.push(cp);
  }
  if (mapped.length === 0) return { ok: false, reason: 'empty' };

  const normalized = String.fromCodePoint(...mapped).normalize('NFKC');

  for (const cp of mapped) {
    if (inRanges(cp, PROHIBITED)) return { ok: false, reason: 'prohibited' };
    if (inRanges(cp, UNASSIGNED)) return { ok: false, reason: 'unassigned' };
  }
  if (mapped.some((cp) => inRanges(cp, RAND_AL_CAT))) {
    if (mapped.some((cp) => inRanges(cp, L_CAT))) return { ok: false, reason: 'bidi' };
    if (!inRanges(mapped[0]!, RAND_AL_CAT) || !inRanges(mapped[mapped.length - 1]!, RAND_AL_CAT)) {
      return { ok: false, reason: 'bidi' };
    }
  }
  return { ok: true, value: normalized };
}

/**
 * The bytes SCRAM feeds to PBKDF2 for a password: SASLprep's output as UTF-8 or, when
 * SASLprep rejects the password, its raw bytes, as libpq and the server both do.
 *
 * @param password - The password as given by the user (a string is encoded as UTF-8).
 *
 * @example
 * ```ts
 * scramPasswordBytes('pencil').toString(); // 'pencil'
 * scramPasswordBytes('\u0627a');           // raw UTF-8 bytes (bidi rule fails)
 * ```
 */
export function scramPasswordBytes(password: string | Buffer): Buffer {
  const prepared = saslprep(password);
  if (prepared.ok) return Buffer.from(prepared.value, 'utf8');
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}
