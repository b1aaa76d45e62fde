/**
 * `pgbb status`'s checks, with Nagios/Icinga conventions: each check is OK, WARNING, CRITICAL or
 * UNKNOWN, and the worst decides the exit code (0, 1, 2, 3). A pure function of a
 * {@link RepositoryState}, the thresholds and the time: every rule is here and tested without I/O.
 *
 * The age rules are the same for backups, WAL and rehearsals: older than the limit is WARNING, older
 * than twice the limit CRITICAL (a missed run warns, a second one pages).
 * @module
 */
import { formatLsn } from '../lsn.js';
import { newestFullBackup } from '../repository/catalog.js';
import { statusWindow, summarizeWalArchive, type WalArchiveSummary } from './archive.js';
import type { BackupFailureRecord } from '../repository/failure-record.js';
import type { RepositoryState } from './state.js';

/** A check's state, Nagios's words. */
export type CheckState = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';

/** The exit code of each state (Nagios plugin API). */
export const CHECK_EXIT_CODE: Readonly<Record<CheckState, 0 | 1 | 2 | 3>> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

/** Severity for the overall state: CRITICAL beats UNKNOWN beats WARNING beats OK (Icinga's order). */
const SEVERITY: Readonly<Record<CheckState, number>> = { OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3 };

/** The checks, in the order they are printed. */
export type StatusCheckName =
  | 'repository'
  | 'backup-age'
  | 'backup-failures'
  | 'wal-archive'
  | 'wal-age'
  | 'wal-lag'
  | 'rehearsal'
  | 'pitr-window';

/** One check's outcome. */
export interface StatusCheck {
  name: StatusCheckName;
  state: CheckState;
  /** One line for people. */
  message: string;
}

/** The limits of {@link evaluateStatus}. */
export interface StatusThresholds {
  /** Age of the newest full backup (its end) before WARNING; twice it is CRITICAL. @default 7 days */
  maxBackupAgeMs?: number | undefined;
  /**
   * Age of the newest archived WAL segment before WARNING; twice it is CRITICAL. Not applied when
   * the server's position is known and the archive lacks at most the segment in progress (a quiet
   * server fills segments slowly). @default no limit (the age is reported; no WAL archive is then OK)
   */
  maxWalAgeMs?: number | undefined;
  /** Age of the last rehearsal before WARNING; twice it is CRITICAL. @default no limit (no rehearsal is then OK) */
  maxRehearsalAgeMs?: number | undefined;
}

/** What {@link evaluateStatus} found. */
export interface StatusReport {
  /** The worst state of the checks. */
  state: CheckState;
  /** Its exit code. */
  exitCode: 0 | 1 | 2 | 3;
  checks: StatusCheck[];
  /**
   * Nagios performance data (`label=value[unit];warn;crit;min`), for graphs: `backup_age`,
   * `backup_failures`, `wal_segments`, `wal_gaps`, `wal_age`, `wal_lag`, `rehearsal_age`,
   * `rehearsal_recovery`; those not known are left out.
   */
  perfdata: string[];
}

/** The default of {@link StatusThresholds.maxBackupAgeMs}: a week. */
export const DEFAULT_MAX_BACKUP_AGE_MS = 7 * 86_400_000;

/**
 * How long before `now` the moment `then` was, never below zero. Stored times come from the storage's
 * clock, not ours: S3 servers such as Swift round Last-Modified up to the next whole second, and
 * another host's clock may run ahead, so a segment stored a moment ago can look stored in the future.
 * Pure.
 */
export function ageMs(now: Date, then: Date): number {
  return Math.max(0, now.getTime() - then.getTime());
}

/** `3d 04h`, `2h 10m`, `5m 03s`, `12s`: an age for a status line. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/**
 * The recorded failed backup runs that started after the last successful backup did (oldest first):
 * what "failed backups since the last success" counts. Pure.
 */
export function failuresSinceLastSuccess(state: RepositoryState): BackupFailureRecord[] {
  let lastSuccess = 0;
  for (const b of state.backups) lastSuccess = Math.max(lastSuccess, b.startTime.getTime());
  return state.failures.filter((f) => f.startTime.getTime() > lastSuccess);
}

function ageState(ageMs: number, maxMs: number | undefined): CheckState {
  if (maxMs === undefined || ageMs <= maxMs) return 'OK';
  return ageMs > 2 * maxMs ? 'CRITICAL' : 'WARNING';
}

function limitText(maxMs: number | undefined): string {
  return maxMs === undefined ? '' : ` (limit ${formatAge(maxMs)})`;
}

function backupAge(state: RepositoryState, thresholds: StatusThresholds, now: Date): StatusCheck {
  const newest = newestFullBackup(state.backups);
  if (newest === undefined) return { name: 'backup-age', state: 'CRITICAL', message: 'the repository holds no full backup' };
  const max = thresholds.maxBackupAgeMs ?? DEFAULT_MAX_BACKUP_AGE_MS;
  const age = ageMs(now, newest.endTime);
  return {
    name: 'backup-age',
    state: ageState(age, max),
    message: `newest full backup ${newest.id} ended ${formatAge(age)} ago${limitText(max)}`,
  };
}

function backupFailures(state: RepositoryState): StatusCheck {
  const since = failuresSinceLastSuccess(state);
  const newest = since.at(-1);
  if (newest === undefined) return { name: 'backup-failures', state: 'OK', message: 'no failed backup run since the last success' };
  return {
    name: 'backup-failures',
    state: 'WARNING',
    message: `${since.length} failed backup run${since.length === 1 ? '' : 's'} since the last success, the latest ${newest.id}: ${newest.error.code}: ${newest.error.message.split('\n')[0]}`,
  };
}

function walArchive(state: RepositoryState, archive: WalArchiveSummary | undefined, thresholds: StatusThresholds): StatusCheck {
  if (archive === undefined) {
    if (state.walSegments.length > 0) {
      return {
        name: 'wal-archive',
        state: 'UNKNOWN',
        message: 'repository.json does not record the WAL segment size: the archive cannot be read',
      };
    }
    return thresholds.maxWalAgeMs === undefined
      ? { name: 'wal-archive', state: 'OK', message: 'no WAL archived in the repository: each backup restores to its own end only' }
      : { name: 'wal-archive', state: 'CRITICAL', message: 'no WAL archived in the repository' };
  }
  const segments = archive.wal.timelines.reduce((n, e) => n + e.segments, 0);
  const range = `${archive.wal.timelines[0]!.firstSegment} to ${archive.wal.newest.segment}, ${segments} segments`;
  const blocking = archive.holes.filter((h) => h.blocksNewest);
  if (archive.endsBeforeNewestBackup) {
    return {
      name: 'wal-archive',
      state: 'CRITICAL',
      message: `the archive (${range}) ends before the newest backup: nothing after it is archived`,
    };
  }
  if (blocking.length > 0) {
    const h = blocking[0]!;
    return {
      name: 'wal-archive',
      state: 'CRITICAL',
      message: `missing ${h.first === h.last ? h.first : `${h.first} to ${h.last}`} after the newest backup: a restore stops there${blocking.length > 1 ? ` (${blocking.length} holes)` : ''}`,
    };
  }
  if (archive.holes.length > 0) {
    const h = archive.holes.at(-1)!;
    return {
      name: 'wal-archive',
      state: 'WARNING',
      message: `missing ${h.first === h.last ? h.first : `${h.first} to ${h.last}`} before the newest backup: older backups cannot be replayed past it (${range})`,
    };
  }
  return { name: 'wal-archive', state: 'OK', message: `no gap: ${range}` };
}

function walAge(state: RepositoryState, archive: WalArchiveSummary, thresholds: StatusThresholds, now: Date): StatusCheck {
  const age = ageMs(now, archive.wal.newest.storedAt);
  const segmentSize = state.info?.cluster.walSegmentSize ?? 0;
  const text = `newest segment ${archive.wal.newest.segment} stored ${formatAge(age)} ago${limitText(thresholds.maxWalAgeMs)}`;
  // Only complete segments are archived: a server still writing the segment after the archive's end
  // is as current as the archive can be, however old its last segment.
  if (archive.lagBytes !== undefined && archive.lagBytes < segmentSize) {
    return { name: 'wal-age', state: 'OK', message: `${text}; the server is still in the next segment` };
  }
  return { name: 'wal-age', state: ageState(age, thresholds.maxWalAgeMs), message: text };
}

function walLag(state: RepositoryState, archive: WalArchiveSummary | undefined): StatusCheck | undefined {
  const server = state.server;
  if (server === undefined) return undefined;
  if ('error' in server) return { name: 'wal-lag', state: 'UNKNOWN', message: `the server's WAL position is not known: ${server.error}` };
  if (archive === undefined) {
    return { name: 'wal-lag', state: 'OK', message: `server at ${formatLsn(server.lsn)} (timeline ${server.timeline}); no WAL archived` };
  }
  return {
    name: 'wal-lag',
    state: 'OK',
    message: `server at ${formatLsn(server.lsn)} (timeline ${server.timeline}), archive ends at ${formatLsn(archive.wal.newest.endLsn)}: ${archive.lagBytes} bytes behind`,
  };
}

function rehearsal(state: RepositoryState, thresholds: StatusThresholds, now: Date): StatusCheck {
  const last = state.rehearsals.at(-1);
  const max = thresholds.maxRehearsalAgeMs;
  if (last === undefined) {
    return max === undefined
      ? { name: 'rehearsal', state: 'OK', message: 'no rehearsal recorded' }
      : { name: 'rehearsal', state: 'WARNING', message: `no rehearsal recorded${limitText(max)}` };
  }
  const age = ageMs(now, last.endTime);
  const of = `${last.id}${last.backupId === null ? '' : ` of ${last.backupId}`} ${formatAge(age)} ago`;
  if (last.result === 'fail') {
    return {
      name: 'rehearsal',
      state: 'CRITICAL',
      message: `last rehearsal ${of} FAILED at ${last.failedStep ?? '?'}: ${last.failure ?? ''}`.trimEnd(),
    };
  }
  return {
    name: 'rehearsal',
    state: ageState(age, max),
    message: `last rehearsal ${of} passed, recovery time ${formatAge(last.recoveryMs)}${limitText(max)}`,
  };
}

function window(state: RepositoryState, archive: WalArchiveSummary | undefined): StatusCheck {
  const w = statusWindow(state, archive);
  if (w.from === null || w.to === null) return { name: 'pitr-window', state: 'OK', message: 'none (no backups)' };
  const point = (p: { time: Date; lsn: bigint; timeline: number }) =>
    `${p.time.toISOString()} (${formatLsn(p.lsn)}, timeline ${p.timeline})`;
  return {
    name: 'pitr-window',
    state: 'OK',
    message: `from ${point(w.from)} to ${point(w.to)}${w.toSource === 'backup' ? ', the newest backup' : ''}`,
  };
}

function perfItem(label: string, value: number, unit: '' | 's' | 'B', limitMs?: number): string {
  const limits = limitMs === undefined ? ';;' : `;${Math.round(limitMs / 1000)};${Math.round((2 * limitMs) / 1000)}`;
  return `${label}=${Math.round(value)}${unit}${limits};0`;
}

function perfdata(state: RepositoryState, archive: WalArchiveSummary | undefined, thresholds: StatusThresholds, now: Date): string[] {
  const out: string[] = [];
  const full = newestFullBackup(state.backups);
  const maxBackup = thresholds.maxBackupAgeMs ?? DEFAULT_MAX_BACKUP_AGE_MS;
  if (full !== undefined) out.push(perfItem('backup_age', ageMs(now, full.endTime) / 1000, 's', maxBackup));
  // Nagios ranges: a warning threshold of 0 alerts on anything above 0.
  out.push(`backup_failures=${failuresSinceLastSuccess(state).length};0;;0`);
  if (archive !== undefined) {
    out.push(
      perfItem(
        'wal_segments',
        archive.wal.timelines.reduce((n, e) => n + e.segments, 0),
        '',
      ),
    );
    out.push(perfItem('wal_gaps', archive.holes.length, ''));
    out.push(perfItem('wal_age', ageMs(now, archive.wal.newest.storedAt) / 1000, 's', thresholds.maxWalAgeMs));
    if (archive.lagBytes !== undefined) out.push(perfItem('wal_lag', archive.lagBytes, 'B'));
  }
  const last = state.rehearsals.at(-1);
  if (last !== undefined) {
    out.push(perfItem('rehearsal_age', ageMs(now, last.endTime) / 1000, 's', thresholds.maxRehearsalAgeMs));
    if (last.result === 'pass') out.push(perfItem('rehearsal_recovery', last.recoveryMs / 1000, 's'));
  }
  return out;
}

/**
 * The status of the repository in `state` at `now`. Checks: `backup-age`, `backup-failures`,
 * `wal-archive` (gaps), `wal-age`, `wal-lag` (with the server's position), `rehearsal`,
 * `pitr-window`; a repository nothing has used yet gives one UNKNOWN `repository` check.
 *
 * @example
 * ```ts
 * import { openRepository } from 'pg-basebackup/repository';
 * import { evaluateStatus, readRepositoryState } from 'pg-basebackup/status';
 *
 * await using repo = await openRepository('/backups/db1');
 * const report = evaluateStatus(await readRepositoryState(repo), { maxBackupAgeMs: 86_400_000 }, new Date());
 * for (const c of report.checks) console.log(`${c.state}: ${c.name}: ${c.message}`);
 * process.exitCode = report.exitCode;
 * ```
 */
export function evaluateStatus(state: RepositoryState, thresholds: StatusThresholds, now: Date): StatusReport {
  let checks: StatusCheck[];
  let perf: string[] = [];
  if (state.info === undefined && state.backups.length === 0) {
    checks = [{ name: 'repository', state: 'UNKNOWN', message: `nothing has been stored in ${state.location} yet: is the address right?` }];
  } else {
    const archive = summarizeWalArchive(state);
    checks = [backupAge(state, thresholds, now), backupFailures(state), walArchive(state, archive, thresholds)];
    if (archive !== undefined) checks.push(walAge(state, archive, thresholds, now));
    const lag = walLag(state, archive);
    if (lag !== undefined) checks.push(lag);
    checks.push(rehearsal(state, thresholds, now), window(state, archive));
    perf = perfdata(state, archive, thresholds, now);
  }
  const worst = checks.reduce<CheckState>((w, c) => (SEVERITY[c.state] > SEVERITY[w] ? c.state : w), 'OK');
  return { state: worst, exitCode: CHECK_EXIT_CODE[worst], checks, perfdata: perf };
}

/**
 * The report as Nagios reads it: a first line with the overall state and the checks that are not OK
 * (what an alert shows) and, after `|`, the performance data; then one line per check.
 */
export function formatStatusReport(report: StatusReport): string {
  const bad = report.checks.filter((c) => c.state !== 'OK');
  const summary = bad.length === 0 ? 'all checks passed' : bad.map((c) => `${c.name} ${c.state}`).join(', ');
  const perf = report.perfdata.length === 0 ? '' : ` | ${report.perfdata.join(' ')}`;
  return `PGBB ${report.state} - ${summary}${perf}\n${report.checks.map((c) => `${c.state}: ${c.name}: ${c.message}\n`).join('')}`;
}
