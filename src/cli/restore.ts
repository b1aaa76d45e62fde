/**
 * `pgbb restore BACKUP -D NEWDATA` and `pgbb restore --repo REPO -D NEWDATA`: the library's
 * `restoreBackup` and `restoreFromRepository` on the command line. Verifies the backup, walks the WAL
 * archive and prints the LSN recovery will stop at before writing anything, then lays out the data
 * directory with `recovery.signal` and `restore_command` = `pgbb restore-wal`. From a repository it
 * first chooses the backup (the newest that ended before the target) and says which.
 * @module
 */
import { parseTablespaceMapping } from '../entries/backup.js';
import {
  parseTargetTime,
  parseTargetTimeline,
  parseTargetXid,
  restoreBackup,
  type RecoveryTarget,
  type RestoreOptions,
  type TargetAction,
} from '../entries/recovery.js';
import { formatLsn, parseLsn } from '../entries/lsn.js';
import { openRepository, restoreFromRepository, type RepositoryRestoreResult } from '../entries/repository.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';

const PROG = 'pgbb restore';

/** The option table of `pgbb restore`. */
export const RESTORE_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb restore restores a base backup into a new data directory, ready for point-in-time recovery.',
  usage: ['[OPTION]... BACKUP -D NEWDATA', '[OPTION]... --repo REPO [--backup ID] -D NEWDATA'],
  options: [
    { key: 'pgdata', short: 'D', long: 'pgdata', arg: 'required', metavar: 'DIRECTORY', help: 'the new data directory (absent or empty)' },
    { key: 'wal-archive', long: 'wal-archive', arg: 'required', metavar: 'DIR', help: 'WAL archive to recover from (restore_command)' },
    {
      key: 'repo',
      long: 'repo',
      arg: 'required',
      metavar: 'REPO',
      help: 'restore from this repository (a directory or s3://BUCKET/PREFIX),\nwith its archived WAL',
    },
    {
      key: 'backup',
      long: 'backup',
      arg: 'required',
      metavar: 'ID',
      help: 'with --repo: restore this backup (default: the newest\nthat ended before the target)',
    },
    {
      key: 'target-lsn',
      long: 'target-lsn',
      arg: 'required',
      metavar: 'LSN',
      help: 'stop recovery at this WAL position',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-name',
      long: 'target-name',
      arg: 'required',
      metavar: 'NAME',
      help: 'stop at this restore point',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-time',
      long: 'target-time',
      arg: 'required',
      metavar: 'TIME',
      help: 'stop at this time (with its time zone)',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-xid',
      long: 'target-xid',
      arg: 'required',
      metavar: 'XID',
      help: 'stop at the end of this transaction',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-immediate',
      long: 'target-immediate',
      help: 'stop as soon as the backup is consistent',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-exclusive',
      long: 'target-exclusive',
      help: 'stop just before the target instead of after it',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-timeline',
      long: 'target-timeline',
      arg: 'required',
      metavar: 'current|latest|N',
      help: 'timeline to recover to (default latest)',
      group: 'Recovery target (one of):',
    },
    {
      key: 'target-action',
      long: 'target-action',
      arg: 'required',
      metavar: 'pause|promote|shutdown',
      help: 'what the server does at the target (default pause)',
      group: 'Recovery target (one of):',
    },
    {
      key: 'tablespace-mapping',
      short: 'T',
      long: 'tablespace-mapping',
      arg: 'required',
      metavar: 'OLDDIR=NEWDIR',
      help: 'restore the tablespace in OLDDIR to NEWDIR',
    },
    { key: 'waldir', long: 'waldir', arg: 'required', metavar: 'WALDIR', help: 'location for the write-ahead log directory' },
    { key: 'no-verify', long: 'no-verify', help: 'do not verify the backup against its manifest first' },
    { key: 'no-sync', short: 'N', long: 'no-sync', help: 'do not wait for changes to be written safely to disk' },
    { key: 'json', long: 'json', help: 'print messages and the result as JSON lines on stdout' },
    { key: 'verbose', short: 'v', long: 'verbose', help: 'output verbose messages' },
    { key: 'version', short: 'V', long: 'version', help: 'output version information, then exit' },
    { key: 'help', short: '?', long: 'help', help: 'show this help, then exit' },
  ],
  epilog: 'Without --wal-archive (or --repo with archived WAL) the server replays only the WAL inside the backup.',
};

/** What the command line asks for. */
export interface RestoreCliOptions {
  /** `backupDir` is `''` when restoring from a repository. */
  restore: Omit<RestoreOptions, 'signal' | 'onEvent'>;
  /** Restore from this repository (address), and this backup of it. */
  repository?: { address: string; backupId: string | undefined } | undefined;
  json: boolean;
  verbose: number;
}

const TARGET_KEYS = ['target-lsn', 'target-name', 'target-time', 'target-xid', 'target-immediate'] as const;
const ACTIONS: readonly TargetAction[] = ['pause', 'promote', 'shutdown'];

/** Map `pgbb restore` arguments to the library options. Pure; throws {@link UsageError}. */
export function parseRestoreCommandLine(argv: readonly string[]): CommandLine<RestoreCliOptions> {
  const args = parseArgs(RESTORE_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const [operand, extra] = args.operands;
  const repo = args.last('repo');
  if (operand === undefined && repo === undefined) throw new UsageError(PROG, 'no backup directory specified (or --repo REPO)');
  if (operand !== undefined && repo !== undefined) throw new UsageError(PROG, 'give a backup directory or --repo, not both');
  if (repo !== undefined && args.has('wal-archive'))
    throw new UsageError(PROG, '--wal-archive cannot be used with --repo (the WAL is in the repository)');
  if (repo === undefined && args.has('backup')) throw new UsageError(PROG, '--backup needs --repo');
  if (extra !== undefined) throw new UsageError(PROG, `too many command-line arguments (first is "${extra}")`);
  const backupDir = operand ?? '';
  const dataDir = args.last('pgdata');
  if (dataDir === undefined) throw new UsageError(PROG, 'no target directory specified: give -D NEWDATA');
  const given = TARGET_KEYS.filter((k) => args.has(k));
  if (given.length > 1) throw new UsageError(PROG, `only one recovery target may be given (got --${given.join(' and --')})`);
  const restore: RestoreCliOptions['restore'] = { backupDir, dataDir };
  const walArchive = args.last('wal-archive');
  if (walArchive !== undefined) restore.walArchive = walArchive;
  let target: RecoveryTarget | undefined;
  const v = (k: string) => args.last(k)!;
  switch (given[0]) {
    case 'target-lsn':
      target = { kind: 'lsn', lsn: parseLsn(v('target-lsn')) };
      break;
    case 'target-name':
      target = { kind: 'name', name: v('target-name') };
      break;
    case 'target-time':
      target = { kind: 'time', ...parseTargetTime(v('target-time')) };
      break;
    case 'target-xid':
      target = { kind: 'xid', xid: parseTargetXid(v('target-xid')) };
      break;
    case 'target-immediate':
      target = { kind: 'immediate' };
      break;
    default:
      break;
  }
  if (target) {
    if (walArchive === undefined && repo === undefined) throw new UsageError(PROG, 'a recovery target needs --wal-archive');
    restore.target = target;
  }
  for (const k of ['target-exclusive', 'target-action'] as const) {
    if (args.has(k) && !target) throw new UsageError(PROG, `--${k} needs a recovery target`);
  }
  if (args.has('target-timeline') && walArchive === undefined && repo === undefined)
    throw new UsageError(PROG, '--target-timeline needs --wal-archive');
  if (args.has('target-exclusive')) restore.exclusive = true;
  const tl = args.last('target-timeline');
  if (tl !== undefined) restore.targetTimeline = parseTargetTimeline(tl);
  const action = args.last('target-action');
  if (action !== undefined) {
    if (!ACTIONS.includes(action as TargetAction))
      throw new UsageError(PROG, `invalid --target-action "${action}": give pause, promote or shutdown`);
    restore.targetAction = action as TargetAction;
  }
  const mapping = new Map<string, string>();
  for (const spec of args.all('tablespace-mapping')) {
    const [from, to] = parseTablespaceMapping(spec);
    mapping.set(from, to);
  }
  if (mapping.size > 0) restore.tablespaceMapping = mapping;
  const waldir = args.last('waldir');
  if (waldir !== undefined) restore.walDir = waldir;
  if (args.has('no-verify')) restore.verify = false;
  if (args.has('no-sync')) restore.noSync = true;
  const repository = repo === undefined ? undefined : { address: repo, backupId: args.last('backup') };
  return {
    kind: 'run',
    options: { restore, ...(repository ? { repository } : {}), json: args.has('json'), verbose: args.count('verbose') },
  };
}

/** `pgbb restore`. */
export const restoreCommand = defineCommand<RestoreCliOptions>({
  name: 'restore',
  spec: RESTORE_COMMAND,
  parse: parseRestoreCommandLine,
  reporting: (cli) => ({ json: cli.json, verbose: cli.verbose }),
  async execute(cli, { ctx, reporter }) {
    const { backupDir: _none, ...restore } = cli.restore;
    const common = {
      signal: ctx.signal,
      onEvent: (e: Parameters<NonNullable<RestoreOptions['onEvent']>>[0]) => {
        if (e.type === 'verified') reporter.info(`backup verified: ${e.summary.manifestFiles} files`);
        else if (e.type === 'preflight') {
          const res = e.result.resolution;
          // Always shown: the point of the pre-flight is to say where recovery will stop before it starts.
          if (res.reached) {
            ctx.stderr.write(
              `${PROG}: recovery will stop at ${formatLsn(res.lsn)} on timeline ${e.result.targetTimeline} (${res.detail})\n`,
            );
          }
        } else if (e.type === 'restored') reporter.info(`restored ${e.files} files (${e.bytes} bytes)`);
      },
    };
    let fromRepo: RepositoryRestoreResult | undefined;
    let r;
    if (cli.repository) {
      await using repo = await openRepository(cli.repository.address);
      r = fromRepo = await restoreFromRepository(repo, {
        ...restore,
        ...common,
        backupId: cli.repository.backupId,
        repositoryAddress: cli.repository.address,
      });
      // Always shown: which backup serves the target is the first thing to check after a restore.
      ctx.stderr.write(
        `${PROG}: restored backup ${fromRepo.backup.id} (${fromRepo.backup.type}, ended ${fromRepo.backup.endTime.toISOString()} at ${formatLsn(fromRepo.backup.endLsn)})\n`,
      );
    } else {
      r = await restoreBackup({ ...cli.restore, ...common });
    }
    reporter.done({
      ...(fromRepo ? { backupId: fromRepo.backup.id, chain: fromRepo.chain, walArchive: fromRepo.walArchive } : {}),
      dataDir: r.dataDir,
      format: r.format,
      startLsn: formatLsn(r.startLsn),
      timeline: r.timeline,
      endLsn: r.endLsn === undefined ? null : formatLsn(r.endLsn),
      targetLsn: r.targetLsn === undefined ? null : formatLsn(r.targetLsn),
      targetTimeline: r.preflight?.targetTimeline ?? null,
      tablespaces: r.tablespaces,
      files: r.files,
      bytes: r.bytes,
      durationMs: Math.round(r.durationMs),
    });
    return 0;
  },
});
