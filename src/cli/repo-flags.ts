/**
 * The `--repo REPO` option of the repository commands, with `PGBB_REPO` as its fallback, and the text
 * formats they share (sizes, durations, times).
 * @module
 */
import { UsageError, type OptionSpec } from './args.js';

/** `--repo REPO`. */
export const REPO_OPTION: OptionSpec = {
  key: 'repo',
  long: 'repo',
  arg: 'required',
  metavar: 'REPO',
  help: 'the repository: a directory or s3://BUCKET/PREFIX\n(default: $PGBB_REPO)',
};

/** The repository address: `--repo`, else `PGBB_REPO`; a usage error when neither is given. */
export function repositoryAddress(prog: string, repo: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  const address = repo ?? (env['PGBB_REPO'] || undefined);
  if (address === undefined || address === '') throw new UsageError(prog, 'no repository specified (use --repo or PGBB_REPO)');
  return address;
}

/** Bytes for people: `512 B`, `30.0 MB` (powers of 1024, as pg_size_pretty). */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds for people: `850ms`, `42s`, `3m 05s`, `2h 10m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A time as `2026-12-06 03:38:00Z` (UTC, to the second). */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}
