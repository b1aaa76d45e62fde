/**
 * `rehearse`: prove that a backup restores. The backup is restored into a private scratch directory
 * through the restore path (pre-flight included), started with the server binaries of its major under
 * safe settings, replayed to its target (by default the end of the WAL archive) and promoted, then
 * checked: every table read, amcheck, page checksums, the user's SQL checks. The server is stopped and
 * the scratch directory removed whatever happens (failure, timeout, abort), unless the caller keeps it
 * on failure. Every step is recorded with its duration, with the recovery figures (restore time,
 * replay time, WAL replayed, the last replayed transaction's time).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, ConfigError, PgBackupError, RehearsalError } from '../errors.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { newestArchivedSegment } from '../recovery/preflight.js';
import { restoreBackup, type RestoreResult } from '../recovery/restore.js';
import type { WalArchiveSource } from '../recovery/wal-source.js';
import { restoreFromRepository } from '../repository/restore.js';
import { repositoryWalArchive } from '../repository/wal-source.js';
import { findPgBinaries, type PgBinaries } from './binaries.js';
import { bootstrapSuperuser, PG_AUTHID_FILE } from './bootstrap-role.js';
import {
  hasDataChecksums,
  listDatabases,
  readAllTables,
  runAmcheck,
  runSqlChecks,
  serverChecksumFailures,
  type CheckOutcome,
  type CheckTarget,
} from './checks.js';
import { resolveRunAs } from './run-as.js';
import { createScratch, ensureServerConfig, giveScratch, removeScratch, type ScratchDir } from './scratch.js';
import { ScratchServer } from './server.js';
import { runPgChecksums } from './pg-checksums.js';
import { SqlSession } from '../connection/sql-session.js';
import { splitSqlStatements } from './sql-split.js';
import type { RehearsalFigures, RehearsalOptions, RehearsalResult, RehearsalStep, RehearsalStepName } from './types.js';

/** A failed step ends the rehearsal (the checks after recovery all run, each failing on its own). */
class StepFailed extends Error {}

/**
 * Rehearse the restore of a backup. Resolves with the result whether the rehearsal passed or not
 * (`ok`); rejects only when `signal` aborts it (AbortError, after cleaning up) or when the options are
 * unusable (ConfigError, before anything is created).
 * @example
 * ```ts
 * const r = await rehearse({ source: { backupDir: '/backups/monday', walArchive: '/backups/wal' }, timeoutMs: 3_600_000 });
 * console.log(r.ok ? `restores in ${r.figures.recoveryMs} ms` : r.steps.filter((s) => s.status === 'failed'));
 * ```
 */
export async function rehearse(options: RehearsalOptions): Promise<RehearsalResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  options.signal?.throwIfAborted();
  const runAs = await resolveRunAs(options.runAs);
  const checkSql = options.checkSql === undefined ? undefined : splitSqlStatements(options.checkSql);
  if (checkSql !== undefined && checkSql.length === 0) throw new ConfigError('the SQL checks hold no statement');
  if (options.timeoutMs !== undefined && !(Number.isInteger(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new ConfigError(`invalid timeout ${options.timeoutMs}: give a positive number of milliseconds`);
  }

  const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  const signals = [options.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
  const signal = signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);

  const steps: RehearsalStep[] = [];
  const figures: RehearsalFigures = {
    restoreMs: 0,
    replayMs: 0,
    recoveryMs: 0,
    walBytes: undefined,
    replayLsn: undefined,
    lastTransactionTime: undefined,
    backupStartLsn: undefined,
  };
  let major: number | undefined;
  let role = 'postgres';
  let scratch: ScratchDir | undefined;
  let server: ScratchServer | undefined;
  let binaries: PgBinaries | undefined;
  let failed = false;
  let keptDir: string | undefined;
  const source = options.source;
  /** Where the restored server fetches WAL from: the archive directory, or the repository's archived WAL. */
  let walArchive: string | WalArchiveSource | undefined = 'repository' in source ? undefined : source.walArchive;
  let backupId: string | undefined;

  const record = (step: RehearsalStep): void => {
    steps.push(step);
    if (step.status === 'failed') failed = true;
    options.onStep?.(step);
  };
  /** Run one step; a throw fails it (and the rehearsal, unless `soft`). */
  const step = async <T>(
    name: RehearsalStepName,
    fn: () => Promise<{ value: T; outcome: CheckOutcome }>,
    soft = false,
  ): Promise<T | undefined> => {
    const s0 = performance.now();
    try {
      const { value, outcome } = await fn();
      record({
        name,
        status: outcome.status,
        durationMs: performance.now() - s0,
        detail: outcome.detail,
        ...(outcome.problems.length > 0 ? { problems: outcome.problems } : {}),
      });
      return value;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const timedOut = timeout?.aborted === true;
      const e = timedOut
        ? new RehearsalError(`the rehearsal timed out after ${options.timeoutMs} ms (during ${name})`, { cause: err })
        : err;
      record({ name, status: 'failed', durationMs: performance.now() - s0, detail: describe(e), error: errorJson(e) });
      if (!soft || timedOut) throw new StepFailed();
      return undefined;
    }
  };

  try {
    const restored = await step('restore', async () => {
      scratch = await createScratch(options.workDir);
      const sc = scratch;
      options.onResources?.({ scratchDir: sc.root, serverPid: undefined });
      // Tablespaces go inside the scratch directory, never back to where the backed-up server had them.
      const common = {
        dataDir: sc.dataDir,
        target: options.target,
        // At the target the server promotes: the rehearsal waits for the end of recovery either way.
        ...(options.target ? { targetAction: 'promote' as const } : {}),
        relocateTablespace: (ts: { oid: number }) => join(sc.root, 'tablespaces', String(ts.oid)),
        noSync: true,
        pgbbCommand: options.pgbbCommand,
        signal,
      };
      let r: RestoreResult;
      try {
        if ('repository' in source) {
          const fromRepository = await restoreFromRepository(source.repository, {
            ...common,
            backupId: source.backupId,
            repositoryAddress: source.repositoryAddress,
          });
          backupId = fromRepository.backup.id;
          if (fromRepository.walArchive) walArchive = repositoryWalArchive(source.repository);
          r = fromRepository;
        } else {
          r = await restoreBackup({ ...common, backupDir: source.backupDir, walArchive: source.walArchive });
        }
      } catch (err) {
        const missing = err instanceof PgBackupError ? /([0-9A-F]{24}) is missing/.exec(err.message)?.[1] : undefined;
        if (missing) {
          throw new RehearsalError(
            `the WAL archive lacks ${missing}, before the recovery target: ${err instanceof Error ? err.message : ''}`,
            {
              cause: err,
              missingSegment: missing,
            },
          );
        }
        throw err;
      }
      figures.restoreMs = r.durationMs;
      figures.backupStartLsn = formatLsn(r.startLsn);
      major = Number((await readFile(join(sc.dataDir, 'PG_VERSION'), 'utf8')).trim());
      role =
        options.user ?? bootstrapSuperuser(await readFile(join(sc.dataDir, PG_AUTHID_FILE)).catch(() => Buffer.alloc(0))) ?? 'postgres';
      return {
        value: r,
        outcome: {
          status: 'passed',
          detail: `${backupId !== undefined ? `backup ${backupId}: ` : ''}${r.format} backup restored: ${r.files} files, ${r.bytes} bytes, PostgreSQL ${major}`,
          problems: [],
        },
      };
    });
    if (!restored || scratch === undefined) throw new StepFailed();
    const sc: ScratchDir = scratch;

    await step('archive', async () => {
      const pre = restored.preflight;
      if (!pre || walArchive === undefined) {
        return {
          value: undefined,
          outcome: { status: 'skipped', detail: "no WAL archive: the backup's own WAL is replayed", problems: [] },
        };
      }
      // The pre-flight stops at the first segment the archive lacks. Recovery would end there and
      // promote with less data: when the archive holds later segments, that is a hole.
      const newest = await newestArchivedSegment(walArchive);
      if (options.target === undefined && pre.missingSegment !== undefined && newest !== undefined && newest > pre.missingSegment) {
        throw new RehearsalError(
          `the WAL archive has a hole: ${pre.missingSegment} is missing, but the archive goes on to ${newest}; recovery would stop before it`,
          {
            missingSegment: pre.missingSegment,
            advice: `restore ${pre.missingSegment} into the archive, or rehearse to a target before it`,
          },
        );
      }
      return {
        value: undefined,
        outcome: {
          status: 'passed',
          detail: `${pre.segmentsRead} segments checked to ${formatLsn(pre.resolution.reached ? pre.resolution.lsn : pre.endOfWal)} (${pre.resolution.reached ? pre.resolution.detail : ''})`,
          problems: [],
        },
      };
    });

    binaries = await step('binaries', async () => {
      const b = await findPgBinaries({ major: major!, pgBin: options.pgBin });
      return { value: b, outcome: { status: 'passed', detail: `PostgreSQL ${b.major} in ${b.binDir}`, problems: [] } };
    });

    // Any port will do: the socket directory is private, and there is no TCP listener.
    const port = 49152 + Math.floor(Math.random() * 16000);
    let replay0 = 0;
    await step('start', async () => {
      await ensureServerConfig(sc);
      if (runAs) await giveScratch(sc, runAs);
      replay0 = performance.now();
      server = ScratchServer.start({ postgres: binaries!.postgres, scratch: sc, port, major: major!, runAs });
      options.onResources?.({ scratchDir: sc.root, serverPid: server.pid });
      return {
        value: undefined,
        outcome: {
          status: 'passed',
          detail: `postgres started (pid ${server.pid ?? '?'}) on ${sc.socketDir}, port ${port}, no TCP`,
          problems: [],
        },
      };
    });
    const target: CheckTarget = {
      connection: { host: sc.socketDir, port, user: role, sslmode: 'disable', env: {} },
      signal,
      major: major!,
    };
    const recovered = await step('recovery', async () => {
      await server!.outOfRecovery(signal);
      figures.replayMs = performance.now() - replay0;
      figures.recoveryMs = figures.restoreMs + figures.replayMs;
      const s = await SqlSession.open({ ...target.connection, signal }, 'postgres');
      try {
        const [row] = (
          await s.query(
            `SELECT pg_last_wal_replay_lsn()::text, to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), pg_is_in_recovery()::text`,
            { signal },
          )
        ).at(-1)!.rows;
        if (row?.[2] !== 'false') throw new RehearsalError('the restored server is still in recovery after it said it was ready');
        if (row[0]) {
          figures.replayLsn = row[0];
          figures.walBytes = Number(parseLsn(row[0], 'server') - restored.startLsn);
        }
        figures.lastTransactionTime = row[1] ?? undefined;
      } finally {
        await s.close().catch(() => undefined);
      }
      const databases = await listDatabases(target);
      const checksumsOn = await hasDataChecksums(target);
      return {
        value: { databases, checksumsOn },
        outcome: {
          status: 'passed',
          detail: `recovered and promoted in ${Math.round(figures.replayMs)} ms${figures.replayLsn ? `, replayed to ${figures.replayLsn}` : ''}${figures.lastTransactionTime ? `, last transaction ${figures.lastTransactionTime}` : ''}`,
          problems: [],
        },
      };
    });

    const { databases, checksumsOn } = recovered!;
    await step('read-tables', async () => ({ value: undefined, outcome: await readAllTables(target, databases) }), true);
    await step('amcheck', async () => ({ value: undefined, outcome: await runAmcheck(target, databases) }), true);
    if (!checksumsOn) {
      record({ name: 'checksums', status: 'skipped', durationMs: 0, detail: 'the cluster has no data checksums' });
    } else if (!binaries?.pgChecksums) {
      await step('checksums', async () => ({ value: undefined, outcome: await serverChecksumFailures(target) }), true);
    }
    if (checkSql !== undefined) {
      await step(
        'sql-checks',
        async () => ({ value: undefined, outcome: await runSqlChecks(target, options.checkDatabase ?? 'postgres', checkSql) }),
        true,
      );
    }
    await step('stop', async () => {
      await server!.stop();
      return { value: undefined, outcome: { status: 'passed', detail: 'the server stopped', problems: [] } };
    });
    if (checksumsOn && binaries?.pgChecksums) {
      const tool = binaries.pgChecksums;
      await step('checksums', async () => ({ value: undefined, outcome: await runPgChecksums(tool, sc.dataDir, runAs, signal) }), true);
    }
  } catch (err) {
    if (!(err instanceof StepFailed)) {
      if (!options.signal?.aborted) {
        // Every action is inside a step: this is a bug, still reported as a failure rather than lost.
        record({ name: 'cleanup', status: 'failed', durationMs: 0, detail: describe(err), error: errorJson(err) });
      }
    }
  } finally {
    const c0 = performance.now();
    const s = server as ScratchServer | undefined;
    if (s?.running) await s.stop();
    const keep = failed && options.keepOnFailure === true && !options.signal?.aborted && scratch !== undefined;
    if (scratch !== undefined) {
      if (keep) keptDir = scratch.root;
      else await removeScratch(scratch);
    }
    if (!options.signal?.aborted) {
      record({
        name: 'cleanup',
        status: 'passed',
        durationMs: performance.now() - c0,
        detail: keptDir ? `server stopped; the scratch directory is kept in ${keptDir}` : 'server stopped, scratch directory removed',
      });
    }
  }
  if (options.signal?.aborted) {
    throw new AbortError('the rehearsal was aborted; its server was stopped and its scratch directory removed', {
      cause: options.signal.reason,
    });
  }
  return {
    ok: !failed,
    major,
    ...(backupId !== undefined ? { backupId } : {}),
    startedAt,
    durationMs: performance.now() - t0,
    steps,
    figures,
    keptDir,
    timedOut: timeout?.aborted === true,
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

function errorJson(err: unknown): NonNullable<RehearsalStep['error']> {
  if (err instanceof PgBackupError) return err.toJSON();
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };
}
