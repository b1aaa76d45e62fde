import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../../../src/connection/conninfo.js';
import { resolveConnectionOptions } from '../../../src/connection/options.js';
import type { ConnectionOptions } from '../../../src/connection/types.js';
import {
  AUTO_CONF_FILE,
  buildPrimaryConninfo,
  escapeConfValue,
  quoteConninfoValue,
  recoveryConfigContents,
  STANDBY_SIGNAL_FILE,
} from '../../../src/recovery/standby.js';

const hooks = { pathExists: (p: string) => p === '/tmp', osUser: () => 'me', homeDir: () => '/home/me', platform: 'linux' as const };
const resolve = (input: ConnectionOptions) => resolveConnectionOptions({ env: {}, ...input }, hooks);

describe('quoteConninfoValue (appendConnStrVal)', () => {
  it('leaves plain values bare and quotes the rest', () => {
    expect(quoteConninfoValue('db.example_1')).toBe('db.example_1');
    expect(quoteConninfoValue('')).toBe("''");
    expect(quoteConninfoValue('/var/run/postgresql')).toBe("'/var/run/postgresql'");
    expect(quoteConninfoValue('a b')).toBe("'a b'");
    expect(quoteConninfoValue("it's")).toBe("'it\\'s'");
    expect(quoteConninfoValue('back\\slash')).toBe("'back\\\\slash'");
    expect(quoteConninfoValue('db-1')).toBe("'db-1'");
  });

  it('round-trips through our libpq parser', () => {
    for (const v of ['', 'plain', "o'brien", 'a\\b', ' lead and trail ', "x'\\'y", 'ünï', '=', '#;']) {
      expect(parseConnectionString(`application_name=${quoteConninfoValue(v)}`)['application_name']).toBe(v);
    }
  });
});

describe('buildPrimaryConninfo', () => {
  it('writes user, port, sslmode and channel_binding even when defaults, in libpq order', () => {
    expect(buildPrimaryConninfo(resolve({}), { includePassword: true })).toBe('user=me channel_binding=prefer port=5432 sslmode=prefer');
  });

  it('includes every explicitly set option, omits replication and fallback_application_name', () => {
    const o = resolve({
      connectionString:
        "host=db.example.com port=5433 user=rep password='pw d' sslmode=verify-full sslrootcert=/etc/ca.pem " +
        'application_name=standby1 fallback_application_name=pgbb replication=database connect_timeout=10 ' +
        'keepalives_idle=60 target_session_attrs=any',
    });
    expect(buildPrimaryConninfo(o, { includePassword: true })).toBe(
      "user=rep password='pw d' channel_binding=prefer connect_timeout=10 host=db.example.com port=5433 " +
        "application_name=standby1 keepalives_idle=60 sslmode='verify-full' sslrootcert='/etc/ca.pem' target_session_attrs=any",
    );
  });

  it('includes the password only when the connection had one and it is wanted', () => {
    const o = resolve({ host: 'db', user: 'rep', password: "s'3\\x", sslpassword: 'kp' });
    expect(buildPrimaryConninfo(o, { includePassword: true })).toContain("password='s\\'3\\\\x'");
    expect(buildPrimaryConninfo(o, { includePassword: true })).toContain('sslpassword=kp');
    const without = buildPrimaryConninfo(o, { includePassword: false });
    expect(without).not.toContain('password');
    expect(without).not.toContain("s'3");
    expect(buildPrimaryConninfo(resolve({ env: { PGPASSWORD: 'envpw' } }), { includePassword: true })).toContain('password=envpw');
  });

  it('appends dbname last when the user gave one (pg_basebackup 17+), unless turned off', () => {
    const o = resolve({ connectionString: 'postgresql://rep@db/appdb' });
    expect(buildPrimaryConninfo(o, { includePassword: false })).toBe(
      'user=rep channel_binding=prefer host=db port=5432 sslmode=prefer dbname=appdb',
    );
    expect(buildPrimaryConninfo(o, { includePassword: false, includeDbname: false })).not.toContain('dbname');
    expect(buildPrimaryConninfo(resolve({ env: { PGDATABASE: 'envdb' } }), { includePassword: false })).toMatch(/ dbname=envdb$/);
  });

  it('writes PG* settings as libpq would (they are in effect)', () => {
    const o = resolve({ env: { PGHOST: '/var/run/postgresql', PGAPPNAME: 'my app' } });
    expect(buildPrimaryConninfo(o, { includePassword: false })).toBe(
      "user=me channel_binding=prefer host='/var/run/postgresql' port=5432 application_name='my app' sslmode=prefer",
    );
  });

  it('produces a string our parser reads back to the same settings', () => {
    const o = resolve({ connectionString: "host=h user='a b' password='p\\'q' sslcert=/c.pem application_name=x" });
    const back = parseConnectionString(buildPrimaryConninfo(o, { includePassword: true }));
    expect(back).toMatchObject({ host: 'h', user: 'a b', password: "p'q", sslcert: '/c.pem', application_name: 'x' });
  });
});

describe('recovery configuration', () => {
  it('doubles quotes and backslashes for postgresql.auto.conf', () => {
    expect(escapeConfValue('plain')).toBe("'plain'");
    expect(escapeConfValue("user=a password='x\\'y'")).toBe("'user=a password=''x\\\\''y'''");
  });

  it('writes primary_conninfo and primary_slot_name lines', () => {
    expect(recoveryConfigContents({ primaryConninfo: "user=rep password='a b'" })).toBe("primary_conninfo = 'user=rep password=''a b'''\n");
    expect(recoveryConfigContents({ primaryConninfo: 'host=db', slotName: 'standby_1' })).toBe(
      "primary_conninfo = 'host=db'\nprimary_slot_name = 'standby_1'\n",
    );
  });

  it('rejects slot names the server would refuse', () => {
    for (const slotName of ['Bad', 'a-b', "x'y", '', 'a'.repeat(64)]) {
      expect(() => recoveryConfigContents({ primaryConninfo: 'host=db', slotName })).toThrow(
        expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }),
      );
    }
  });

  it('names the files', () => {
    expect(STANDBY_SIGNAL_FILE).toBe('standby.signal');
    expect(AUTO_CONF_FILE).toBe('postgresql.auto.conf');
  });
});
