import { describe, expect, it } from 'vitest';
import { configError, parse } from './helpers.js';

describe('parseConnectionString: key=value', () => {
  it('parses whitespace-separated pairs', () => {
    expect(parse('host=db port=5433 user=replicator dbname=postgres')).toEqual({
      host: 'db',
      port: '5433',
      user: 'replicator',
      dbname: 'postgres',
    });
  });

  it('accepts every kind of whitespace and spaces around =', () => {
    expect(parse('  host = db\tport\n=\r5433\f\vuser=  u  ')).toEqual({ host: 'db', port: '5433', user: 'u' });
  });

  it('parses the empty string to nothing', () => {
    expect(parse('')).toEqual({});
    expect(parse('   ')).toEqual({});
  });

  it('unquotes single-quoted values with spaces and escapes', () => {
    expect(parse(`password='a b' application_name='it\\'s' sslkey='C:\\\\keys\\\\k.pem'`)).toEqual({
      password: 'a b',
      application_name: "it's",
      sslkey: 'C:\\keys\\k.pem',
    });
  });

  it('honours backslash escapes in unquoted values', () => {
    expect(parse(`user=o\\'brien password=a\\ b host=x\\\\y`)).toEqual({ user: "o'brien", password: 'a b', host: 'x\\y' });
  });

  it('drops a trailing lone backslash, like libpq', () => {
    expect(parse('user=abc\\')).toEqual({ user: 'abc' });
  });

  it('keeps empty values (quoted or at the end of the string)', () => {
    expect(parse("host='' user=")).toEqual({ host: '', user: '' });
  });

  it('reads the next token as the value after "key= " (libpq skips blanks after =)', () => {
    expect(parse('host= port=5')).toEqual({ host: 'port=5' });
  });

  it('needs no space after a closing quote', () => {
    expect(parse("host='db'port=5433")).toEqual({ host: 'db', port: '5433' });
  });

  it('lets a later setting override an earlier one', () => {
    expect(parse('host=a host=b')).toEqual({ host: 'b' });
  });

  it('maps requiressl onto sslmode', () => {
    expect(parse('requiressl=1')).toEqual({ sslmode: 'require' });
    expect(parse('requiressl=0')).toEqual({ sslmode: 'prefer' });
  });

  it('keeps several hosts as one comma-separated string', () => {
    expect(parse('host=h1,h2 port=5432,5433')).toEqual({ host: 'h1,h2', port: '5432,5433' });
  });

  it('knows every keyword named in the brief', () => {
    const keywords = `host hostaddr port user password passfile dbname sslmode sslrootcert sslcert sslkey sslpassword sslcrl
      sslcrldir sslsni channel_binding application_name fallback_application_name connect_timeout keepalives keepalives_idle
      keepalives_interval keepalives_count tcp_user_timeout options replication target_session_attrs gssencmode krbsrvname
      gsslib sslcompression service require_auth ssl_min_protocol_version ssl_max_protocol_version`.split(/\s+/);
    const s = keywords.map((k) => `${k}=x`).join(' ');
    expect(Object.keys(parse(s)).sort()).toEqual(keywords.sort());
  });

  it('rejects a missing =', () => {
    expect(configError(() => parse('host')).message).toBe('missing "=" after "host" in connection info string');
    expect(configError(() => parse('host db')).message).toContain('missing "=" after "host"');
  });

  it('rejects an unterminated quote', () => {
    expect(configError(() => parse("host='db")).message).toContain('unterminated quoted string');
  });

  it('rejects unknown keywords as libpq does', () => {
    expect(configError(() => parse('hots=db')).message).toBe('invalid connection option "hots"');
    expect(configError(() => parse('=x')).message).toBe('invalid connection option ""');
  });
});
