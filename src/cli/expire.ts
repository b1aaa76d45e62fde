/**
 * `pgbb expire --repo REPO (--retain-full N | --retain-window DURATION) [--dry-run] [--json]`: removes the
 * backups outside the policy, the WAL no kept backup needs and the history records of what is gone,
 * through the library's `expireRepository`, and prints what it removed and the point-in-time window before and after (the JSON is `expiryJson`,
 * documented in docs/repository.md).
 * @module
 */
import {
  expireRepository,
  expiryJson,
  openRepository,
  parseDuration,
  type ExpiryJson,
  type RetentionPolicy,
} from '../entries/repository.js';
import { parseArgs, parseIntOption, rejectOperands, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';
import { formatTime, REPO_OPTION, repositoryAddress } from './repo-flags.js';

const PROG = 'pgbb expire';

/** The option table of `pgbb expire`. */
export const EXPIRE_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb expire removes the backups and the WAL a retention policy no longer needs from a repository.',
  options: [
    REPO_OPTION,
    {
      key: 'retain-full',
      long: 'retain-full',
      arg: 'required',
      metavar: 'N',
      help: 'keep the N newest full backups and every backup taken after\nthe oldest of them',
    },
    {
      key: 'retain-window',
      long: 'retain-window',
      arg: 'required',
      metavar: 'DURATION',
      help: 'keep what a restore to any moment of the last DURATION\nneeds (7d, 12h, 1d12h)',
    },
    { key: 'dry-run', long: 'dry-run', help: 'print what would be removed, remove nothing' },
    { key: 'json', long: 'json', help: 'print the report as one JSON document on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
  ],
  epilog:
    'The newest full backup is never removed, an incremental backup is never left without its parent, and WAL\n' +
    'goes only before the start of the oldest backup kept. The records of rehearsals of removed backups go too\n' +
    '(the newest rehearsal and the newest passed one stay), and those of failed runs older than the oldest\n' +
    'backup kept (the newest stays). A history record that cannot be read is skipped with a warning, and\n' +
    'removed only when it is a failed-run record whose key dates it before the oldest backup kept.\n' +
    'Refused while a backup or another expire runs.',
  examples: [
    { comment: 'keep two full backups (and what was taken after them)', command: 'pgbb expire --repo /backups/db1 --retain-full 2' },
    {
      comment: 'what a 14-day window would remove, as JSON',
      command: 'pgbb expire --repo /backups/db1 --retain-window 14d --dry-run --json',
    },
  ],
};

/** What the `pgbb expire` command line asks for. */
export interface ExpireCliOptions {
  /** `--repo`; absent: `PGBB_REPO`. */
  repo: string | undefined;
  policy: RetentionPolicy;
  dryRun: boolean;
  json: boolean;
}

/** Parse `pgbb expire`'s arguments. Pure; throws `UsageError`. */
export function parseExpireCommandLine(argv: readonly string[]): CommandLine<ExpireCliOptions> {
  const args = parseArgs(EXPIRE_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  rejectOperands(EXPIRE_COMMAND, args);
  const full = args.last('retain-full');
  const window = args.last('retain-window');
  if ((full === undefined) === (window === undefined)) throw new UsageError(PROG, 'give exactly one of --retain-full and --retain-window');
  const policy: RetentionPolicy =
    full !== undefined
      ? { retainFull: parseIntOption(PROG, full, '--retain-full', 1, 1_000_000) }
      : { retainWindowMs: parseDuration(window!) };
  return { kind: 'run', options: { repo: args.last('repo'), policy, dryRun: args.has('dry-run'), json: args.has('json') } };
}

function windowText(w: ExpiryJson['before']['pitrWindow']): string {
  if (w.from === null) return 'none (no backups)';
  const end = w.to === null ? 'the end of each backup' : `${formatTime(w.to.time)} (${w.to.lsn})`;
  return `from ${formatTime(w.from.time)} (${w.from.lsn}, timeline ${w.from.timeline}) to ${end}`;
}

function countText(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The text report: what was removed, then the window before and after. */
export function formatExpiry(report: ExpiryJson): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const lines: string[] = [];
  for (const id of report.removedUncommitted) lines.push(`removed the objects of ${id}, which had no catalog record`);
  for (const b of report.removedBackups) lines.push(`${verb} backup ${b.id} (${b.type}, ended ${formatTime(b.endTime)})`);
  for (const w of report.removedWal) {
    lines.push(
      `${verb} ${w.segments} WAL segment${w.segments === 1 ? '' : 's'} of timeline ${w.timeline}: ${w.firstSegment} to ${w.lastSegment}`,
    );
  }
  if (report.removedRehearsals.length > 0) {
    const of = [...new Set(report.removedRehearsals.map((r) => r.backupId))].join(', ');
    lines.push(`${verb} ${countText(report.removedRehearsals.length, 'rehearsal record')} (of backups no longer kept: ${of})`);
  }
  if (report.removedFailures.length > 0) {
    lines.push(`${verb} ${countText(report.removedFailures.length, 'failed-run record')} older than the oldest backup kept`);
  }
  const unreadableGone = report.unreadableHistory.filter((u) => u.removed).length;
  const unreadableKept = report.unreadableHistory.length - unreadableGone;
  if (unreadableGone > 0) {
    lines.push(`${verb} ${countText(unreadableGone, 'unreadable failed-run record')} older than the oldest backup kept, judged by key`);
  }
  if (lines.length === 0) lines.push(`nothing to remove (${report.keptBackups.length} backups kept)`);
  else lines.push(`${report.keptBackups.length} backups kept`);
  if (unreadableKept > 0) lines.push(`kept ${countText(unreadableKept, 'unreadable history record')} (see the warnings)`);
  if (report.walSkipped !== undefined) lines.push(`no WAL considered: ${report.walSkipped}`);
  lines.push(`point-in-time window before: ${windowText(report.before.pitrWindow)}`);
  lines.push(`point-in-time window after:  ${windowText(report.after.pitrWindow)}`);
  return `${lines.join('\n')}\n`;
}

/** `pgbb expire`. */
export const expireCommand = defineCommand<ExpireCliOptions>({
  name: 'expire',
  spec: EXPIRE_COMMAND,
  parse: parseExpireCommandLine,
  reporting: (cli) => ({ json: cli.json }),
  async execute(cli, { ctx }) {
    const address = repositoryAddress(PROG, cli.repo, ctx.env);
    await using repository = await openRepository(address);
    const result = await expireRepository(repository, cli.policy, {
      dryRun: cli.dryRun,
      signal: ctx.signal,
      // On stderr in both modes: with --json, stdout holds the one document (which lists them too).
      onWarning: (message) => ctx.stderr.write(`pgbb: warning: ${message}\n`),
    });
    const report = expiryJson(repository.location, cli.policy, result);
    ctx.stdout.write(cli.json ? `${JSON.stringify(report, null, 2)}\n` : formatExpiry(report));
    return 0;
  },
});
