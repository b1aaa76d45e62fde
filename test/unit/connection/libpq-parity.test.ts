// Parity with libpq itself: each fixture holds a connection string and what libpq 18's
// PQconninfoParse() returned for it (the keywords it set, or that it failed), captured
// by calling node_modules/pg18/native/lib/libpq.so.5 through Python ctypes. Our parser
// must set exactly the same keywords to the same values, and fail where libpq fails.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../../../src/connection/conninfo.js';
import { findPgpassPassword, parsePgpass } from '../../../src/connection/pgpass.js';

type Fixture = { input: string; ok: Record<string, string> } | { input: string; error: string };
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/libpq18-conninfo-parse.json', import.meta.url), 'utf8')) as Fixture[];

describe('parity with libpq 18 PQconninfoParse', () => {
  it('has a meaningful number of fixtures', () => {
    expect(fixtures.length).toBeGreaterThan(80);
  });
  for (const f of fixtures) {
    it(`${'ok' in f ? 'parses' : 'rejects'} ${JSON.stringify(f.input)}`, () => {
      if ('ok' in f) {
        expect({ ...parseConnectionString(f.input) }).toEqual(f.ok);
      } else {
        expect(() => parseConnectionString(f.input)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
      }
    });
  }
});

// .pgpass lookups: each fixture is a password file, a lookup key, and the password
// libpq 18 found (PQpass() after PQconnectStartParams with passfile=..., the file at
// mode 0600; libpq's compiled-in socket directory there is /tmp), or null.
type PgpassFixture = { text: string; host: string; port: number; dbname: string; user: string; libpq: string | null };
const pgpassFixtures = JSON.parse(readFileSync(new URL('./fixtures/libpq18-pgpass.json', import.meta.url), 'utf8')) as PgpassFixture[];

describe('parity with libpq 18 passwordFromFile', () => {
  for (const f of pgpassFixtures) {
    it(`finds ${JSON.stringify(f.libpq)} in ${JSON.stringify(f.text)} for ${f.host}`, () => {
      expect(findPgpassPassword(parsePgpass(f.text), f) ?? null).toBe(f.libpq);
    });
  }
});
