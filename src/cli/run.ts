/**
 * `pgbb` subcommand dispatch: `pgbb <command> [options]`, `pgbb --help`,
 * `pgbb help <command>`, `pgbb --version`. Process-free, so it runs in tests.
 * @module
 */
import { backupCommand } from './backup.js';
import { combineCommand } from './combine.js';
import { versionLine, type CliCommand, type CliContext } from './context.js';
import { identifyCommand } from './identify.js';
import { restoreCommand } from './restore.js';
import { restoreWalCommand } from './restore-wal.js';
import { verifyCommand } from './verify.js';

/** Every subcommand, in `--help` order. */
export const COMMANDS: readonly CliCommand[] = [identifyCommand, backupCommand, verifyCommand, combineCommand, restoreCommand, restoreWalCommand];

/** `pgbb --help`. */
export function mainHelp(commands: readonly CliCommand[] = COMMANDS): string {
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
export async function runCli(argv: readonly string[], ctx: CliContext, commands: readonly CliCommand[] = COMMANDS): Promise<number> {
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
  const command = commands.find((c) => c.name === first);
  if (!command) {
    const what = first.startsWith('-') ? `unrecognized option "${first}"` : `unknown command "${first}"`;
    ctx.stderr.write(`pgbb: ${what}\nTry "pgbb --help" for more information.\n`);
    return 1;
  }
  return command.run(rest, ctx);
}
