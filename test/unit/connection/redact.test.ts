import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../../../src/connection/conninfo.js';
import { resolveConnectionOptions } from '../../../src/connection/options.js';
import { describeConnection, REDACTED, redactConnectionString } from '../../../src/connection/redact.js';
import type { ConnectionOptions } from '../../../src/connection/types.js';

const hooks = { pathExists: (p: string) => p === '/tmp', osUser: () => 'me', homeDir: () => '/home/me', platform: 'linux' as const };

describe('describeConnection', () => {
  const base = { hostaddr: undefined, port: 5432, user: 'rep' };
  it('names TCP, IPv6, hostaddr and socket connections', () => {
    expect(describeConnection({ ...base, host: 'db.example.com' })).toBe('rep@db.example.com:5432');
    expect(describeConnection({ ...base, host: '::1', port: 5433 })).toBe('rep@[::1]:5433');
    expect(describeConnection({ ...base, host: 'db', hostaddr: '10.0.0.5' })).toBe('rep@db:5432 (10.0.0.5)');
    expect(describeConnection({ ...base, host: '10.0.0.5', hostaddr: '10.0.0.5' })).toBe('rep@10.0.0.5:5432');
    expect(describeConnection({ ...base, host: '/var/run/postgresql' })).toBe('rep@/var/run/postgresql/.s.PGSQL.5432');
    expect(describeConnection({ ...base, host: '/tmp/' })).toBe('rep@/tmp/.s.PGSQL.5432');
  });

  it('never shows the password', () => {
    const o = resolveConnectionOptions({ env: {}, connectionString: 'host=db user=rep password=Hunter2Zz' }, hooks);
    expect(describeConnection(o)).not.toContain('Hunter2Zz');
  });
});

describe('redactConnectionString', () => {
  const cases: [string, string][] = [
    ['host=db password=s3cret user=u', `host=db password=${REDACTED} user=u`],
    ["host=db password='s3 cr\\'et' user=u", `host=db password=${REDACTED} user=u`],
    ['password = s3cret', `password = ${REDACTED}`],
    ['sslpassword=k3y host=x', `sslpassword=${REDACTED} host=x`],
    ["password='never closed host=x", `password=${REDACTED}`],
    ['password=a b c host=x', `password=${REDACTED} ${REDACTED} ${REDACTED} host=x`],
    ['password=a b=c host=x', `password=${REDACTED} ${REDACTED} host=x`],
    ['host=db', 'host=db'],
    ['postgresql://u:s3cret@db:5432/x', `postgresql://u:${REDACTED}@db:5432/x`],
    ['postgres://u@db/x', 'postgres://u@db/x'],
    ['postgresql://u:p%40ss@db/x?password=two&sslmode=require', `postgresql://u:${REDACTED}@db/x?password=${REDACTED}&sslmode=require`],
    ['postgresql://db/x?sslpassword=k&pass%77ord=w', `postgresql://db/x?sslpassword=${REDACTED}&pass%77ord=${REDACTED}`],
    ['postgresql://u:pa/ss@db/x', `postgresql://u:${REDACTED}@db/x`],
    ['postgresql://u:p@ss@db/x', `postgresql://u:${REDACTED}@db/x`],
    ['postgresql://db/x?password=a&b&host=h', `postgresql://db/x?password=${REDACTED}&${REDACTED}&host=h`],
  ];
  for (const [input, expected] of cases) {
    it(`masks ${JSON.stringify(input)}`, () => {
      expect(redactConnectionString(input)).toBe(expected);
    });
  }
});

describe('no error message ever contains a password', () => {
  const secret = 'Zx9Secret';
  // Inputs that fail somewhere in parsing or resolution, each with the secret in it.
  const bad: ConnectionOptions[] = [
    { connectionString: `password=${secret} hots=db` },
    { connectionString: `password=${secret}' host=db sslmode=x` },
    { connectionString: `password='${secret}` },
    { connectionString: `password=${secret} more` },
    { connectionString: `password=Zx9 Secret` },
    { connectionString: `password=Zx9 Secret=1` },
    { connectionString: `postgresql://u:${secret}@[::1/db` },
    { connectionString: `postgresql://u:${secret}@[]/db` },
    { connectionString: `postgresql://u:${secret}@[::1]x/db` },
    { connectionString: `postgresql://u:Zx9/Secret@db/x` },
    { connectionString: `postgresql://u:Zx9%zzSecret@db/x` },
    { connectionString: `postgresql://u:Zx9%00Secret@db/x` },
    { connectionString: `postgresql://u:${secret}@db/x?foo=1` },
    { connectionString: `postgresql://u:${secret}@db/x?sslmode` },
    { connectionString: `postgresql://db/x?password=${secret}%zz` },
    { connectionString: `postgresql://db/x?password=Zx9&Secret` },
    { connectionString: `postgresql://db/x?password=Zx9&Secret=1` },
    { connectionString: `postgresql://db/x?password=${secret}=1` },
    { connectionString: `postgresql://u:${secret}@a,b/x` },
    { connectionString: `password=${secret} sslmode=bogus` },
    { connectionString: `password=${secret} port=99999` },
    { connectionString: `password=${secret} service=x` },
    { connectionString: `sslpassword=${secret} connect_timeout=x` },
    { password: secret, sslmode: 'nope' as never },
    { password: secret, port: -1 },
    { env: { PGPASSWORD: secret, PGSSLMODE: 'x' } },
    { env: { PGPASSWORD: secret, PGPORT: 'x' } },
  ];
  for (const input of bad) {
    it(`hides it for ${JSON.stringify(input)}`, () => {
      let message = '';
      try {
        resolveConnectionOptions({ env: {}, ...input }, hooks);
      } catch (err) {
        message = `${(err as Error).message} ${String((err as Error).stack)}`;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('Zx9');
      expect(message).not.toContain('Secret');
    });
  }

  it('parses every case above that is a string without leaking either', () => {
    for (const { connectionString } of bad) {
      if (connectionString === undefined) continue;
      try {
        parseConnectionString(connectionString);
      } catch (err) {
        expect((err as Error).message).not.toMatch(/Zx9|Secret/);
      }
    }
  });
});
