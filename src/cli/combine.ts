/**
 * `pgbb combine`: pg_combinebackup's command line over the library's `combineBackups`. Takes the full
 * backup and the incremental backups taken after it (plain format, oldest first) and writes one full
 * backup to `-o`. Silent on success, like pg_combinebackup; `-d` prints what it does.
 * @module
 */
import { tablespaceMappingFrom } from '../entries/backup.js';
import { combineBackups, type CombineOptions } from '../entries/combine.js';
import { parseChecksumAlgorithm } from '../entries/manifest.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';

const PROG = 'pgbb combine';

/** The option table of `pgbb combine` (pg_combinebackup's flags, plus `--json`). */
export const COMBINE_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb combine reconstructs full backups from incrementals.',
  usage: ['[OPTION]... DIRECTORY...'],
  options: [
    { key: 'debug', short: 'd', long: 'debug', help: 'generate lots of debugging output' },
    { key: 'dry-run', short: 'n', long: 'dry-run', help: 'do not actually do anything' },
    { key: 'no-sync', short: 'N', long: 'no-sync', help: 'do not wait for changes to be written safely to disk' },
    { key: 'output', short: 'o', long: 'output', arg: 'required', metavar: 'DIRECTORY', help: 'output directory' },
    {
      key: 'tablespace-mapping',
      short: 'T',
      long: 'tablespace-mapping',
      arg: 'required',
      metavar: 'OLDDIR=NEWDIR',
      help: 'relocate tablespace in OLDDIR to NEWDIR',
    },
    { key: 'clone', long: 'clone', help: 'clone (reflink) files instead of copying (not supported)' },
    { key: 'copy', long: 'copy', help: 'copy files (default)' },
    {
      key: 'copy-file-range',
      long: 'copy-file-range',
      help: 'copy using copy_file_range() (the default where nothing\nhas to be checksummed)',
    },
    { key: 'link', short: 'k', long: 'link', help: 'link files instead of copying (not supported)' },
    {
      key: 'manifest-checksums',
      long: 'manifest-checksums',
      arg: 'required',
      metavar: 'SHA{224,256,384,512}|CRC32C|NONE',
      help: 'use algorithm for manifest checksums',
    },
    { key: 'no-manifest', long: 'no-manifest', help: 'suppress generation of backup manifest' },
    { key: 'sync-method', long: 'sync-method', arg: 'required', metavar: 'METHOD', help: 'set method for syncing files to disk (fsync)' },
    { key: 'json', long: 'json', help: 'print messages and the result as JSON lines on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'output version information, then exit' },
    { key: 'help', short: '?', long: 'help', help: 'show this help, then exit' },
  ],
  epilog: 'List the full backup first, then each incremental backup in the order they were taken.',
  examples: [
    {
      comment: 'a full backup and two incrementals taken after it, combined into one full backup',
      command: 'pgbb combine /backups/full /backups/inc1 /backups/inc2 -o /restore/data',
    },
    { comment: 'check the chain without writing anything', command: 'pgbb combine -n -d /backups/full /backups/inc1 -o /tmp/x' },
    {
      comment: 'write a tablespace somewhere else',
      command: 'pgbb combine /backups/full /backups/inc1 -o /restore/data -T /srv/ts1=/restore/ts1',
    },
  ],
};

/** What the command line asks for. */
export interface CombineCliOptions {
  combine: Omit<CombineOptions, 'signal' | 'onDebug' | 'onWarning' | 'onFile'>;
  debug: boolean;
  json: boolean;
}

/**
 * Map `pgbb combine` arguments to the library options. Pure; throws {@link UsageError}.
 * @example
 * ```ts
 * parseCombineCommandLine(['full', 'inc1', '-o', 'out']) // { kind: 'run', options: { combine: { backups: ['full', 'inc1'], output: 'out' }, ... } }
 * ```
 */
export function parseCombineCommandLine(argv: readonly string[]): CommandLine<CombineCliOptions> {
  const args = parseArgs(COMBINE_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  if (args.has('clone')) {
    throw new UsageError(PROG, '--clone is not supported: files are copied (the kernel copies where it can); drop --clone');
  }
  if (args.has('link')) {
    throw new UsageError(PROG, '--link is not supported: a linked output would share files with the input backups; drop --link');
  }
  const sync = args.last('sync-method');
  if (sync !== undefined && sync !== 'fsync') {
    throw new UsageError(PROG, `unrecognized sync method "${sync}": only "fsync" is supported`);
  }
  if (args.operands.length === 0) throw new UsageError(PROG, 'no input directories specified');
  const output = args.last('output');
  if (output === undefined) throw new UsageError(PROG, 'no output directory specified');
  const combine: CombineCliOptions['combine'] = { backups: [...args.operands], output };
  // The library's parser, shared with `backup -T`; its ConfigError becomes a usage error in the runner.
  const mapping = tablespaceMappingFrom(args.all('tablespace-mapping'));
  if (mapping.size > 0) combine.tablespaceMapping = mapping;
  const checksums = args.last('manifest-checksums');
  if (checksums !== undefined) {
    const alg = parseChecksumAlgorithm(checksums);
    if (alg === undefined) throw new UsageError(PROG, `unrecognized checksum algorithm: "${checksums}"`);
    combine.manifestChecksums = alg;
  }
  if (args.has('no-manifest')) combine.manifest = false;
  if (args.has('dry-run')) combine.dryRun = true;
  if (args.has('no-sync')) combine.noSync = true;
  return { kind: 'run', options: { combine, debug: args.has('debug'), json: args.has('json') } };
}

/** `pgbb combine`. */
export const combineCommand = defineCommand<CombineCliOptions>({
  name: 'combine',
  prog: PROG,
  spec: COMBINE_COMMAND,
  parse: parseCombineCommandLine,
  reporting: (cli) => ({ json: cli.json, verbose: cli.debug ? 1 : 0 }),
  async execute(cli, { ctx, reporter }) {
    const r = await combineBackups({
      ...cli.combine,
      signal: ctx.signal,
      onDebug: (m) => reporter.info(m),
      onWarning: (m) => reporter.warning(m),
    });
    reporter.done({
      output: r.output,
      dryRun: r.dryRun,
      filesCopied: r.filesCopied,
      filesReconstructed: r.filesReconstructed,
      bytesWritten: r.bytesWritten,
      manifestWritten: r.manifestWritten,
      systemIdentifier: r.systemIdentifier.toString(),
      durationMs: Math.round(r.durationMs),
    });
    if (cli.debug) {
      reporter.info(
        `${r.dryRun ? 'would have written' : 'wrote'} ${r.filesCopied} copied and ${r.filesReconstructed} ` +
          `reconstructed files (${r.bytesWritten} bytes) to "${r.output}"`,
      );
    }
    return 0;
  },
});
