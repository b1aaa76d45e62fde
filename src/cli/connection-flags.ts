/**
 * The connection flags every pgbb command shares with PostgreSQL's replication
 * tools: `-d CONNSTR`, `-h`, `-p`, `-U`, `-w`, `-W` (and `-s` for the commands
 * that stream). Pure.
 * @module
 */
import { UsageError, type OptionSpec, type ParsedArgs } from './args.js';

const CONN = 'Connection options';

/** The connection rows of an option table, in pg_basebackup's order. */
export function connectionOptionSpecs(extra: { statusInterval?: boolean } = {}): OptionSpec[] {
  const rows: OptionSpec[] = [
    {
      key: 'dbname',
      short: 'd',
      long: 'dbname',
      arg: 'required',
      metavar: 'CONNSTR',
      group: CONN,
      help: 'connection string (key=value ... or postgresql:// URI)',
    },
    {
      key: 'host',
      short: 'h',
      long: 'host',
      arg: 'required',
      metavar: 'HOSTNAME',
      group: CONN,
      help: 'database server host or socket directory',
    },
    { key: 'port', short: 'p', long: 'port', arg: 'required', metavar: 'PORT', group: CONN, help: 'database server port number' },
  ];
  if (extra.statusInterval) {
    rows.push({
      key: 'statusInterval',
      short: 's',
      long: 'status-interval',
      arg: 'required',
      metavar: 'INTERVAL',
      group: CONN,
      help: 'seconds between status packets sent to the server\n(default: 10)',
    });
  }
  rows.push(
    { key: 'username', short: 'U', long: 'username', arg: 'required', metavar: 'NAME', group: CONN, help: 'connect as this database user' },
    { key: 'noPassword', short: 'w', long: 'no-password', group: CONN, help: 'never prompt for a password' },
    { key: 'password', short: 'W', long: 'password', group: CONN, help: 'prompt for a password before connecting' },
  );
  return rows;
}

/** What the connection flags asked for. Passwords never come from flags. */
export interface CliConnectionFlags {
  /** `-d`. */
  connectionString?: string;
  /** `-h`. */
  host?: string;
  /** `-p`. */
  port?: number;
  /** `-U`. */
  user?: string;
  /**
   * `prompt` with `-W` (ask on the terminal before connecting), `never` with `-w`,
   * `auto` otherwise. The last of `-w`/`-W` wins, as in PostgreSQL's tools.
   */
  passwordPrompt: 'auto' | 'never' | 'prompt';
}

/** Read the connection flags from parsed arguments. */
export function parseConnectionFlags(prog: string, args: ParsedArgs): CliConnectionFlags {
  const out: CliConnectionFlags = { passwordPrompt: 'auto' };
  const d = args.last('dbname');
  if (d !== undefined) out.connectionString = d;
  const h = args.last('host');
  if (h !== undefined) out.host = h;
  const u = args.last('username');
  if (u !== undefined) out.user = u;
  const p = args.last('port');
  if (p !== undefined) {
    if (!/^\d+$/.test(p.trim()) || Number(p) < 1 || Number(p) > 65535) {
      throw new UsageError(prog, `invalid port number: "${p}"`);
    }
    out.port = Number(p);
  }
  for (const o of args.occurrences) {
    if (o.key === 'noPassword') out.passwordPrompt = 'never';
    if (o.key === 'password') out.passwordPrompt = 'prompt';
  }
  return out;
}
