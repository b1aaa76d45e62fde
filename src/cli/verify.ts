/**
 * `pgbb verify`: pg_verifybackup's command line over the library's `verifyBackup`. Each problem is
 * printed as pg_verifybackup prints it (`pgbb verify: error: "base/1/1234" has size 8192 on disk but
 * size 16384 in the manifest`); the exit status is 1 when anything was found, and
 * `backup successfully verified` is printed otherwise (unless `-q`).
 * @module
 */
import { verifyBackup, type VerifyFinding, type VerifyOptions, type VerifyProgress, type VerifySummary } from '../entries/verify.js';
import { parseArgs, UsageError, type CommandSpec } from './args.js';
import { defineCommand, type CliContext } from './context.js';
import type { Reporter } from './output.js';

const PROG = 'pgbb verify';

/** The option table of `pgbb verify` (pg_verifybackup's flags, plus `--json` and `--pg-waldump`). */
export const VERIFY_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb verify verifies a backup against the backup manifest.',
  usage: [
    '[OPTION]... BACKUPDIR',
    '[OPTION]... BACKUP.tar[.gz|.lz4|.zst]   (a single-tar backup, as written by -D - -Ft)',
    '--repo REPO [OPTION]... [ID]            (the backups stored in a repository, and its WAL archive)',
  ],
  options: [
    {
      key: 'repo',
      long: 'repo',
      arg: 'required',
      metavar: 'REPO',
      help: 'verify the backups stored in this repository (or only backup ID)\nin place, and the continuity of its WAL archive',
    },
    { key: 'exit-on-error', short: 'e', long: 'exit-on-error', help: 'exit immediately on error' },
    { key: 'format', short: 'F', long: 'format', arg: 'required', metavar: 'p|t', help: 'backup format (plain, tar); default: detected' },
    { key: 'ignore', short: 'i', long: 'ignore', arg: 'required', metavar: 'RELATIVE_PATH', help: 'ignore indicated path (repeatable)' },
    { key: 'manifest-path', short: 'm', long: 'manifest-path', arg: 'required', metavar: 'PATH', help: 'use specified path for manifest' },
    { key: 'no-parse-wal', short: 'n', long: 'no-parse-wal', help: 'do not try to parse WAL files' },
    { key: 'progress', short: 'P', long: 'progress', help: 'show progress information' },
    { key: 'quiet', short: 'q', long: 'quiet', help: 'do not print any output, except for errors' },
    { key: 'skip-checksums', short: 's', long: 'skip-checksums', help: 'skip checksum verification' },
    { key: 'wal-path', short: 'w', long: 'wal-path', arg: 'required', metavar: 'PATH', help: 'use specified path for WAL files' },
    { key: 'wal-path', long: 'wal-directory', arg: 'required', metavar: 'PATH', help: '(same as --wal-path, deprecated)' },
    { key: 'pg-waldump', long: 'pg-waldump', arg: 'required', metavar: 'PATH', help: 'also check WAL with this pg_waldump' },
    { key: 'json', long: 'json', help: 'print findings and the result as JSON lines on stdout' },
    { key: 'version', short: 'V', long: 'version', help: 'output version information, then exit' },
    { key: 'help', short: '?', long: 'help', help: 'show this help, then exit' },
  ],
  epilog: 'The exit status is 0 when the backup verified, 1 when a problem was found.',
  examples: [
    { comment: 'verify a plain or tar backup taken with pgbb backup or pg_basebackup', command: 'pgbb verify /backups/db1' },
    { comment: 'sizes and WAL only (no checksums), stopping at the first problem', command: 'pgbb verify -s -e /backups/db1' },
    { comment: 'findings as JSON lines, for a monitoring job', command: 'pgbb verify --json /backups/db1' },
    { comment: 'every backup of a repository, and its WAL archive', command: 'pgbb verify --repo /backups/db1' },
  ],
};

/** What the command line asks for. */
export interface VerifyCliOptions {
  verify: VerifyOptions;
  /** `--repo REPO [ID]`: verify stored backups instead of `verify.backupDir` (then empty). */
  repository?: { address: string; id: string | undefined } | undefined;
  quiet: boolean;
  progress: boolean;
  json: boolean;
}

/**
 * Map `pgbb verify` arguments to the library options. Pure; throws {@link UsageError}.
 * @example
 * ```ts
 * parseVerifyCommandLine(['-s', '-i', 'base/stray', 'backup']).verify // { backupDir: 'backup', skipChecksums: true, ignore: ['base/stray'] }
 * ```
 */
export function parseVerifyCommandLine(
  argv: readonly string[],
): { kind: 'help' } | { kind: 'version' } | { kind: 'run'; options: VerifyCliOptions } {
  const args = parseArgs(VERIFY_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  const [dir, extra] = args.operands;
  if (extra !== undefined) throw new UsageError(PROG, `too many command-line arguments (first is "${extra}")`);
  const quiet = args.has('quiet');
  const progress = args.has('progress');
  if (quiet && progress) throw new UsageError(PROG, 'cannot specify both -P/--progress and -q/--quiet');
  const repo = args.last('repo');
  if (repo !== undefined) {
    for (const flag of ['format', 'ignore', 'manifest-path', 'wal-path', 'pg-waldump', 'exit-on-error', 'progress']) {
      if (args.has(flag)) throw new UsageError(PROG, `--${flag} does not apply to --repo`);
    }
    const verify: VerifyOptions = { backupDir: '' };
    if (args.has('no-parse-wal')) verify.noWal = true;
    if (args.has('skip-checksums')) verify.skipChecksums = true;
    return { kind: 'run', options: { verify, repository: { address: repo, id: dir }, quiet, progress, json: args.has('json') } };
  }
  if (dir === undefined) throw new UsageError(PROG, 'no backup directory specified');
  const verify: VerifyOptions = { backupDir: dir };
  const format = args.last('format');
  if (format !== undefined) {
    if (format === 'p' || format === 'plain') verify.format = 'plain';
    else if (format === 't' || format === 'tar') verify.format = 'tar';
    else throw new UsageError(PROG, `invalid backup format "${format}", must be "plain" or "tar"`);
  }
  const ignore = args.all('ignore');
  if (ignore.length > 0) verify.ignore = ignore;
  const manifestPath = args.last('manifest-path');
  if (manifestPath !== undefined) verify.manifestPath = manifestPath;
  const walPath = args.last('wal-path');
  if (walPath !== undefined) verify.walDir = walPath;
  const waldump = args.last('pg-waldump');
  if (waldump !== undefined) verify.pgWaldumpPath = waldump;
  if (args.has('exit-on-error')) verify.exitOnError = true;
  if (args.has('no-parse-wal')) verify.noWal = true;
  if (args.has('skip-checksums')) verify.skipChecksums = true;
  return { kind: 'run', options: { verify, quiet, progress, json: args.has('json') } };
}

/** pg_verifybackup's progress line: `done/total kB (P%) verified`. */
export function formatVerifyProgress(p: VerifyProgress): string {
  const total = Math.floor(p.totalBytes / 1024);
  const done = Math.floor(p.doneBytes / 1024);
  const percent = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
  return `${String(done).padStart(String(total).length)}/${total} kB (${percent}%) verified`;
}

function findingJson(f: VerifyFinding): Record<string, unknown> {
  return {
    event: 'finding',
    kind: f.kind,
    path: f.path,
    message: f.message,
    ...(f.detail !== undefined ? { detail: f.detail } : {}),
    ...(f.archive !== undefined ? { archive: f.archive } : {}),
  };
}

function summaryJson(s: VerifySummary | undefined): Record<string, unknown> {
  return s ? { ...s } : {};
}

/** Progress output: redrawn on a terminal, at most once a second elsewhere. */
function progressWriter(ctx: CliContext, mode: Reporter['mode'], enabled: boolean) {
  const now = ctx.now ?? Date.now;
  let last = -Infinity;
  let open = false;
  let latest: VerifyProgress | undefined;
  const write = (p: VerifyProgress, final: boolean) => {
    if (mode === 'json') {
      ctx.stdout.write(
        `${JSON.stringify({ event: 'progress', phase: p.phase, doneBytes: p.doneBytes, totalBytes: p.totalBytes, ...(final ? { final: true } : {}) })}\n`,
      );
      return;
    }
    const line = formatVerifyProgress(p);
    if (mode === 'tty' && !final) {
      ctx.stderr.write(`${line}\r`);
      open = true;
    } else {
      ctx.stderr.write(`${line}\n`);
      open = false;
    }
  };
  return {
    update(p: VerifyProgress) {
      // WAL bytes have no known total; the line tracks the file phase as pg_verifybackup's does.
      if (!enabled || p.phase === 'wal') return;
      latest = p;
      const t = now();
      if (t - last < 1000) return;
      last = t;
      write(p, false);
    },
    /** Leave the redrawn line before printing a message. */
    breakLine() {
      if (open) {
        ctx.stderr.write('\n');
        open = false;
      }
    },
    finish() {
      if (enabled && latest) write(latest, true);
    },
  };
}

/** `pgbb verify`. */
export const verifyCommand = defineCommand<VerifyCliOptions>({
  name: 'verify',
  prog: PROG,
  spec: VERIFY_COMMAND,
  parse: parseVerifyCommandLine,
  reporting: (cli) => ({ json: cli.json }),
  async execute(cli, { ctx, reporter }) {
    if (cli.repository) {
      const request = {
        ...cli.repository,
        skipChecksums: cli.verify.skipChecksums ?? false,
        noWal: cli.verify.noWal ?? false,
        quiet: cli.quiet,
      };
      return (await import('./verify-repo.js')).verifyRepositoryCli(request, ctx, reporter.mode);
    }
    const mode = reporter.mode;
    const progress = progressWriter(ctx, mode, cli.progress || mode === 'json');
    const run = verifyBackup({ ...cli.verify, signal: ctx.signal, onProgress: (p) => progress.update(p) });
    let problems = 0;
    try {
      for await (const f of run) {
        problems++;
        progress.breakLine();
        if (mode === 'json') ctx.stdout.write(`${JSON.stringify(findingJson(f))}\n`);
        let text = `${PROG}: error: ${f.message}\n`;
        if (f.detail !== undefined) text += `${PROG}: detail: ${f.detail}\n`;
        ctx.stderr.write(text);
      }
      progress.finish();
    } catch (err) {
      progress.breakLine();
      // Reported by the runner.
      throw err;
    }
    if (mode === 'json') {
      ctx.stdout.write(`${JSON.stringify({ event: 'done', ...summaryJson(run.summary), ok: problems === 0 })}\n`);
    } else if (problems === 0 && !cli.quiet) {
      ctx.stdout.write('backup successfully verified\n');
    }
    return problems === 0 ? 0 : 1;
  },
});
