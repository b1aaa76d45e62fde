import { describe, expect, it } from 'vitest';
import { isConnectionString } from '../../../src/connection/conninfo.js';
import { configError, parse } from './helpers.js';

describe('parseConnectionString: URI', () => {
  it('parses user, password, host, port, dbname and parameters', () => {
    expect(parse('postgresql://rep:s3cret@db.example.com:5433/postgres?sslmode=verify-full&application_name=x')).toEqual({
      user: 'rep',
      password: 's3cret',
      host: 'db.example.com',
      port: '5433',
      dbname: 'postgres',
      sslmode: 'verify-full',
      application_name: 'x',
    });
  });

  it('accepts the short postgres:// designator and nothing else', () => {
    expect(parse('postgres://db')).toEqual({ host: 'db' });
    expect(isConnectionString('postgres://db')).toBe(true);
    expect(isConnectionString('mydb')).toBe(false);
    expect(isConnectionString('dbname=x')).toBe(true);
    // Case-sensitive, like libpq: this is a key=value string without "=".
    expect(configError(() => parse('POSTGRES://db')).message).toContain('missing "="');
  });

  it('parses a bare designator to nothing', () => {
    expect(parse('postgresql://')).toEqual({});
    expect(parse('postgresql:///')).toEqual({});
    expect(parse('postgresql://?')).toEqual({});
  });

  it('percent-decodes every part', () => {
    expect(parse('postgresql://us%40er:p%3Ass%2Fw%40rd@h%6Fst/d%62?application_name=a%20b%26c')).toEqual({
      user: 'us@er',
      password: 'p:ss/w@rd',
      host: 'host',
      dbname: 'db',
      application_name: 'a b&c',
    });
  });

  it('decodes percent-encoded UTF-8', () => {
    expect(parse('postgresql:///%C3%A9t%C3%A9')).toEqual({ dbname: 'été' });
  });

  it('does not decode + as a space', () => {
    expect(parse('postgresql:///a+b')).toEqual({ dbname: 'a+b' });
  });

  it('rejects bad percent escapes and %00', () => {
    expect(configError(() => parse('postgresql://h/db%zz')).message).toContain('invalid percent-encoded token');
    expect(configError(() => parse('postgresql://h/db%4')).message).toContain('invalid percent-encoded token');
    expect(configError(() => parse('postgresql://h/db%00')).message).toContain('%00');
  });

  it('parses IPv6 literals with and without port', () => {
    expect(parse('postgresql://[::1]:5433/db')).toEqual({ host: '::1', port: '5433', dbname: 'db' });
    expect(parse('postgresql://[fe80::1%25eth0]')).toEqual({ host: 'fe80::1%eth0' });
    expect(parse('postgresql://u@[2001:db8::7]?sslmode=disable')).toEqual({ user: 'u', host: '2001:db8::7', sslmode: 'disable' });
  });

  it('rejects malformed IPv6 literals', () => {
    expect(configError(() => parse('postgresql://[::1')).message).toContain('matching "]"');
    expect(configError(() => parse('postgresql://[]')).message).toContain('may not be empty');
    expect(configError(() => parse('postgresql://[::1]x')).message).toContain('unexpected character "x"');
  });

  it('takes a percent-encoded socket directory as host', () => {
    expect(parse('postgresql://%2Fvar%2Frun%2Fpostgresql/db')).toEqual({ host: '/var/run/postgresql', dbname: 'db' });
  });

  it('leaves host, port and dbname unset when empty (defaults and PG* apply)', () => {
    expect(parse('postgresql://:5433/')).toEqual({ port: '5433' });
    expect(parse('postgresql:///db?host=/tmp')).toEqual({ dbname: 'db', host: '/tmp' });
    expect(parse('postgresql://user@')).toEqual({ user: 'user' });
    expect(parse('postgresql://:pw@')).toEqual({ password: 'pw' });
  });

  it('keeps several hosts and ports in order', () => {
    expect(parse('postgresql://h1,h2:5433,[::1]:5434/db')).toEqual({ host: 'h1,h2,::1', port: ',5433,5434', dbname: 'db' });
  });

  it('maps ssl=true to sslmode=require, requiressl likewise', () => {
    expect(parse('postgresql://h?ssl=true')).toEqual({ host: 'h', sslmode: 'require' });
    expect(parse('postgresql://h?requiressl=1')).toEqual({ host: 'h', sslmode: 'require' });
  });

  it('lets query parameters override the netloc', () => {
    expect(parse('postgresql://a:1/?host=b&port=2')).toEqual({ host: 'b', port: '2' });
  });

  it('rejects unknown query parameters, a missing = and an extra =', () => {
    expect(configError(() => parse('postgresql://h?ssl=false')).message).toBe('invalid URI query parameter: "ssl"');
    expect(configError(() => parse('postgresql://h?foo=1')).message).toBe('invalid URI query parameter: "foo"');
    expect(configError(() => parse('postgresql://h?sslmode')).message).toContain('missing key/value separator');
    expect(configError(() => parse('postgresql://h?sslmode=a=b')).message).toContain('extra key/value separator');
  });

  it('accepts a trailing &', () => {
    expect(parse('postgresql://h?sslmode=disable&')).toEqual({ host: 'h', sslmode: 'disable' });
  });

  it('rejects a non-numeric port (a password with an unencoded "/")', () => {
    const err = configError(() => parse('postgresql://user:Zq9/Xy7@host/db'));
    expect(err.message).toContain('invalid port number');
    expect(err.message).not.toContain('Zq9');
    expect(err.message).not.toContain('Xy7');
  });
});
