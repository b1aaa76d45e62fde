/**
 * A getopt_long-compatible command-line parser, pure and table-driven, so that
 * `pgbb` accepts exactly what PostgreSQL's own tools accept:
 *
 * - short options, clustered (`-vP`), with a required value attached or
 *   separate (`-Ft`, `-F t`, `-D -`); an optional value only attached (`-x1`);
 * - long options with `--name=value` or `--name value` (required values), and
 *   `--name[=value]` only for optional values, as glibc does;
 * - unambiguous prefixes of long options (`--pgd` for `--pgdata`), as glibc does;
 * - operands anywhere (glibc permutes them to the end); `--` ends the options;
 * - repeated options are all kept, in order (`-T` many times, `-v -v`).
 *
 * The same table renders the `--help` text.
 * @module
 */
import { ConfigError } from '../entries/errors.js';

/** How an option takes a value, as getopt_long's `has_arg`. */
export type ArgKind = 'none' | 'required' | 'optional';

/** One row of a command's option table. */
export interface OptionSpec {
  /** Key under which occurrences are collected, e.g. `pgdata`. */
  key: string;
  /** Long name without dashes, e.g. `pgdata`. */
  long?: string;
  /** One-character short name without the dash, e.g. `D`. */
  short?: string;
  /** @default 'none' */
  arg?: ArgKind;
  /** Placeholder for the value in `--help`, e.g. `DIRECTORY`. */
  metavar?: string;
  /** One-line description for `--help`; continuation lines are indented. */
  help: string;
  /** Heading the option is listed under in `--help`. */
  group?: string;
  /** Listed in neither `--help` nor completions (compatibility spellings). */
  hidden?: boolean;
}

/** A command's option table plus the words of its `--help`. */
export interface CommandSpec {
  /** Program name as printed in messages, e.g. `pgbb backup`. */
  prog: string;
  /** First line of `--help`. */
  summary: string;
  /** Usage lines after `Usage:`, without the leading program name. @default ['[OPTION]...'] */
  usage?: string[];
  options: OptionSpec[];
  /** Text printed after the option list. */
  epilog?: string;
  /** Command lines shown under `Examples:` at the end of `--help`, each with a comment line above it. */
  examples?: { comment: string; command: string }[];
}

/** One option as it appeared on the command line. */
export interface Occurrence {
  key: string;
  /** The value, or `undefined` for a flag (or an optional value left out). */
  value: string | undefined;
  /** How the user spelled it (`-F`, `--format`), for messages. */
  spelling: string;
}

/**
 * A command-line usage error: getopt's complaints and the option checks that
 * pg_basebackup reports with `Try "... --help" for more information.`.
 * The CLI prints it and exits with status 1.
 */
export class UsageError extends ConfigError {
  override name = 'UsageError';
  /** The command whose `--help` the hint points at, e.g. `pgbb backup`. */
  readonly prog: string;
  /**
   * True for getopt-level complaints (unknown option, missing value), printed as
   * `prog: message`; false for option checks, printed as `pgbb: error: message`.
   */
  readonly getopt: boolean;
  constructor(prog: string, message: string, options?: { getopt?: boolean; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.prog = prog;
    this.getopt = options?.getopt ?? false;
  }
  /** The `Try "... --help"` line. */
  get hint(): string {
    return `Try "${this.prog} --help" for more information.`;
  }
}

/** The result of {@link parseArgs}. */
export class ParsedArgs {
  /** Every option occurrence, in command-line order. */
  readonly occurrences: readonly Occurrence[];
  /** Operands (non-option arguments), in order. */
  readonly operands: readonly string[];
  constructor(occurrences: Occurrence[], operands: string[]) {
    this.occurrences = occurrences;
    this.operands = operands;
  }
  /** Whether the option appeared at least once. */
  has(key: string): boolean {
    return this.occurrences.some((o) => o.key === key);
  }
  /** How many times the option appeared (`-v -v` → 2). */
  count(key: string): number {
    return this.occurrences.filter((o) => o.key === key).length;
  }
  /** The last value given (later options override earlier ones, as in pg tools). */
  last(key: string): string | undefined {
    for (let i = this.occurrences.length - 1; i >= 0; i--) {
      const o = this.occurrences[i];
      if (o?.key === key) return o.value;
    }
    return undefined;
  }
  /** The last occurrence, for its spelling. */
  lastOccurrence(key: string): Occurrence | undefined {
    for (let i = this.occurrences.length - 1; i >= 0; i--) {
      const o = this.occurrences[i];
      if (o?.key === key) return o;
    }
    return undefined;
  }
  /** Every value given, in order (repeatable options such as `-T`). */
  all(key: string): string[] {
    return this.occurrences.filter((o) => o.key === key && o.value !== undefined).map((o) => o.value as string);
  }
}

function findLong(spec: CommandSpec, name: string): OptionSpec {
  const exact = spec.options.find((o) => o.long === name);
  if (exact) return exact;
  // glibc accepts any unambiguous prefix of a long option name.
  const candidates = spec.options.filter((o) => o.long?.startsWith(name));
  const distinct = [...new Set(candidates.map((o) => o.key))];
  if (candidates.length > 0 && distinct.length === 1) return candidates[0] as OptionSpec;
  if (candidates.length > 1) {
    const names = candidates.map((o) => `--${o.long}`).join(' ');
    throw new UsageError(spec.prog, `option "--${name}" is ambiguous; possibilities: ${names}`, { getopt: true });
  }
  throw new UsageError(spec.prog, `unrecognized option "--${name}"`, { getopt: true });
}

/**
 * Parse `argv` (without the program and subcommand names) against a command's table.
 * Throws {@link UsageError} on anything getopt_long would reject.
 *
 * @example
 * ```ts
 * const args = parseArgs(spec, ['-Ft', '-D', 'out', '-vv']);
 * args.last('format'); // 't'
 * args.count('verbose'); // 2
 * ```
 */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const occurrences: Occurrence[] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      const opt = findLong(spec, name);
      const kind = opt.arg ?? 'none';
      const spelling = `--${opt.long ?? name}`;
      if (kind === 'none') {
        if (inline !== undefined) {
          throw new UsageError(spec.prog, `option "${spelling}" doesn't allow an argument`, { getopt: true });
        }
        occurrences.push({ key: opt.key, value: undefined, spelling });
      } else if (kind === 'optional') {
        // getopt_long never takes the next word as an optional argument.
        occurrences.push({ key: opt.key, value: inline, spelling });
      } else if (inline !== undefined) {
        occurrences.push({ key: opt.key, value: inline, spelling });
      } else {
        if (i + 1 >= argv.length) {
          throw new UsageError(spec.prog, `option "${spelling}" requires an argument`, { getopt: true });
        }
        occurrences.push({ key: opt.key, value: argv[++i] as string, spelling });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of short options: flags until one that takes a value.
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j] as string;
        const opt = spec.options.find((o) => o.short === ch);
        if (!opt) throw new UsageError(spec.prog, `invalid option -- "${ch}"`, { getopt: true });
        const kind = opt.arg ?? 'none';
        const spelling = `-${ch}`;
        if (kind === 'none') {
          occurrences.push({ key: opt.key, value: undefined, spelling });
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest.length > 0) {
          occurrences.push({ key: opt.key, value: rest, spelling });
        } else if (kind === 'optional') {
          occurrences.push({ key: opt.key, value: undefined, spelling });
        } else {
          if (i + 1 >= argv.length) {
            throw new UsageError(spec.prog, `option requires an argument -- "${ch}"`, { getopt: true });
          }
          // Like getopt, take the next word whatever it looks like (`-D -`, `-l -x`).
          occurrences.push({ key: opt.key, value: argv[++i] as string, spelling });
        }
        break;
      }
      continue;
    }
    // Operands may appear anywhere (glibc permutes them after the options).
    operands.push(arg);
  }
  return new ParsedArgs(occurrences, operands);
}

/** Reject operands the way PostgreSQL's tools do. */
export function rejectOperands(spec: CommandSpec, args: ParsedArgs): void {
  const first = args.operands[0];
  if (first !== undefined) {
    throw new UsageError(spec.prog, `too many command-line arguments (first is "${first}")`);
  }
}

const HELP_COLUMN = 25;

function optionLabel(o: OptionSpec): string {
  const kind = o.arg ?? 'none';
  const meta = o.metavar ?? 'VALUE';
  let label = o.short ? `-${o.short}` : '   ';
  if (o.long) {
    label += o.short ? `, --${o.long}` : ` --${o.long}`;
    if (kind === 'required') label += `=${meta}`;
    if (kind === 'optional') label += `[=${meta}]`;
  } else if (kind === 'required') {
    label += ` ${meta}`;
  } else if (kind === 'optional') {
    label += `[${meta}]`;
  }
  return label;
}

/**
 * Render `--help` from the table, in the layout of PostgreSQL's tools: options
 * under their group heading, descriptions aligned in one column, long labels on
 * their own line.
 */
export function formatHelp(spec: CommandSpec): string {
  const lines: string[] = [`${spec.summary}`, '', 'Usage:'];
  for (const u of spec.usage ?? ['[OPTION]...']) lines.push(`  ${spec.prog} ${u}`);
  const groups: string[] = [];
  for (const o of spec.options) {
    const g = o.group ?? 'Options';
    if (!o.hidden && !groups.includes(g)) groups.push(g);
  }
  for (const g of groups) {
    lines.push('', `${g}:`);
    for (const o of spec.options) {
      if (o.hidden || (o.group ?? 'Options') !== g) continue;
      const label = `  ${optionLabel(o)}`;
      const [first, ...more] = o.help.split('\n');
      if (label.length < HELP_COLUMN) {
        lines.push(`${label.padEnd(HELP_COLUMN)}${first ?? ''}`);
      } else {
        lines.push(label, `${' '.repeat(HELP_COLUMN)}${first ?? ''}`);
      }
      for (const m of more) lines.push(`${' '.repeat(HELP_COLUMN)}${m}`);
    }
  }
  if (spec.epilog) lines.push('', spec.epilog);
  if (spec.examples?.length) {
    lines.push('', 'Examples:');
    for (const e of spec.examples) lines.push(`  # ${e.comment}`, `  ${e.command}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Parse an integer option the way PostgreSQL's option_parse_int does (range included). */
export function parseIntOption(prog: string, value: string, name: string, min: number, max: number): number {
  const trimmed = value.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) throw new UsageError(prog, `invalid value "${value}" for option ${name}`);
  const n = Number.parseInt(trimmed, 10);
  if (n < min || n > max) throw new UsageError(prog, `${name} must be in range ${min}..${max}`);
  return n;
}
