/**
 * `pgbb restore-wal FILE DEST (--wal-archive DIR | --repo REPO)`: PostgreSQL's `restore_command` over a
 * WAL archive directory or a repository's archived WAL (`restore_command = '... restore-wal "%f" "%p"
 * --wal-archive DIR'` or `--repo REPO`, which `pgbb restore` writes). The exit status is the contract: 0 when the file was restored, 1 when the archive does not
 * have it (recovery takes that as the end of the archive), and 126 for everything else: a damaged file,
 * bad arguments, an unreadable archive, an unwritable destination. PostgreSQL stops recovery on a status
 * above 125, which is what must happen then: a 1 would let it promote with missing data.
 * @module
 */
import { restoreWalFile, type RestoreWalResult } from '../entries/recovery.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';

const PROG = 'pgbb restore-wal';

/** Exit statuses of `pgbb restore-wal` (PostgreSQL's restore_command contract). */
export const RESTORE_WAL_EXIT = {
  restored: 0,
  /** Not in the archive: recovery ends the archive phase (and may promote). */
  notFound: 1,
  /** Above 125, so that recovery stops instead of treating the problem as the end of the archive. */
  fatal: 126,
} as const;

/** The option table of `pgbb restore-wal`. */
export const RESTORE_WAL_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb restore-wal restores one WAL file from a WAL archive directory or a repository, for restore_command.',
  usage: ['[OPTION]... FILE DEST'],
  options: [
    { key: 'wal-archive', long: 'wal-archive', arg: 'required', metavar: 'DIR', help: 'the WAL archive directory' },
    {
      key: 'repo',
      long: 'repo',
      arg: 'required',
      metavar: 'REPO',
      help: 'the repository holding the WAL archive\n(a directory or s3://BUCKET/PREFIX)',
    },
    { key: 'no-sync', long: 'no-sync', help: 'do not wait for the file to be written safely to disk' },
    { key: 'json', long: 'json', help: 'print the result as one JSON object on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'output version information, then exit' },
    { key: 'help', short: '?', long: 'help', help: 'show this help, then exit' },
  ],
  epilog:
    'Give exactly one of --wal-archive and --repo.\n' +
    'FILE is the WAL file name recovery asks for (%f), DEST where to write it (%p).\n' +
    'Exit status: 0 restored, 1 not in the archive, 126 damaged file or any other error\n' +
    '(PostgreSQL stops recovery on 126 instead of ending it early).',
};

/** What the `pgbb restore-wal` command line asks for. */
export interface RestoreWalCliOptions {
  fileName: string;
  destination: string;
  /** Where the WAL is: a directory, or a repository address. */
  archive: { kind: 'directory'; dir: string } | { kind: 'repository'; address: string };
  noSync: boolean;
  json: boolean;
}

/** Map `pgbb restore-wal` arguments. Pure; throws {@link UsageError}. */
export function parseRestoreWalCommandLine(argv: readonly string[]): CommandLine<RestoreWalCliOptions> {
  const args = parseArgs(RESTORE_WAL_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const [fileName, destination, ...extra] = args.operands;
  if (fileName === undefined || destination === undefined) throw new UsageError(PROG, 'FILE and DEST are required (restore-wal "%f" "%p")');
  if (extra.length > 0) throw new UsageError(PROG, `too many command-line arguments (first is "${extra[0]!}")`);
  const archiveDir = args.last('wal-archive');
  const repo = args.last('repo');
  if (archiveDir !== undefined && repo !== undefined) throw new UsageError(PROG, '--wal-archive and --repo cannot be used together');
  let archive: RestoreWalCliOptions['archive'];
  if (repo !== undefined && repo !== '') archive = { kind: 'repository', address: repo };
  else if (archiveDir !== undefined && archiveDir !== '') archive = { kind: 'directory', dir: archiveDir };
  else throw new UsageError(PROG, 'no WAL archive specified: give --wal-archive DIR or --repo REPO');
  return { kind: 'run', options: { fileName, destination, archive, noSync: args.has('no-sync'), json: args.has('json') } };
}

/** `pgbb restore-wal`. */
export const restoreWalCommand = defineCommand<RestoreWalCliOptions>({
  name: 'restore-wal',
  spec: RESTORE_WAL_COMMAND,
  parse: parseRestoreWalCommandLine,
  reporting: (cli) => ({ json: cli.json }),
  errorStatus: RESTORE_WAL_EXIT.fatal,
  async execute(cli, { ctx, reporter }) {
    const common = { fileName: cli.fileName, destination: cli.destination, noSync: cli.noSync };
    let r: RestoreWalResult;
    if (cli.archive.kind === 'directory') r = await restoreWalFile({ ...common, archiveDir: cli.archive.dir });
    else {
      // Loaded only for --repo: restore_command starts this program once per WAL file.
      const { openRepository, repositoryWalArchive } = await import('../entries/repository.js');
      await using repo = await openRepository(cli.archive.address);
      r = await restoreWalFile({ ...common, source: repositoryWalArchive(repo) });
    }
    if (!r.found) {
      // Said on stderr: PostgreSQL logs it, and "not found" is the normal end of an archive.
      ctx.stderr.write(`${PROG}: ${cli.fileName} is not in the WAL archive\n`);
      if (cli.json) reporter.done({ fileName: cli.fileName, found: false });
      return RESTORE_WAL_EXIT.notFound;
    }
    if (cli.json) reporter.done({ fileName: cli.fileName, found: true, source: r.source, bytes: r.bytes, partial: r.partial });
    return RESTORE_WAL_EXIT.restored;
  },
});
