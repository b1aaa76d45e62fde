/**
 * `pgbb status --repo REPO [--max-backup-age D] [--max-wal-age D] [--max-rehearsal-age D] [-d CONN] [--json]`:
 * the library's `evaluateStatus` as a Nagios/Icinga plugin. One line per check on stdout, exit 0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a repository that cannot be read, or bad arguments, too).
 * @module
 */
import { parseLsn } from '../entries/lsn.js';
import { openRepository, parseDuration, unreadableRecordWarning } from '../entries/repository.js';
import {
  CHECK_EXIT_CODE,
  evaluateStatus,
  formatStatusReport,
  readRepositoryState,
  type RepositoryState,
  type ServerWalPosition,
  type StatusReport,
  type StatusThresholds,
} from '../entries/status.js';
import { parseArgs, rejectOperands, type CommandSpec, type ParsedArgs } from './args.js';
import { connectionOptionSpecs, parseConnectionFlags, type CliConnectionFlags } from './connection-flags.js';
import { connectionOptionsFromFlags, defineCommand, maybePromptPassword, type CommandLine, type CommandRun } from './context.js';
import { REPO_OPTION, repositoryAddress } from './repo-flags.js';

/** The option table of `pgbb status`. */
export const STATUS_COMMAND: CommandSpec = {
  prog: 'pgbb status',
  summary:
    'pgbb status checks a repository for monitoring (Nagios/Icinga): one line per check, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.',
  options: [
    REPO_OPTION,
    {
      key: 'max-backup-age',
      long: 'max-backup-age',
      arg: 'required',
      metavar: 'DURATION',
      help: 'WARNING when the newest full backup is older (CRITICAL at twice it;\ndefault 7d)',
    },
    {
      key: 'max-wal-age',
      long: 'max-wal-age',
      arg: 'required',
      metavar: 'DURATION',
      help: 'WARNING when the newest archived WAL segment is older (CRITICAL at twice\nit; default: no limit)',
    },
    {
      key: 'max-rehearsal-age',
      long: 'max-rehearsal-age',
      arg: 'required',
      metavar: 'DURATION',
      help: 'WARNING when the last rehearsal is older (CRITICAL at twice it; default:\nno limit)',
    },
    { key: 'json', long: 'json', help: 'print the checks as one JSON document on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
    ...connectionOptionSpecs(),
  ],
  epilog:
    "With a connection (-d), the WAL archive is compared with the server's current position.\nDurations: 30m, 12h, 7d, 1d12h. Checks and exit codes are described in docs/operations.md.",
  examples: [
    {
      comment: 'as an Icinga/Nagios check',
      command: 'pgbb status --repo /backups/db1 --max-backup-age 26h --max-wal-age 1h --max-rehearsal-age 8d',
    },
    { comment: 'with the server, as JSON', command: 'pgbb status --repo s3://backups/db1 -d "host=db1 user=replicator" --json' },
  ],
};

/** What the `pgbb status` (and `pgbb metrics`) command line asks for. */
export interface MonitorCliOptions {
  /** `--repo`; absent: `PGBB_REPO`. */
  repo: string | undefined;
  /** The connection, when a connection flag was given. */
  connection: CliConnectionFlags | undefined;
  json: boolean;
}

/** The repository and connection part of `pgbb status` and `pgbb metrics`. */
export function parseMonitorArgs(spec: CommandSpec, args: ParsedArgs): MonitorCliOptions {
  rejectOperands(spec, args);
  const flags = parseConnectionFlags(spec.prog, args);
  const asked = flags.connectionString !== undefined || flags.host !== undefined || flags.port !== undefined || flags.user !== undefined;
  return { repo: args.last('repo'), connection: asked ? flags : undefined, json: args.has('json') };
}

/** Parse `pgbb status`'s arguments. Pure; throws `UsageError` or `ConfigError` (a bad duration). */
export function parseStatusCommandLine(argv: readonly string[]): CommandLine<MonitorCliOptions & { thresholds: StatusThresholds }> {
  const args = parseArgs(STATUS_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const thresholds: StatusThresholds = {};
  const duration = (key: string): number | undefined => {
    const text = args.last(key);
    return text === undefined ? undefined : parseDuration(text);
  };
  const backup = duration('max-backup-age');
  if (backup !== undefined) thresholds.maxBackupAgeMs = backup;
  const wal = duration('max-wal-age');
  if (wal !== undefined) thresholds.maxWalAgeMs = wal;
  const rehearsal = duration('max-rehearsal-age');
  if (rehearsal !== undefined) thresholds.maxRehearsalAgeMs = rehearsal;
  return { kind: 'run', options: { ...parseMonitorArgs(STATUS_COMMAND, args), thresholds } };
}

/** The server's WAL position, or why it could not be had (that check is then UNKNOWN, the others still run). */
async function serverPosition(cli: MonitorCliOptions, run: CommandRun): Promise<ServerWalPosition | { error: string } | undefined> {
  if (cli.connection === undefined) return undefined;
  const password = await maybePromptPassword(cli.connection, run.ctx);
  run.addSecret(password);
  try {
    const id = await run.ctx.lib.identify(connectionOptionsFromFlags(cli.connection, run.ctx, { password }));
    return { lsn: parseLsn(id.xlogPos, 'server'), timeline: id.timeline };
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

/** Reads the repository (and asks the server) for `pgbb status` and `pgbb metrics`. */
export async function readMonitorState(prog: string, cli: MonitorCliOptions, run: CommandRun): Promise<RepositoryState> {
  const address = repositoryAddress(prog, cli.repo, run.ctx.env);
  await using repository = await openRepository(address);
  const state = await readRepositoryState(repository, { signal: run.ctx.signal, server: await serverPosition(cli, run) });
  for (const u of state.unreadableHistory ?? []) run.ctx.stderr.write(`pgbb: warning: ${unreadableRecordWarning(u)}\n`);
  return state;
}

/** The `--json` document: the overall state and exit code, every check, the performance data. */
export function statusJson(report: StatusReport): Record<string, unknown> {
  return { state: report.state, exitCode: report.exitCode, checks: report.checks, perfdata: report.perfdata };
}

/** `pgbb status`. */
export const statusCommand = defineCommand<MonitorCliOptions & { thresholds: StatusThresholds }>({
  name: 'status',
  spec: STATUS_COMMAND,
  parse: parseStatusCommandLine,
  reporting: (cli) => ({ json: cli.json, connectionString: cli.connection?.connectionString }),
  // A plugin that cannot tell (bad arguments, a repository that cannot be read) says UNKNOWN.
  errorStatus: CHECK_EXIT_CODE.UNKNOWN,
  async execute(cli, run) {
    const state = await readMonitorState(STATUS_COMMAND.prog, cli, run);
    const report = evaluateStatus(state, cli.thresholds, new Date());
    run.ctx.stdout.write(cli.json ? `${JSON.stringify(statusJson(report), null, 2)}\n` : formatStatusReport(report));
    return report.exitCode;
  },
});
