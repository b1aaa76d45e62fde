/**
 * `pgbb rehearse --repo REPO [--backup ID]` and `pgbb rehearse BACKUP --wal-archive DIR`: the library's
 * `rehearse` on the command line. Restores the backup (the repository's newest, or ID, or the backup
 * directory) into a scratch directory, replays the archive, checks the restored server, removes it all, and
 * prints every step with the recovery figures (or the result as JSON). Exits 0 only when every step passed.
 * @module
 */
import { rmSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecoveryTarget } from '../index.js';
import { parseTargetTime } from '../entries/recovery.js';
import {
  recordRehearsal,
  rehearse,
  type RehearsalDirectorySource,
  type RehearsalOptions,
  type RehearsalResources,
  type RehearsalResult,
} from '../entries/rehearse.js';
import { openRepository, type RehearsalRecord, type Repository } from '../entries/repository.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { formatLsn } from '../entries/lsn.js';
import { defineCommand, type CommandLine } from './context.js';
import { REPO_OPTION, repositoryAddress } from './repo-flags.js';

const PROG = 'pgbb rehearse';

/** The option table of `pgbb rehearse`. */
export const REHEARSE_COMMAND: CommandSpec = {
  prog: PROG,
  summary:
    'pgbb rehearse proves that a backup restores: it restores it into a scratch directory, replays the WAL archive, checks the result and removes it.',
  usage: ['[OPTION]... --repo REPO [--backup ID]', '[OPTION]... BACKUP --wal-archive DIR [--repo REPO]'],
  options: [
    { key: 'wal-archive', long: 'wal-archive', arg: 'required', metavar: 'DIR', help: 'WAL archive to recover from (restore_command)' },
    { key: 'target-time', long: 'target-time', arg: 'required', metavar: 'TIME', help: 'replay up to this time (with its time zone)' },
    { key: 'end-of-archive', long: 'end-of-archive', help: 'replay to the end of the archive (default)' },
    { key: 'pg-bin', long: 'pg-bin', arg: 'required', metavar: 'DIR', help: "directory of the server binaries of the backup's major" },
    { key: 'run-as', long: 'run-as', arg: 'required', metavar: 'USER', help: 'OS user to run the server as (needed when running as root)' },
    {
      key: 'username',
      short: 'U',
      long: 'username',
      arg: 'required',
      metavar: 'NAME',
      help: 'role to check as (default the bootstrap superuser)',
    },
    { key: 'check-sql', long: 'check-sql', arg: 'required', metavar: 'FILE', help: 'SQL checks, each statement must return true' },
    { key: 'check-db', long: 'check-db', arg: 'required', metavar: 'DBNAME', help: 'database the SQL checks run in (default postgres)' },
    { key: 'timeout', long: 'timeout', arg: 'required', metavar: 'DURATION', help: 'fail after this long (e.g. 90s, 30m, 2h)' },
    { key: 'keep-on-failure', long: 'keep-on-failure', help: 'keep the scratch directory when a step fails' },
    {
      key: 'scratch-dir',
      long: 'scratch-dir',
      arg: 'required',
      metavar: 'DIR',
      help: 'where to create the scratch directory (default the temp dir)',
    },
    {
      ...REPO_OPTION,
      help: 'rehearse a backup of this repository (a directory or s3://BUCKET/PREFIX; default: $PGBB_REPO)\nand record the result there; with BACKUP, only record it',
    },
    { key: 'backup', long: 'backup', arg: 'required', metavar: 'ID', help: 'the repository backup to rehearse (default the newest)' },
    { key: 'json', long: 'json', help: 'print the result as JSON on stdout' },
    { key: 'verbose', short: 'v', long: 'verbose', help: 'print each step as it ends' },
    { key: 'version', short: 'V', long: 'version', help: 'output version information, then exit' },
    { key: 'help', short: '?', long: 'help', help: 'show this help, then exit' },
  ],
  epilog:
    "Without BACKUP the repository's backup is restored and replays the repository's archived WAL (or, with none, its own). " +
    'With BACKUP and without --wal-archive the server replays only the WAL inside the backup. Exit status 0: every step passed.',
};

/** What the command line asks for. */
export interface RehearseCliOptions {
  rehearsal: Omit<RehearsalOptions, 'signal' | 'onStep' | 'checkSql' | 'source'>;
  /**
   * What is rehearsed: a backup directory (`BACKUP [--wal-archive DIR]`), or a backup of the repository
   * (no operand: `--repo`, else `PGBB_REPO`; `--backup ID`, else the newest).
   */
  source: ({ kind: 'directory' } & RehearsalDirectorySource) | { kind: 'repository'; backupId: string | undefined };
  checkSqlFile: string | undefined;
  /**
   * `--repo`: the repository rehearsed and the result recorded in. With a backup directory, only the
   * record goes there (and not to `PGBB_REPO`: recording a directory's rehearsal is asked for explicitly).
   */
  repo: string | undefined;
  json: boolean;
  verbose: number;
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `2h`, `1d`, `500ms`, or a number of seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new UsageError(PROG, `invalid duration "${text}": give a number with a unit, e.g. 90s, 30m or 2h`);
  return Math.round(Number(m[1]) * UNITS_MS[m[2] ?? 's']!);
}

/** Map `pgbb rehearse` arguments to the library options. Pure; throws {@link UsageError}. */
export function parseRehearseCommandLine(argv: readonly string[]): CommandLine<RehearseCliOptions> {
  const args = parseArgs(REHEARSE_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const [backupDir, extra] = args.operands;
  if (extra !== undefined) throw new UsageError(PROG, `too many command-line arguments (first is "${extra}")`);
  const walArchive = args.last('wal-archive');
  const backupId = args.last('backup');
  let source: RehearseCliOptions['source'];
  if (backupDir === undefined) {
    // The repository is --repo or PGBB_REPO: resolved when it runs (the environment is not parsed here).
    if (walArchive !== undefined) throw new UsageError(PROG, "--wal-archive needs BACKUP: a repository's rehearsal reads its archived WAL");
    source = { kind: 'repository', backupId };
  } else {
    if (backupId !== undefined) throw new UsageError(PROG, '--backup chooses a repository backup: give it without BACKUP');
    source = { kind: 'directory', backupDir, ...(walArchive !== undefined ? { walArchive } : {}) };
  }
  const rehearsal: RehearseCliOptions['rehearsal'] = {};
  const time = args.last('target-time');
  if (time !== undefined) {
    if (args.has('end-of-archive')) throw new UsageError(PROG, 'give --target-time or --end-of-archive, not both');
    if (source.kind === 'directory' && walArchive === undefined) throw new UsageError(PROG, '--target-time needs --wal-archive');
    const target: RecoveryTarget = { kind: 'time', ...parseTargetTime(time) };
    rehearsal.target = target;
  }
  const set = <K extends keyof RehearseCliOptions['rehearsal']>(key: K, value: RehearseCliOptions['rehearsal'][K] | undefined) => {
    if (value !== undefined) rehearsal[key] = value;
  };
  set('pgBin', args.last('pg-bin'));
  set('runAs', args.last('run-as'));
  set('user', args.last('username'));
  set('checkDatabase', args.last('check-db'));
  set('workDir', args.last('scratch-dir'));
  const timeout = args.last('timeout');
  if (timeout !== undefined) rehearsal.timeoutMs = parseDuration(timeout);
  if (args.has('keep-on-failure')) rehearsal.keepOnFailure = true;
  return {
    kind: 'run',
    options: {
      rehearsal,
      source,
      checkSqlFile: args.last('check-sql'),
      repo: args.last('repo'),
      json: args.has('json'),
      verbose: args.count('verbose'),
    },
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The human report: one line per step (with its problems), then the figures. */
export function formatRehearsalReport(r: RehearsalResult): string {
  const lines = [`${PROG}: ${r.ok ? 'PASSED' : 'FAILED'}${r.major ? ` (PostgreSQL ${r.major})` : ''} in ${seconds(r.durationMs)}`];
  const width = Math.max(...r.steps.map((s) => s.name.length));
  for (const s of r.steps) {
    lines.push(`  ${s.name.padEnd(width)}  ${s.status.padEnd(7)} ${seconds(s.durationMs).padStart(8)}  ${s.detail}`);
    for (const p of s.problems ?? []) lines.push(`      ${p}`);
  }
  const f = r.figures;
  if (f.replayMs > 0) {
    lines.push(`recovery time: ${seconds(f.recoveryMs)} (restore ${seconds(f.restoreMs)} + replay ${seconds(f.replayMs)})`);
    if (f.walBytes !== undefined) lines.push(`WAL replayed: ${f.walBytes} bytes, from ${f.backupStartLsn ?? '?'} to ${f.replayLsn ?? '?'}`);
    lines.push(`recovery point (last replayed transaction): ${f.lastTransactionTime ?? 'none replayed'}`);
  }
  if (r.timedOut) lines.push('the rehearsal ran out of time (--timeout)');
  if (r.keptDir) lines.push(`the scratch directory is kept in ${r.keptDir}: remove it when done`);
  return `${lines.join('\n')}\n`;
}

/** What pgbb's second interrupt does for a rehearsal: stop its server at once and remove its directory, synchronously. */
export function emergencyCleanup(held: RehearsalResources | undefined): { removed: string[]; failed: string[]; notes?: string[] } {
  if (held === undefined) return { removed: [], failed: [] };
  const notes: string[] = [];
  if (held.serverPid !== undefined) {
    try {
      process.kill(held.serverPid, 'SIGQUIT');
      notes.push(`the rehearsal's server (pid ${held.serverPid}) was told to stop at once`);
    } catch {
      // Already gone.
    }
  }
  try {
    rmSync(held.scratchDir, { recursive: true, force: true, maxRetries: 3 });
    return { removed: [held.scratchDir], failed: [], notes };
  } catch {
    return { removed: [], failed: [held.scratchDir], notes };
  }
}

/** When the newest segment of a WAL archive directory was stored (its mtime), or `undefined` without one. */
async function archiveEndTime(dir: string): Promise<Date | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?$/.test(n)).sort();
  const newest = names.at(-1);
  return newest === undefined ? undefined : (await stat(join(dir, newest))).mtime;
}

/**
 * Records `r` in `repository`. The backup is the one rehearsed (a repository rehearsal) or the
 * repository's backup with the same start position (`null` when none has it); the archive's end is
 * the newest archived segment (of the repository, or of the WAL archive directory) or, without one,
 * that backup's end.
 */
async function recordIn(
  repository: Repository,
  r: RehearsalResult,
  cli: RehearseCliOptions,
  signal: AbortSignal,
): Promise<RehearsalRecord> {
  const backups = await repository.listBackups({ signal });
  const backup =
    r.backupId !== undefined
      ? backups.find((b) => b.id === r.backupId)
      : backups.find((b) => r.figures.backupStartLsn !== undefined && formatLsn(b.startLsn) === r.figures.backupStartLsn);
  const source = cli.source;
  const archived =
    source.kind === 'repository'
      ? (await repository.walArchive({ signal }))?.newest.storedAt
      : source.walArchive === undefined
        ? undefined
        : await archiveEndTime(source.walArchive);
  return recordRehearsal(repository, r, {
    backupId: backup?.id ?? r.backupId ?? null,
    archiveEndTime: archived ?? backup?.endTime ?? null,
    signal,
  });
}

/** `pgbb rehearse`. */
export const rehearseCommand = defineCommand<RehearseCliOptions>({
  name: 'rehearse',
  spec: REHEARSE_COMMAND,
  parse: parseRehearseCommandLine,
  reporting: (cli) => ({ json: cli.json, verbose: cli.verbose }),
  async execute(cli, { ctx, reporter }) {
    const checkSql = cli.checkSqlFile === undefined ? undefined : await readFile(cli.checkSqlFile, 'utf8');
    const fromRepository = cli.source.kind === 'repository';
    const address = fromRepository || cli.repo !== undefined ? repositoryAddress(PROG, cli.repo, ctx.env) : undefined;
    await using repository = address === undefined ? undefined : await openRepository(address);
    let held: RehearsalResources | undefined;
    // A second interrupt exits at once: the server is stopped without waiting (SIGQUIT, immediate
    // shutdown) and the scratch directory removed here, since the rehearsal's own cleanup will not run.
    const unregister = ctx.onEmergencyExit?.(() => emergencyCleanup(held));
    let r: RehearsalResult;
    try {
      r = await rehearse({
        ...cli.rehearsal,
        source:
          cli.source.kind === 'directory'
            ? { backupDir: cli.source.backupDir, walArchive: cli.source.walArchive }
            : { repository: repository!, backupId: cli.source.backupId, repositoryAddress: address },
        ...(checkSql !== undefined ? { checkSql } : {}),
        signal: ctx.signal,
        onStep: (s) => reporter.info(`${s.name}: ${s.status}: ${s.detail}`),
        onResources: (res) => {
          held = res;
        },
      });
    } finally {
      unregister?.();
    }
    let recorded: RehearsalRecord | undefined;
    let recordFailed = false;
    if (repository !== undefined) {
      // The report is printed whatever happens to the record: the rehearsal's findings are not lost.
      try {
        recorded = await recordIn(repository, r, cli, ctx.signal);
      } catch (err) {
        recordFailed = true;
        reporter.warning(`the rehearsal could not be recorded in the repository: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const text =
      formatRehearsalReport(r) +
      (recorded ? `recorded as rehearsal ${recorded.id}${recorded.backupId ? ` of backup ${recorded.backupId}` : ''}\n` : '');
    reporter.done({ ...r, ...(recorded ? { recorded: { id: recorded.id, backupId: recorded.backupId } } : {}) }, text);
    return r.ok && !recordFailed ? 0 : 1;
  },
});
