// Shared by the connection unit tests: the ConfigError catcher, the parse shortcut and a fully
// resolved options object to start from.
import { expect } from 'vitest';
import { parseConnectionString } from '../../../src/connection/conninfo.js';
import type { ResolvedConnectionOptions } from '../../../src/connection/types.js';
import type { ConfigError } from '../../../src/errors.js';

/** The parsed keywords as a plain object. */
export const parse = (s: string): Record<string, string> => ({ ...parseConnectionString(s) });

/** Runs `fn`, which must throw a ConfigError (code ERR_PGBB_CONFIG); returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** libpq's defaults for user `user` with the given password file, then `overrides`. */
export function resolvedOptions(
  user: string,
  passfile: string,
  overrides: Partial<ResolvedConnectionOptions> = {},
): ResolvedConnectionOptions {
  return {
    host: 'localhost',
    hostaddr: undefined,
    port: 5432,
    user,
    password: undefined,
    passfile,
    dbname: undefined,
    sslmode: 'prefer',
    sslrootcert: undefined,
    sslcert: undefined,
    sslkey: undefined,
    sslpassword: undefined,
    sslcrl: undefined,
    channelBinding: 'prefer',
    applicationName: undefined,
    connectTimeoutMs: undefined,
    keepalives: true,
    keepalivesIdleSec: undefined,
    params: {},
    ...overrides,
  };
}
