/**
 * `pgbb identify`: connect in replication mode, run IDENTIFY_SYSTEM and print the
 * system identifier, timeline, WAL position and server version.
 * @module
 */
import { parseArgs, rejectOperands, type CommandSpec } from './args.js';
import { connectionOptionSpecs, parseConnectionFlags, type CliConnectionFlags } from './connection-flags.js';
import { connectionOptionsFromFlags, defineCommand, maybePromptPassword, type CommandLine } from './context.js';
import type { IdentifyInfo } from './library.js';

/** The option table of `pgbb identify`. */
export const IDENTIFY_COMMAND: CommandSpec = {
  prog: 'pgbb identify',
  summary: 'pgbb identify shows the identity of a PostgreSQL server as a replication client sees it.',
  options: [
    { key: 'json', long: 'json', help: 'print the result as one JSON object on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
    ...connectionOptionSpecs(),
  ],
  epilog: 'Connection settings not given here come from the PG* environment variables\nand ~/.pgpass, as with libpq.',
  examples: [
    { comment: 'check that a replication connection works', command: 'pgbb identify -h db1 -U replicator' },
    { comment: 'the same as JSON, from a connection string', command: 'pgbb identify -d "host=db1 user=replicator" --json' },
  ],
};

/** What the `pgbb identify` command line asks for. */
export interface IdentifyCliOptions {
  connection: CliConnectionFlags;
  json: boolean;
}

/** Map `pgbb identify` arguments (connection flags, `--json`). Pure; throws `UsageError`. */
export function parseIdentifyCommandLine(argv: readonly string[]): CommandLine<IdentifyCliOptions> {
  const args = parseArgs(IDENTIFY_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  rejectOperands(IDENTIFY_COMMAND, args);
  return { kind: 'run', options: { connection: parseConnectionFlags(IDENTIFY_COMMAND.prog, args), json: args.has('json') } };
}

/** The text output of `pgbb identify`: one `label: value` line per field. */
export function formatIdentify(info: IdentifyInfo): string {
  const rows: [string, string][] = [
    ['system identifier', info.systemId],
    ['timeline', String(info.timeline)],
    ['xlogpos', info.xlogPos],
    ['dbname', info.dbName ?? ''],
    ['server version', `${info.serverVersion} (${info.serverVersionNum})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return `${rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`.trimEnd()).join('\n')}\n`;
}

/** `pgbb identify`. */
export const identifyCommand = defineCommand<IdentifyCliOptions>({
  name: 'identify',
  spec: IDENTIFY_COMMAND,
  parse: parseIdentifyCommandLine,
  reporting: (cli) => ({ json: cli.json, connectionString: cli.connection.connectionString }),
  async execute({ connection: flags }, { ctx, reporter, addSecret }) {
    const password = await maybePromptPassword(flags, ctx);
    addSecret(password);
    const info = await ctx.lib.identify(connectionOptionsFromFlags(flags, ctx, { password }));
    reporter.done({ ...info }, formatIdentify(info));
    return 0;
  },
});
