/**
 * What every pgbb command runs with: streams, environment, the abort signal set
 * by SIGINT/SIGTERM, the library seam; the shape of a command as the runner
 * (run.ts) drives it; and helpers the commands share (connection options from
 * flags, the `-W` prompt).
 * @module
 */
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from '../entries/connection.js';
import type { CommandSpec } from './args.js';
import type { CliConnectionFlags } from './connection-flags.js';
import type { CliLibrary } from './library.js';
import type { Reporter } from './output.js';
import { promptPassword, type PromptInput } from './password.js';

/** A command's world; `process.ts` builds it from `process`, tests from doubles. */
export interface CliContext {
  stdout: { write(chunk: string | Uint8Array): unknown; isTTY?: boolean };
  /**
   * Standard output as a stream with backpressure, for `backup -D -` (the tar goes there).
   * @default a Writable over {@link stdout}'s `write` (tests)
   */
  stdoutStream?: Writable;
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
  /**
   * Register what to remove synchronously if pgbb must exit before the command's own cleanup has
   * run (a deliberate second interrupt); returns the function that unregisters it. The callback
   * returns the paths it removed, those it could not, and what is left to the user, for the
   * message. Absent in tests that do not need it.
   */
  onEmergencyExit?: (cleanup: () => { removed: string[]; failed: string[]; notes?: string[] }) => () => void;
}

/** What a command's parser makes of its arguments. */
export type CommandLine<T> = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; options: T };

/** How a run reports, chosen from its parsed options. */
export interface Reporting {
  /** `--json`. */
  json: boolean;
  /** `-P`. @default false */
  progress?: boolean;
  /** Number of `-v` (`-d` for combine). @default 0 */
  verbose?: number;
  /** The `-d` connection string, scrubbed from every message. */
  connectionString?: string | undefined;
}

/** A command run in progress, as the runner hands it to {@link CliCommand.execute}. */
export interface CommandRun {
  readonly ctx: CliContext;
  /** Writes progress, messages and the result; errors thrown by `execute` are reported by the runner. */
  readonly reporter: Reporter;
  /** A password asked for with `-W`: from now on it is scrubbed from the output too. */
  addSecret(password: string | undefined): void;
}

/**
 * One subcommand. The runner (run.ts) parses, prints `--help`/`--version`, builds the reporter,
 * calls {@link execute} and reports whatever it throws, a library `ConfigError` as a usage error.
 */
export interface CliCommand<T = unknown> {
  name: string;
  /** Program name of `error:`/`warning:` lines (pg_verifybackup names itself, pg_basebackup too). @default 'pgbb' */
  prog?: string;
  /** The option table, the `--help` text and the program name of usage errors. */
  spec: CommandSpec;
  /** Parse the arguments after the subcommand name. Pure; throws `UsageError` or `ConfigError`. */
  parse(argv: readonly string[]): CommandLine<T>;
  /** How to report, from the parsed options. */
  reporting(options: T): Reporting;
  /** Do the work; resolves to the exit status. */
  execute(options: T, run: CommandRun): Promise<number>;
  /**
   * The exit status of any error, parse errors included, when a caller needs one other than 1
   * (restore-wal: PostgreSQL takes 1 as "not in the archive"). @default 1
   */
  errorStatus?: number;
}

/** A command with its option type checked at the definition and erased in the table of commands. */
export function defineCommand<T>(command: CliCommand<T>): CliCommand {
  return command as unknown as CliCommand;
}

/** `-V` output, like PostgreSQL's tools (`pg_basebackup (PostgreSQL) 17.2`). */
export function versionLine(prog: string, version: string): string {
  return `${prog} (pg-basebackup) ${version}\n`;
}

/**
 * The library's connection options from the flags: explicit `-h/-p/-U` override the
 * `-d` connection string (libpq: later keywords win, and the tools add them after it);
 * the environment fills in the rest; `password` is the one `-W` asked for.
 */
export function connectionOptionsFromFlags(
  flags: CliConnectionFlags,
  ctx: CliContext,
  extra: { password?: string | undefined } = {},
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
