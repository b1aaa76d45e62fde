import { describe, expect, it } from 'vitest';
import { configError, resolvedOptions } from './helpers.js';
import { resolveConnectionOptions } from '../../../src/connection/options.js';
import { defaultHost, defaultPassfile, readPgEnvironment, type SystemHooks } from '../../../src/connection/env.js';
import type { ConnectionOptions } from '../../../src/connection/types.js';

// A machine with only /tmp, user "osuser", home /home/osuser.
const hooks: SystemHooks = {
  pathExists: (p) => p === '/tmp',
  osUser: () => 'osuser',
  homeDir: () => '/home/osuser',
  platform: 'linux',
};

const resolve = (input: ConnectionOptions, h: SystemHooks = hooks) => resolveConnectionOptions({ env: {}, ...input }, h);

describe('resolveConnectionOptions: defaults', () => {
  it('applies libpq defaults when nothing is given', () => {
    const o = resolve({});
    expect(o).toEqual(resolvedOptions('osuser', '/home/osuser/.pgpass', { host: '/tmp' }));
  });

  it('prefers /var/run/postgresql when it exists, else /tmp; localhost on Windows', () => {
    expect(defaultHost({ pathExists: () => true })).toBe('/var/run/postgresql');
    expect(defaultHost({ pathExists: () => false })).toBe('/tmp');
    expect(defaultHost({ pathExists: (p) => p === '/tmp' })).toBe('/tmp');
    expect(defaultHost({ platform: 'win32' })).toBe('localhost');
  });

  it('takes the password file from HOME, then the account home', () => {
    expect(defaultPassfile({ HOME: '/h' }, hooks)).toBe('/h/.pgpass');
    expect(defaultPassfile({}, hooks)).toBe('/home/osuser/.pgpass');
    expect(resolve({ env: { HOME: '/root' } }).passfile).toBe('/root/.pgpass');
  });

  it('fails clearly when the OS user name is unknown and none is given', () => {
    const h = {
      ...hooks,
      osUser: () => {
        throw new Error('no passwd entry');
      },
    };
    expect(configError(() => resolve({}, h)).message).toContain('PGUSER');
    expect(resolve({ user: 'u' }, h).user).toBe('u');
  });
});

describe('resolveConnectionOptions: precedence', () => {
  const env = {
    PGHOST: 'envhost',
    PGPORT: '6000',
    PGUSER: 'envuser',
    PGPASSWORD: 'envpw',
    PGDATABASE: 'envdb',
    PGSSLMODE: 'require',
    PGAPPNAME: 'envapp',
    PGCONNECT_TIMEOUT: '10',
    PGCHANNELBINDING: 'disable',
    PGSSLROOTCERT: '/env/root.crt',
    PGSSLCERT: '/env/c.crt',
    PGSSLKEY: '/env/c.key',
    PGSSLCRL: '/env/crl.pem',
    PGPASSFILE: '/env/pgpass',
    PGHOSTADDR: '10.0.0.1',
  };

  it('uses PG* variables when nothing else is given', () => {
    const o = resolve({ env });
    expect(o).toMatchObject({
      host: 'envhost',
      hostaddr: '10.0.0.1',
      port: 6000,
      user: 'envuser',
      password: 'envpw',
      dbname: 'envdb',
      sslmode: 'require',
      applicationName: 'envapp',
      connectTimeoutMs: 10_000,
      channelBinding: 'disable',
      sslrootcert: '/env/root.crt',
      sslcert: '/env/c.crt',
      sslkey: '/env/c.key',
      sslcrl: '/env/crl.pem',
      passfile: '/env/pgpass',
    });
    expect(o.params).toMatchObject({ host: 'envhost', port: '6000', user: 'envuser', dbname: 'envdb' });
  });

  it('lets the connection string beat the environment', () => {
    const o = resolve({ env, connectionString: 'host=strhost port=7000 user=struser sslmode=disable' });
    expect(o).toMatchObject({ host: 'strhost', port: 7000, user: 'struser', sslmode: 'disable', dbname: 'envdb' });
  });

  it('lets explicit fields beat the connection string', () => {
    const o = resolve({
      env,
      connectionString: 'postgresql://struser:strpw@strhost:7000/strdb?sslmode=disable&application_name=strapp',
      host: 'opthost',
      port: 8000,
      user: 'optuser',
      password: 'optpw',
      sslmode: 'verify-ca',
      applicationName: 'optapp',
      channelBinding: 'require',
      connectTimeoutMs: 1500,
    });
    expect(o).toMatchObject({
      host: 'opthost',
      port: 8000,
      user: 'optuser',
      password: 'optpw',
      dbname: 'strdb',
      sslmode: 'verify-ca',
      applicationName: 'optapp',
      channelBinding: 'require',
      connectTimeoutMs: 1500,
    });
    expect(o.params).toMatchObject({ host: 'opthost', port: '8000', user: 'optuser', connect_timeout: '2' });
  });

  it('treats an empty connection-string value as set: the PG* variable is skipped, the default used', () => {
    const o = resolve({ env, connectionString: "host='' hostaddr='' port=''" });
    expect(o.host).toBe('/tmp');
    expect(o.port).toBe(5432);
    expect(o.params['host']).toBeUndefined();
  });

  it('ignores empty explicit fields and empty variables', () => {
    expect(resolve({ env: { PGHOST: '' }, host: '' }).host).toBe('/tmp');
  });

  it('never copies passwords into params', () => {
    const o = resolve({ env, connectionString: 'sslpassword=kp' });
    expect(o.sslpassword).toBe('kp');
    expect(Object.keys(o.params)).not.toContain('password');
    expect(Object.keys(o.params)).not.toContain('sslpassword');
    expect(JSON.stringify(o.params)).not.toContain('envpw');
  });

  it('uses fallback_application_name when application_name is unset', () => {
    expect(resolve({ connectionString: 'fallback_application_name=pgbb' }).applicationName).toBe('pgbb');
    expect(resolve({ connectionString: 'fallback_application_name=pgbb application_name=x' }).applicationName).toBe('x');
  });

  it('honours PGREQUIRESSL only when PGSSLMODE is unset', () => {
    expect(resolve({ env: { PGREQUIRESSL: '1' } }).sslmode).toBe('require');
    expect(resolve({ env: { PGREQUIRESSL: '0' } }).sslmode).toBe('prefer');
    expect(resolve({ env: { PGREQUIRESSL: '1', PGSSLMODE: 'allow' } }).sslmode).toBe('allow');
  });

  it('reads process.env when no env is given', () => {
    const saved = process.env['PGAPPNAME'];
    process.env['PGAPPNAME'] = 'from-process-env';
    try {
      const { env: _omit, ...rest } = { env: undefined };
      expect(resolveConnectionOptions(rest, hooks).applicationName).toBe('from-process-env');
    } finally {
      if (saved === undefined) delete process.env['PGAPPNAME'];
      else process.env['PGAPPNAME'] = saved;
    }
  });

  it('reads only the PG* variables libpq reads', () => {
    const m = readPgEnvironment({ PGHOST: 'h', PGFOO: 'x', PGSERVICE: 's', HOME: '/h' });
    expect([...m.keys()].sort()).toEqual(['host', 'service']);
    expect(m.get('host')).toEqual({ value: 'h', source: 'PGHOST' });
  });
});

describe('resolveConnectionOptions: hosts', () => {
  it('takes a socket directory or a host name', () => {
    expect(resolve({ host: '/var/run/postgresql' }).host).toBe('/var/run/postgresql');
    expect(resolve({ connectionString: 'postgresql://%2Fsock/db' }).host).toBe('/sock');
    expect(resolve({ connectionString: 'postgresql://[::1]:5433' })).toMatchObject({ host: '::1', port: 5433 });
  });

  it('uses hostaddr as host when only hostaddr is given', () => {
    expect(resolve({ hostaddr: '127.0.0.1' })).toMatchObject({ host: '127.0.0.1', hostaddr: '127.0.0.1' });
    expect(resolve({ hostaddr: '::1', host: 'db' })).toMatchObject({ host: 'db', hostaddr: '::1' });
  });

  it('rejects a hostaddr that is not numeric', () => {
    expect(configError(() => resolve({ hostaddr: 'db.example.com' })).message).toContain('hostaddr');
  });

  it('rejects several hosts for now, clearly', () => {
    for (const connectionString of ['host=a,b', 'postgresql://a,b/db', 'port=1,2', 'hostaddr=1.1.1.1,2.2.2.2']) {
      expect(configError(() => resolve({ connectionString })).message).toContain('several hosts are not supported yet');
    }
    expect(configError(() => resolve({ env: { PGHOST: 'a,b' } })).message).toContain('PGHOST');
  });

  it('requires a host name for verify-full with hostaddr only', () => {
    expect(configError(() => resolve({ hostaddr: '10.0.0.1', sslmode: 'verify-full' })).message).toContain('host name must be specified');
  });
});

describe('resolveConnectionOptions: validation', () => {
  it('parses ports like libpq (whitespace allowed) and rejects bad ones', () => {
    expect(resolve({ connectionString: "port=' 5433 '" }).port).toBe(5433);
    for (const port of ['0', '65536', 'abc', '54x', '']) {
      if (port === '') continue;
      const err = configError(() => resolve({ env: { PGPORT: port } }));
      expect(err.message).toContain('PGPORT');
      expect(err.message).toContain(port);
    }
    expect(configError(() => resolve({ port: 1.5 })).message).toContain('port');
  });

  it('names the parameter, its source and the allowed values', () => {
    const err = configError(() => resolve({ connectionString: 'sslmode=on' }));
    expect(err.message).toBe(
      'invalid sslmode value "on" (from the connection string): allowed values are disable, allow, prefer, require, verify-ca, verify-full',
    );
    expect(configError(() => resolve({ env: { PGCHANNELBINDING: 'yes' } })).message).toBe(
      'invalid channel_binding value "yes" (from PGCHANNELBINDING): allowed values are disable, prefer, require',
    );
    expect(configError(() => resolve({ connectionString: 'target_session_attrs=sometimes' })).message).toContain(
      'allowed values are any, read-write',
    );
    expect(configError(() => resolve({ connectionString: 'ssl_min_protocol_version=TLSv9' })).message).toContain('TLSv1.3');
  });

  it('computes connect_timeout like libpq', () => {
    const ms = (v: string) => resolve({ connectionString: `connect_timeout='${v}'` }).connectTimeoutMs;
    expect(ms('10')).toBe(10_000);
    expect(ms('1')).toBe(2_000);
    expect(ms('0')).toBeUndefined();
    expect(ms('-5')).toBeUndefined();
    expect(ms(' 3 ')).toBe(3_000);
    expect(configError(() => ms('3s')).message).toBe(
      'invalid integer value "3s" for connection option "connect_timeout" (from the connection string): give a whole number',
    );
    expect(configError(() => ms('99999999999')).message).toContain('connect_timeout');
    expect(resolve({ connectTimeoutMs: 0 }).connectTimeoutMs).toBeUndefined();
    expect(resolve({ connectTimeoutMs: 250 }).connectTimeoutMs).toBe(250);
  });

  it('reads keepalives and keepalives_idle', () => {
    expect(resolve({ connectionString: 'keepalives=0' }).keepalives).toBe(false);
    expect(resolve({ connectionString: 'keepalives=2' }).keepalives).toBe(true);
    expect(resolve({ keepalives: false }).keepalives).toBe(false);
    expect(resolve({ connectionString: 'keepalives_idle=30' }).keepalivesIdleSec).toBe(30);
    expect(resolve({ connectionString: 'keepalives_idle=-3' }).keepalivesIdleSec).toBe(0);
    expect(configError(() => resolve({ connectionString: 'keepalives=yes' })).message).toContain('keepalives');
    expect(configError(() => resolve({ connectionString: 'tcp_user_timeout=soon' })).message).toContain('tcp_user_timeout');
  });

  it('applies sslrootcert=system like libpq 16+', () => {
    expect(resolve({ connectionString: 'sslrootcert=system host=db' }).sslmode).toBe('verify-full');
    expect(configError(() => resolve({ connectionString: 'sslrootcert=system sslmode=require' })).message).toContain(
      'weak sslmode "require"',
    );
  });

  it('checks the TLS version range', () => {
    expect(resolve({ connectionString: 'ssl_min_protocol_version=tlsv1.2 ssl_max_protocol_version=TLSv1.3' }).params).toMatchObject({
      ssl_min_protocol_version: 'tlsv1.2',
    });
    expect(
      configError(() => resolve({ connectionString: 'ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2' })).message,
    ).toContain('invalid SSL protocol version range');
  });

  it('drops the client certificate under sslcertmode=disable', () => {
    const o = resolve({ connectionString: 'sslcertmode=disable sslcert=/c sslkey=/k' });
    expect(o.sslcert).toBeUndefined();
    expect(o.sslkey).toBeUndefined();
  });

  it('fails on parameters that would change behaviour if ignored', () => {
    const cases: [string, string][] = [
      ['service=prod', 'service'],
      ['require_auth=scram-sha-256', 'require_auth'],
      ['requirepeer=postgres', 'requirepeer'],
      ['gssencmode=require', 'gssencmode=require'],
      ['sslcertmode=require', 'sslcertmode=require'],
      ['sslnegotiation=direct', 'sslnegotiation=direct'],
      ['target_session_attrs=read-write', 'target_session_attrs=read-write'],
      ['sslcrldir=/crls', 'sslcrldir'],
      ["options='-c work_mem=1MB'", 'options'],
      ['min_protocol_version=3.2', 'min_protocol_version=3.2'],
    ];
    for (const [connectionString, needle] of cases) {
      expect(configError(() => resolve({ connectionString })).message).toContain(needle);
    }
    expect(configError(() => resolve({ env: { PGSERVICE: 'prod' } })).message).toContain('PGSERVICE');
  });

  it('accepts harmless values of those parameters and the ignored ones', () => {
    const o = resolve({
      connectionString:
        'gssencmode=prefer target_session_attrs=any sslnegotiation=postgres sslcertmode=allow ' +
        'krbsrvname=pg gsslib=gssapi sslcompression=0 sslsni=1 keepalives_interval=5 keepalives_count=3 ' +
        'tcp_user_timeout=1000 load_balance_hosts=disable replication=true client_encoding=UTF8',
    });
    expect(o.params).toMatchObject({ gssencmode: 'prefer', krbsrvname: 'pg', sslsni: '1', replication: 'true' });
  });
});
