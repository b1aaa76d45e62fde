/**
 * `pgbb show ID --repo REPO [--json]`: one backup of a repository, with its objects. The JSON is the
 * backup's catalog record (docs/repository.md).
 * @module
 */
import { backupRecordJson, openRepository, type BackupRecordJson } from '../entries/repository.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CommandLine } from './context.js';
import { formatDuration, formatSize, formatTime, REPO_OPTION, repositoryAddress } from './repo-flags.js';

/** The option table of `pgbb show`. */
export const SHOW_COMMAND: CommandSpec = {
  prog: 'pgbb show',
  summary: 'pgbb show describes one backup in a repository.',
  usage: ['ID [OPTION]...'],
  options: [
    REPO_OPTION,
    { key: 'json', long: 'json', help: "print the backup's record as one JSON document on stdout" },
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
  ],
  examples: [{ comment: 'one backup, as JSON', command: 'pgbb show 20261206-033800.123F --repo /backups/db1 --json' }],
};

/** What the `pgbb show` command line asks for. */
export interface ShowCliOptions {
  /** The backup id. */
  id: string;
  /** `--repo`; absent: `PGBB_REPO`. */
  repo: string | undefined;
  json: boolean;
}

/** Parse `pgbb show`'s arguments. Pure; throws `UsageError`. */
export function parseShowCommandLine(argv: readonly string[]): CommandLine<ShowCliOptions> {
  const args = parseArgs(SHOW_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const [id, extra] = args.operands;
  if (id === undefined) throw new UsageError(SHOW_COMMAND.prog, 'no backup id given: "pgbb list" shows them');
  if (extra !== undefined) throw new UsageError(SHOW_COMMAND.prog, `too many command-line arguments (first is "${extra}")`);
  return { kind: 'run', options: { id, repo: args.last('repo'), json: args.has('json') } };
}

/** The text description: `label: value` lines, then the objects. */
export function formatBackup(b: BackupRecordJson): string {
  const rows: [string, string][] = [
    ['id', b.id],
    ['type', b.type],
    ['parent', b.parent ?? '-'],
    ['status', b.status],
    ['start time', formatTime(b.startTime)],
    ['end time', formatTime(b.endTime)],
    ['start lsn', b.startLsn],
    ['end lsn', b.endLsn],
    ['timeline', b.endTimeline === b.timeline ? String(b.timeline) : `${b.timeline} to ${b.endTimeline}`],
    ['postgresql', b.postgresVersion],
    ['system identifier', b.systemIdentifier],
    ['size', formatSize(b.originalSize)],
    ['stored', formatSize(b.storedSize)],
    ['compression', b.compression],
    ['duration', formatDuration(b.durationMs)],
    ['wal', b.wal],
    ['label', b.label],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`.trimEnd());
  lines.push('objects:');
  for (const o of b.objects) lines.push(`  ${o.name}  ${formatSize(o.size)}  sha256:${o.sha256}`);
  return `${lines.join('\n')}\n`;
}

/** `pgbb show`. */
export const showCommand = defineCommand<ShowCliOptions>({
  name: 'show',
  spec: SHOW_COMMAND,
  parse: parseShowCommandLine,
  reporting: (cli) => ({ json: cli.json }),
  async execute(cli, { ctx }) {
    const address = repositoryAddress(SHOW_COMMAND.prog, cli.repo, ctx.env);
    await using repository = await openRepository(address);
    const record = backupRecordJson(await repository.getBackup(cli.id, { signal: ctx.signal }));
    ctx.stdout.write(cli.json ? `${JSON.stringify(record, null, 2)}\n` : formatBackup(record));
    return 0;
  },
});
