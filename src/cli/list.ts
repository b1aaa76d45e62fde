/**
 * `pgbb list --repo REPO [--json]`: the backups of a repository and its point-in-time window. The JSON
 * is the library's `repositoryListing`, documented in docs/repository.md.
 * @module
 */
import {
  listRehearsals,
  openRepository,
  repositoryListing,
  unreadableRecordWarning,
  type RepositoryListingJson,
} from '../entries/repository.js';
import { parseArgs, rejectOperands, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';
import { formatDuration, formatSize, formatTime, REPO_OPTION, repositoryAddress } from './repo-flags.js';

/** The option table of `pgbb list`. */
export const LIST_COMMAND: CommandSpec = {
  prog: 'pgbb list',
  summary: 'pgbb list shows the backups and the WAL archive of a repository, and the point-in-time window they give.',
  options: [
    REPO_OPTION,
    { key: 'json', long: 'json', help: 'print the listing as one JSON document on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
  ],
  examples: [
    { comment: 'the backups of a local repository', command: 'pgbb list --repo /backups/db1' },
    {
      comment: 'as JSON, from S3 (credentials from the AWS environment)',
      command: 'pgbb list --repo "s3://backups/db1?region=eu-west-1" --json',
    },
  ],
};

/** What the `pgbb list` command line asks for. */
export interface ListCliOptions {
  /** `--repo`; absent: `PGBB_REPO`. */
  repo: string | undefined;
  json: boolean;
}

/** Parse `pgbb list`'s arguments. Pure; throws `UsageError`. */
export function parseListCommandLine(argv: readonly string[]): CommandLine<ListCliOptions> {
  const args = parseArgs(LIST_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  rejectOperands(LIST_COMMAND, args);
  return { kind: 'run', options: { repo: args.last('repo'), json: args.has('json') } };
}

/** The text listing: one line per backup, then the window. */
export function formatListing(listing: RepositoryListingJson): string {
  const lines: string[] = [];
  const cluster = listing.cluster;
  lines.push(
    `repository: ${listing.repository}` +
      (cluster ? ` (PostgreSQL ${cluster.majorVersion}, system identifier ${cluster.systemIdentifier})` : ' (empty)'),
  );
  if (listing.backups.length === 0) {
    lines.push('no backups');
  } else {
    const rows = [
      ['ID', 'TYPE', 'PARENT', 'START', 'END', 'START LSN', 'END LSN', 'TL', 'SIZE', 'STORED', 'COMPRESSION', 'DURATION'],
      ...listing.backups.map((b) => [
        b.id,
        b.type,
        b.parent ?? '-',
        formatTime(b.startTime),
        formatTime(b.endTime),
        b.startLsn,
        b.endLsn,
        String(b.timeline),
        formatSize(b.originalSize),
        formatSize(b.storedSize),
        b.compression,
        formatDuration(b.durationMs),
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows)
      lines.push(
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
  }
  for (const t of listing.walArchive?.timelines ?? []) {
    const gaps = t.gaps.map((g) => (g.first === g.last ? g.first : `${g.first}..${g.last}`));
    lines.push(
      `WAL archive, timeline ${t.timeline}: ${t.firstSegment} to ${t.lastSegment} (${t.startLsn} to ${t.endLsn}, ` +
        `${t.segments} segments${t.history ? ', history file' : ''})` +
        (gaps.length === 0 ? '' : `, MISSING ${gaps.join(', ')}`),
    );
  }
  const { from, to } = listing.pitrWindow;
  if (from === null) lines.push('point-in-time window: none (no backups)');
  else {
    const end =
      to === null
        ? 'the end of each backup (the repository holds no WAL archive yet)'
        : `${to.lsn} (timeline ${to.timeline}, stored ${formatTime(to.time)})`;
    lines.push(`point-in-time window: from ${formatTime(from.time)} (${from.lsn}, timeline ${from.timeline}) to ${end}`);
  }
  lines.push(...formatRehearsals(listing.rehearsals));
  return `${lines.join('\n')}\n`;
}

/** The rehearsals' lines of the text listing: one per rehearsal, newest last (none without rehearsals). */
function formatRehearsals(rehearsals: RepositoryListingJson['rehearsals']): string[] {
  if (rehearsals.length === 0) return [];
  const rows = [
    ['REHEARSAL', 'BACKUP', 'RESULT', 'FAILED STEP', 'RECOVERY TIME', 'RECOVERY POINT'],
    ...rehearsals.map((r) => [
      r.id,
      r.backupId ?? '-',
      r.result,
      r.failedStep ?? '-',
      r.result === 'pass' || r.replayMs > 0 ? formatDuration(r.recoveryMs) : '-',
      r.lastTransactionTime === null ? '-' : formatTime(r.lastTransactionTime),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return [
    'rehearsals:',
    ...rows.map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    ),
  ];
}

/** `pgbb list`. */
export const listCommand = defineCommand<ListCliOptions>({
  name: 'list',
  spec: LIST_COMMAND,
  parse: parseListCommandLine,
  reporting: (cli) => ({ json: cli.json }),
  async execute(cli, { ctx }) {
    const address = repositoryAddress(LIST_COMMAND.prog, cli.repo, ctx.env);
    await using repository = await openRepository(address);
    const signal = { signal: ctx.signal };
    const info = await repository.info(signal);
    const listing = repositoryListing(
      repository.location,
      info?.cluster ?? null,
      await repository.listBackups(signal),
      await repository.walArchive(signal),
      await listRehearsals(repository, {
        ...signal,
        onUnreadable: (u) => ctx.stderr.write(`pgbb: warning: ${unreadableRecordWarning(u)}\n`),
      }),
    );
    ctx.stdout.write(cli.json ? `${JSON.stringify(listing, null, 2)}\n` : formatListing(listing));
    return 0;
  },
});
