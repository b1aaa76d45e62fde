/**
 * What pgbb prints, in three modes:
 * - `tty`: pg_basebackup -P's progress line (`N/M kB (P%), T/S tablespaces`),
 *   redrawn in place with `\r` and ended with a newline;
 * - `plain`: the same line, one per step and throttled, for logs (stderr not a terminal);
 * - `json`: one JSON object per line on stdout (`{"event":"progress",...}`,
 *   `{"event":"done",...}`, `{"event":"error","code":...}`) for machines.
 *
 * Messages go to stderr as `pgbb: error: ...`, `pgbb: detail: ...`,
 * `pgbb: hint: ...`, like PostgreSQL's tools. Every string written passes through a
 * scrubber so that no password or unredacted connection string is ever printed.
 * @module
 */
import type { BaseBackupOptions } from '../entries/backup.js';
import { PgBackupError, ServerError } from '../entries/errors.js';
import { formatLsn } from '../entries/lsn.js';
import { UsageError } from './args.js';

/** How the reporter writes. */
export type ReporterMode = 'tty' | 'plain' | 'json';

/** Where the reporter writes: the process streams or test doubles. */
export interface OutputStreams {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}

/**
 * One progress observation, in the library's own names (the fields of its `BackupProgress`), so that
 * the `--json` events say what the library says.
 */
export interface ProgressSnapshot {
  /** Archive bytes received so far. */
  bytesDone: number;
  /** The server's estimate of the total, when it made one (`--no-estimate-size` leaves it out). */
  totalBytes?: number | undefined;
  /** Archives (one per tablespace) fully received: pg_basebackup's tablespace count. */
  archivesDone: number;
  /** Archives the server sends. */
  archivesTotal: number;
  /** The archive being received; its name is shown with `-v` in terminal mode. */
  archive?: { name: string } | undefined;
}

/** A step of the backup: the library's `BackupPhaseEvent` (`onPhase`). */
export type PhaseEvent = Parameters<NonNullable<BaseBackupOptions['onPhase']>>[0];

/** Options of {@link createReporter}. */
export interface ReporterOptions extends OutputStreams {
  mode: ReporterMode;
  /** Program name for messages. @default 'pgbb' */
  prog?: string;
  /** Show progress (`-P`). JSON mode always emits progress events. @default false */
  progress?: boolean;
  /** Verbosity (`-v` count); `info` messages need at least 1. @default 0 */
  verbose?: number;
  /**
   * Minimum time between two progress outputs, in milliseconds; a forced or final
   * report is always written.
   * @default 1000 (pg_basebackup reports at most once per second)
   */
  progressIntervalMs?: number;
  /** Applied to every string before it is written (see {@link makeScrubber}). @default identity */
  scrub?: (text: string) => string;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

/** The CLI's output. */
export interface Reporter {
  readonly mode: ReporterMode;
  /** A progress observation; throttled unless `force`. */
  progress(p: ProgressSnapshot, force?: boolean): void;
  /**
   * Write the final progress line (terminal: end the redrawn line with a newline); nothing when the
   * last line written already showed it.
   */
  finishProgress(p?: ProgressSnapshot): void;
  /**
   * A step of the backup. With `-v` or `-P`, pg_basebackup's lines: `initiating base backup, waiting
   * for checkpoint to complete` when BASE_BACKUP is sent, `checkpoint completed` when the start
   * position arrives (and with `-v` the start point); a JSON `phase` event in JSON mode.
   */
  phase(event: PhaseEvent): void;
  /** A verbose message (`pgbb: ...` with `-v`; a JSON `info` event). */
  info(message: string): void;
  /** A warning (`pgbb: warning: ...`), always shown. */
  warning(message: string): void;
  /** The command's result: JSON `done` event, or `key: value` lines on stdout in text modes. */
  done(fields: Record<string, unknown>, text?: string): void;
  /** Report an error the way PostgreSQL's tools do; returns the exit status (1). */
  error(err: unknown): number;
}

/** Pick the mode: `--json` wins, else a terminal on stderr gets the redrawn bar. */
export function chooseMode(o: { json: boolean; stderrIsTTY: boolean | undefined }): ReporterMode {
  return o.json ? 'json' : o.stderrIsTTY ? 'tty' : 'plain';
}

/**
 * A scrubber that replaces every known secret in output: each password (as written
 * and URI-encoded), and each connection string by its redacted form.
 */
export function makeScrubber(o: {
  passwords?: readonly (string | undefined)[];
  connectionStrings?: readonly (string | undefined)[];
  redact: (connectionString: string) => string;
  mask?: string;
}): (text: string) => string {
  const mask = o.mask ?? '********';
  const pairs: [string, string][] = [];
  for (const cs of o.connectionStrings ?? []) {
    if (cs) pairs.push([cs, o.redact(cs)]);
  }
  for (const pw of o.passwords ?? []) {
    // Very short passwords would mask innocent text; the connection strings that hold them are masked above.
    if (!pw || pw.length < 3) continue;
    pairs.push([pw, mask]);
    const enc = encodeURIComponent(pw);
    if (enc !== pw) pairs.push([enc, mask]);
  }
  // Longest first, so a connection string is replaced before the password inside it.
  pairs.sort((a, b) => b[0].length - a[0].length);
  return (text: string) => {
    let out = text;
    for (const [secret, replacement] of pairs) out = out.split(secret).join(replacement);
    return out;
  };
}

/** The pg_basebackup progress line, without the line ending. */
export function formatProgressLine(p: ProgressSnapshot, verbose = false): string {
  const doneKb = Math.floor(p.bytesDone / 1024);
  // The estimate is wrong when WAL is included; never show done > total or > 100%.
  const totalKb = Math.max(Math.floor((p.totalBytes ?? 0) / 1024), doneKb);
  const percent = totalKb > 0 ? Math.min(100, Math.floor((doneKb * 100) / totalKb)) : 0;
  const totalStr = String(totalKb);
  const word = p.archivesTotal === 1 ? 'tablespace' : 'tablespaces';
  let line = `${String(doneKb).padStart(totalStr.length)}/${totalStr} kB (${percent}%), ${p.archivesDone}/${p.archivesTotal} ${word}`;
  const filename = p.archive?.name;
  if (verbose && filename !== undefined) {
    const width = 35;
    const name = filename.length > width ? `...${filename.slice(filename.length - width + 3)}` : filename.padEnd(width);
    line += ` (${name})`;
  }
  return line;
}

function percentOf(p: ProgressSnapshot): number | null {
  if (!p.totalBytes) return null;
  return Math.min(100, Math.floor((p.bytesDone * 100) / Math.max(p.totalBytes, p.bytesDone)));
}

/** Split an error into PostgreSQL-style error / detail / hint lines. */
export function describeError(err: unknown): { message: string; detail: string[]; hint: string[]; code: string } {
  if (err instanceof ServerError) {
    const detail = err.detail ? [err.detail] : [];
    const hint = err.hint ? [err.hint] : [];
    // Advice the library added after the server's fields (ServerError's constructor appends it last).
    const lines = err.message.split('\n');
    const known = new Set([`${err.severity}: ${err.serverMessage}`, `DETAIL: ${err.detail ?? ''}`, `HINT: ${err.hint ?? ''}`]);
    for (const l of lines) if (!known.has(l) && l.trim() !== '') hint.push(l);
    return { message: err.serverMessage, detail, hint, code: err.code };
  }
  const code = err instanceof PgBackupError ? err.code : 'ERR_PGBB_INTERNAL';
  const text = err instanceof Error ? err.message : String(err);
  const [first = '', ...rest] = text.split('\n');
  const detail: string[] = [];
  const hint: string[] = [];
  for (const l of rest) {
    if (l.startsWith('DETAIL: ')) detail.push(l.slice(8));
    else if (l.startsWith('HINT: ')) hint.push(l.slice(6));
    else if (l.trim() !== '') hint.push(l);
  }
  if (err instanceof UsageError) hint.push(err.hint);
  return { message: first, detail, hint, code };
}

/** Create the reporter for one command run. */
export function createReporter(o: ReporterOptions): Reporter {
  const prog = o.prog ?? 'pgbb';
  const scrub = o.scrub ?? ((s: string) => s);
  const now = o.now ?? Date.now;
  const interval = o.progressIntervalMs ?? 1000;
  const verbose = o.verbose ?? 0;
  const showProgress = o.mode === 'json' || (o.progress ?? false);
  let lastAt = -Infinity;
  let lastLineLength = 0;
  let lineOpen = false;
  let last: ProgressSnapshot | undefined;
  /** The line last written in plain mode, so the final report does not repeat it. */
  let lastPlainLine: string | undefined;

  const err = (s: string) => o.stderr.write(scrub(s));
  const out = (s: string) => o.stdout.write(scrub(s));
  const json = (obj: Record<string, unknown>) => out(`${JSON.stringify(obj)}\n`);
  /** Messages must not land in the middle of a redrawn progress line. */
  const breakLine = () => {
    if (lineOpen) {
      err('\n');
      lineOpen = false;
      lastLineLength = 0;
    }
  };

  const write = (p: ProgressSnapshot, final: boolean) => {
    if (o.mode === 'json') {
      json({
        event: 'progress',
        bytesDone: p.bytesDone,
        totalBytes: p.totalBytes ?? null,
        percent: percentOf(p),
        archivesDone: p.archivesDone,
        archivesTotal: p.archivesTotal,
        ...(final ? { final: true } : {}),
      });
      return;
    }
    const line = formatProgressLine(p, verbose > 0 && !final);
    if (o.mode === 'tty') {
      // Pad over the remains of a longer previous line.
      const padded = line.padEnd(lastLineLength);
      err(`${padded}${final ? '\n' : '\r'}`);
      lastLineLength = final ? 0 : line.length;
      lineOpen = !final;
    } else if (!(final && line === lastPlainLine)) {
      // The library's last progress event is already final; a log gets that line once.
      err(`${line}\n`);
      lastPlainLine = line;
    }
  };

  return {
    mode: o.mode,
    progress(p, force = false) {
      last = p;
      if (!showProgress) return;
      const t = now();
      if (!force && t - lastAt < interval) return;
      lastAt = t;
      write(p, false);
    },
    finishProgress(p) {
      const snap = p ?? last;
      if (!showProgress || snap === undefined) return;
      write(snap, true);
    },
    phase(event) {
      if (o.mode === 'json') {
        json({
          event: 'phase',
          phase: event.phase,
          checkpoint: event.checkpoint,
          ...(event.startLsn !== undefined ? { startLsn: formatLsn(event.startLsn) } : {}),
          ...(event.timeline !== undefined ? { timeline: event.timeline } : {}),
        });
        return;
      }
      // pg_basebackup prints these when verbose or showing progress.
      if (verbose === 0 && !(o.progress ?? false)) return;
      const say = (m: string) => {
        breakLine();
        err(`${prog}: ${m}\n`);
      };
      if (event.phase === 'checkpoint') say('initiating base backup, waiting for checkpoint to complete');
      if (event.phase === 'data') {
        say('checkpoint completed');
        if (verbose > 0 && event.startLsn !== undefined) {
          say(
            `write-ahead log start point: ${formatLsn(event.startLsn)}${event.timeline !== undefined ? ` on timeline ${event.timeline}` : ''}`,
          );
        }
      }
    },
    info(message) {
      if (o.mode === 'json') {
        if (verbose > 0) json({ event: 'info', message });
        return;
      }
      if (verbose === 0) return;
      breakLine();
      err(`${prog}: ${message}\n`);
    },
    warning(message) {
      if (o.mode === 'json') json({ event: 'warning', message });
      breakLine();
      err(`${prog}: warning: ${message}\n`);
    },
    done(fields, text) {
      if (o.mode === 'json') {
        json({ event: 'done', ...fields });
        return;
      }
      if (text !== undefined) out(text.endsWith('\n') || text === '' ? text : `${text}\n`);
    },
    error(e) {
      breakLine();
      const d = describeError(e);
      if (o.mode === 'json') {
        const obj: Record<string, unknown> = { event: 'error', code: d.code, message: d.message };
        if (d.detail.length > 0) obj['detail'] = d.detail.join('\n');
        if (d.hint.length > 0) obj['hint'] = d.hint.join('\n');
        if (e instanceof ServerError) obj['sqlState'] = e.sqlState;
        json(obj);
      }
      if (e instanceof UsageError && e.getopt) {
        // getopt's own complaint names the command, and the hint line stands alone.
        err(`${e.prog}: ${d.message}\n${e.hint}\n`);
        return 1;
      }
      let text = `${prog}: error: ${d.message}\n`;
      for (const l of d.detail) text += `${prog}: detail: ${l}\n`;
      for (const l of d.hint) text += `${prog}: hint: ${l}\n`;
      err(text);
      return 1;
    },
  };
}
