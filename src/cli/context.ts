/**
 * What every pgbb command runs with: streams, environment, the abort signal set
 * by SIGINT/SIGTERM, the library seam, and helpers shared by the commands
 * (connection options from flags, the `-W` prompt, the secrets scrubber).
 * @module
 */
import { redactConnectionString, REDACTED, type ConnectionOptions } from '../entries/connection.js';
import { formatHelp, type CommandSpec } from './args.js';
import type { CliConnectionFlags } from './connection-flags.js';
import type { CliLibrary } from './library.js';
import { chooseMode, createReporter, makeScrubber, type Reporter } from './output.js';
import { promptPassword, type PromptInput } from './password.js';

/** A command's world; `main.ts` builds it from `process`, tests from doubles. */
export interface CliContext {
  stdout: { write(chunk: string | Uint8Array): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
  stdin: PromptInput;
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** The package version. */
  version: string;
  lib: CliLibrary;
  /** Clock for the reporter's throttling. @default Date.now */
  now?: () => number;
}

/** One subcommand. */
export interface CliCommand {
  name: string;
  /** One line for `pgbb --help`. */
  summary: string;
  /** Run with the arguments after the subcommand name; resolves to the exit status. */
  run(argv: readonly string[], ctx: CliContext): Promise<number>;
}

/** `-V` output, like PostgreSQL's tools (`pg_basebackup (PostgreSQL) 17.2`). */
export function versionLine(prog: string, version: string): string {
  return `${prog} (pg-basebackup) ${version}\n`;
}

/** What a command's parser makes of its arguments. */
export type CommandLine<T> = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; options: T };

/**
 * The start every command shares: parse `argv`; `--help` and `--version` print on stdout
 * and end the command (status 0); a parse error goes to `onError` (default
 * {@link reportEarlyError}), whose status ends it. Returns the options to run with, or
 * the exit status.
 *
 * @example
 * ```ts
 * const cli = parseOrExit(ctx, argv, COMBINE_COMMAND, parseCombineCommandLine);
 * if (typeof cli === 'number') return cli;
 * ```
 */
export function parseOrExit<T extends object>(ctx: CliContext, argv: readonly string[], spec: CommandSpec,
  parse: (argv: readonly string[]) => CommandLine<T>,
  onError: (err: unknown) => number = (err) => reportEarlyError(ctx, argv, err)): T | number {
  try {
    const parsed = parse(argv);
    if (parsed.kind === 'run') return parsed.options;
    ctx.stdout.write(parsed.kind === 'help' ? formatHelp(spec) : versionLine('pgbb', ctx.version));
    return 0;
  } catch (err) {
    return onError(err);
  }
}

/**
 * The library's connection options from the flags: explicit `-h/-p/-U` override the
 * `-d` connection string (libpq: later keywords win, and the tools add them after it);
 * the environment fills in the rest; `password` is the one `-W` asked for.
 */
export function connectionOptionsFromFlags(
  flags: CliConnectionFlags, ctx: CliContext, extra: { password?: string | undefined } = {},
): ConnectionOptions {
  const out: ConnectionOptions = { env: ctx.env, signal: ctx.signal };
  if (flags.connectionString !== undefined) out.connectionString = flags.connectionString;
  if (flags.host !== undefined) out.host = flags.host;
  if (flags.port !== undefined) out.port = flags.port;
  if (flags.user !== undefined) out.user = flags.user;
  if (extra.password !== undefined) out.password = extra.password;
  return out;
}

/** Ask for the password when `-W` was given; otherwise `undefined`. */
export async function maybePromptPassword(flags: CliConnectionFlags, ctx: CliContext): Promise<string | undefined> {
  if (flags.passwordPrompt !== 'prompt') return undefined;
  return promptPassword({ input: ctx.stdin, output: ctx.stderr, signal: ctx.signal });
}

/** The scrubber for a run: the connection string, PGPASSWORD and a prompted password never print. */
export function scrubberFor(ctx: CliContext, flags: Pick<CliConnectionFlags, 'connectionString'> | undefined,
  password?: string): (text: string) => string {
  return makeScrubber({
    connectionStrings: [flags?.connectionString],
    passwords: [password, ctx.env['PGPASSWORD']],
    redact: redactConnectionString,
    mask: REDACTED,
  });
}

/** A reporter for this context. */
export function reporterFor(ctx: CliContext, o: {
  json: boolean; progress?: boolean; verbose?: number; scrub?: (s: string) => string;
}): Reporter {
  return createReporter({
    mode: chooseMode({ json: o.json, stderrIsTTY: ctx.stderr.isTTY }),
    stdout: { write: (s: string) => ctx.stdout.write(s) },
    stderr: ctx.stderr,
    progress: o.progress ?? false,
    verbose: o.verbose ?? 0,
    ...(o.scrub ? { scrub: o.scrub } : {}),
    ...(ctx.now ? { now: ctx.now } : {}),
  });
}

/**
 * Report an error that happened before the command's own options were known (a
 * usage error): JSON too when `--json` is on the command line.
 */
export function reportEarlyError(ctx: CliContext, argv: readonly string[], err: unknown,
  flags?: Pick<CliConnectionFlags, 'connectionString'>): number {
  // A usage error can quote a -d value; scrub it whatever it is.
  const dIndex = argv.findIndex((a) => a === '-d' || a === '--dbname');
  const inline = argv.filter((a) => a.startsWith('--dbname=') || (a.startsWith('-d') && a.length > 2)).map((a) => a.startsWith('--') ? a.slice(9) : a.slice(2));
  const candidates = [flags?.connectionString, dIndex >= 0 ? argv[dIndex + 1] : undefined, ...inline];
  const scrub = makeScrubber({
    connectionStrings: candidates, passwords: [ctx.env['PGPASSWORD']], redact: redactConnectionString, mask: REDACTED,
  });
  return reporterFor(ctx, { json: argv.includes('--json'), scrub }).error(err);
}
