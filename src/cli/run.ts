/**
 * `pgbb` subcommand dispatch (`pgbb <command> [options]`, `pgbb --help`, `pgbb help <command>`,
 * `pgbb --version`) and the one runner every subcommand goes through: parse, `--help`/`--version`,
 * the reporter, and the reporting of whatever the command throws. Process-free, so it runs in tests.
 * @module
 */
import { ConfigError } from '../entries/errors.js';
import { formatHelp, UsageError } from './args.js';
import { versionLine, type CliCommand, type CliContext, type CommandRun } from './context.js';
import { chooseMode, createReporter, makeScrubber, type Reporter } from './output.js';

/**
 * A subcommand as `pgbb` knows it before it runs: its name, its line in `pgbb --help`, and how to load
 * its module. A command's module, and the library code it uses, is imported only when that command
 * runs: `pgbb --version`, `pgbb --help` and each command start without the rest.
 */
export interface CommandEntry {
  name: string;
  /** One line for `pgbb --help`. */
  summary: string;
  /** Imports the command's module. */
  load(): Promise<CliCommand>;
}

/** Every subcommand, in `--help` order. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'identify',
    summary: 'show the system identifier, timeline, WAL position and version of a server',
    load: async () => (await import('./identify.js')).identifyCommand,
  },
  {
    name: 'backup',
    summary: 'take a base backup of a running server (like pg_basebackup)',
    load: async () => (await import('./backup.js')).backupCommand,
  },
  {
    name: 'verify',
    summary: 'verify a backup against its backup_manifest (like pg_verifybackup)',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  {
    name: 'combine',
    summary: 'combine a full backup and incremental backups into a full backup (like pg_combinebackup)',
    load: async () => (await import('./combine.js')).combineCommand,
  },
  {
    name: 'receive-wal',
    summary: 'archive write-ahead log continuously into a directory or a repository (like pg_receivewal)',
    load: async () => (await import('./receive-wal.js')).receiveWalCommand,
  },
  {
    name: 'restore',
    summary: 'restore a backup into a new data directory for (point-in-time) recovery',
    load: async () => (await import('./restore.js')).restoreCommand,
  },
  {
    name: 'restore-wal',
    summary: 'restore one WAL file from a WAL archive (restore_command; exit 0, 1 not found, 126 damaged)',
    load: async () => (await import('./restore-wal.js')).restoreWalCommand,
  },
  {
    name: 'list',
    summary: 'list the backups in a repository and the point-in-time window',
    load: async () => (await import('./list.js')).listCommand,
  },
  {
    name: 'show',
    summary: 'describe one backup in a repository',
    load: async () => (await import('./show.js')).showCommand,
  },
  {
    name: 'expire',
    summary: 'remove the backups and WAL a retention policy no longer needs from a repository',
    load: async () => (await import('./expire.js')).expireCommand,
  },
  {
    name: 'rehearse',
    summary: 'prove that a backup restores: restore, replay, check, clean up',
    load: async () => (await import('./rehearse.js')).rehearseCommand,
  },
  {
    name: 'status',
    summary: 'check a repository for monitoring (Nagios/Icinga exit codes)',
    load: async () => (await import('./status.js')).statusCommand,
  },
  {
    name: 'metrics',
    summary: 'print the figures of a repository in the Prometheus text format',
    load: async () => (await import('./metrics.js')).metricsCommand,
  },
];

/** `pgbb --help`. */
export function mainHelp(commands: readonly CommandEntry[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'pgbb takes physical backups of PostgreSQL 13-18 over the replication protocol.',
    '',
    'Usage:',
    '  pgbb COMMAND [OPTION]...',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Options:',
    '  -V, --version  print the version and exit',
    '  -?, --help     print this help and exit',
    '',
    'Run "pgbb COMMAND --help" for the options of a command.',
    '',
  ].join('\n');
}

/** Run `pgbb` with `argv` (after the program name); resolves to the exit status. */
export async function runCli(argv: readonly string[], ctx: CliContext, commands: readonly CommandEntry[] = COMMANDS): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    ctx.stderr.write(`pgbb: no command given\nTry "pgbb --help" for more information.\n`);
    return 1;
  }
  if (first === '--help' || first === '-?' || first === '-h') {
    ctx.stdout.write(mainHelp(commands));
    return 0;
  }
  if (first === '--version' || first === '-V') {
    ctx.stdout.write(versionLine('pgbb', ctx.version));
    return 0;
  }
  if (first === 'help') {
    if (rest[0] === undefined) {
      ctx.stdout.write(mainHelp(commands));
      return 0;
    }
    return runCli([rest[0], '--help'], ctx, commands);
  }
  const entry = commands.find((c) => c.name === first);
  if (!entry) {
    const what = first.startsWith('-') ? `unrecognized option "${first}"` : `unknown command "${first}"`;
    ctx.stderr.write(`pgbb: ${what}\nTry "pgbb --help" for more information.\n`);
    return 1;
  }
  return runCommand(await entry.load(), rest, ctx);
}

/**
 * A library `ConfigError` is a usage error of the command whose options produced it: reported with
 * `Try "pgbb X --help"` and exit 1. This is the one place that turns one into the other.
 */
export function asUsageError(err: unknown, prog: string): unknown {
  if (err instanceof ConfigError && !(err instanceof UsageError)) return new UsageError(prog, err.message, { cause: err });
  return err;
}

/** The `-d` values of a command line, whatever it parses into: a usage error may quote one. */
function connectionStringsIn(argv: readonly string[]): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if ((a === '-d' || a === '--dbname') && argv[i + 1] !== undefined) out.push(argv[i + 1] as string);
    else if (a.startsWith('--dbname=')) out.push(a.slice('--dbname='.length));
    else if (a.startsWith('-d') && a.length > 2 && !a.startsWith('--')) out.push(a.slice(2));
  });
  return out;
}

/**
 * Run one subcommand: parse; `--help` and `--version` print on stdout (status 0); anything thrown,
 * while parsing or running, is reported by the reporter (JSON too with `--json`) with status 1. No
 * connection string, `PGPASSWORD` or prompted password is ever printed.
 */
export async function runCommand(command: CliCommand, argv: readonly string[], ctx: CliContext): Promise<number> {
  const prog = command.prog ?? 'pgbb';
  const secrets: (string | undefined)[] = [ctx.env['PGPASSWORD']];
  const connectionStrings: (string | undefined)[] = connectionStringsIn(argv);
  let scrub = (s: string) => s;
  // The connection code (and its redaction) is loaded only once there is a connection string to mask:
  // commands without one (verify, restore, ...) start without it.
  let redaction: typeof import('../entries/connection.js') | undefined;
  const loadRedaction = async () => {
    if (!redaction && connectionStrings.some(Boolean)) redaction = await import('../entries/connection.js');
  };
  const rescrub = () => {
    scrub = makeScrubber({
      connectionStrings,
      passwords: secrets,
      redact: redaction?.redactConnectionString ?? ((cs) => cs),
      ...(redaction ? { mask: redaction.REDACTED } : {}),
    });
  };
  await loadRedaction();
  rescrub();
  const reporterWith = (o: { json: boolean; progress?: boolean | undefined; verbose?: number | undefined }): Reporter =>
    createReporter({
      mode: chooseMode({ json: o.json, stderrIsTTY: ctx.stderr.isTTY }),
      prog,
      stdout: { write: (s: string) => ctx.stdout.write(s) },
      stderr: ctx.stderr,
      progress: o.progress ?? false,
      verbose: o.verbose ?? 0,
      scrub: (s) => scrub(s),
      ...(ctx.now ? { now: ctx.now } : {}),
    });

  let parsed;
  try {
    parsed = command.parse(argv);
  } catch (err) {
    const status = reporterWith({ json: argv.includes('--json') }).error(asUsageError(err, command.spec.prog));
    return command.errorStatus ?? status;
  }
  if (parsed.kind !== 'run') {
    ctx.stdout.write(parsed.kind === 'help' ? formatHelp(command.spec) : versionLine('pgbb', ctx.version));
    return 0;
  }
  const reporting = command.reporting(parsed.options);
  connectionStrings.push(reporting.connectionString);
  await loadRedaction();
  rescrub();
  const reporter = reporterWith(reporting);
  const run: CommandRun = {
    ctx,
    reporter,
    addSecret(password) {
      secrets.push(password);
      rescrub();
    },
  };
  try {
    return await command.execute(parsed.options, run);
  } catch (err) {
    const status = reporter.error(asUsageError(err, command.spec.prog));
    return command.errorStatus ?? status;
  }
}
