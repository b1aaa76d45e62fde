/**
 * The options and the result of a restore rehearsal. The result is plain data (JSON-able): every step
 * with its outcome and duration, and the recovery figures.
 * @module
 */
import type { PgBackupErrorJson } from '../errors.js';
import type { RecoveryTarget } from '../recovery/wal-targets.js';
import type { Repository } from '../repository/repository.js';

/** Where the backup and its WAL come from: a backup directory with a WAL archive directory, or a repository. */
export type RehearsalSource = RehearsalDirectorySource | RehearsalRepositorySource;

/** A backup directory and the WAL archive directory it recovers from. */
export interface RehearsalDirectorySource {
  /** The backup: a plain data directory, or the directory holding `base.tar*` (as `pgbb restore` takes it). */
  backupDir: string;
  /**
   * The WAL archive the restored server reads through `restore_command = pgbb restore-wal`. Without it
   * the server replays only the WAL inside the backup, to its consistency point.
   */
  walArchive?: string | undefined;
}

/**
 * A backup of a repository (restored as `restoreFromRepository` does), recovering from the
 * repository's archived WAL through `restore_command = pgbb restore-wal --repo`. The server runs that
 * command as its own OS user (`runAs`): it must be able to read a local repository, and it reads an
 * S3 repository with the credentials of the environment it inherits (never written into the data directory).
 */
export interface RehearsalRepositorySource {
  repository: Repository;
  /** The backup to rehearse (its id). @default the newest backup (before the target, with one) */
  backupId?: string | undefined;
  /**
   * The repository address written into `restore_command` (what `openRepository` was given).
   * @default the directory, for a local-directory repository (required for other storage)
   */
  repositoryAddress?: string | undefined;
}

/** Options of {@link rehearse}. */
export interface RehearsalOptions {
  source: RehearsalSource;
  /**
   * Where recovery stops: a `time` target (or any other recovery target) is replayed to and promoted
   * at. @default the end of the archive (or, without one, the backup's consistency point)
   */
  target?: RecoveryTarget | undefined;
  /** The directory of the PostgreSQL server binaries (`--pg-bin`). @default found: pg_config on PATH, /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin */
  pgBin?: string | undefined;
  /** The OS user the server runs as; needed (and only allowed) when running as root. */
  runAs?: string | undefined;
  /** The user's checks: SQL statements (separated by `;`), each returning a single true. */
  checkSql?: string | undefined;
  /** The database the user's checks run in. @default 'postgres' */
  checkDatabase?: string | undefined;
  /** The role the rehearsal connects as (trusted over the private socket). @default the bootstrap superuser, read from the restored pg_authid */
  user?: string | undefined;
  /** The whole rehearsal's time limit, in milliseconds; when it passes, the rehearsal fails and cleans up. @default no limit */
  timeoutMs?: number | undefined;
  /** Keep the scratch directory when a step fails (its path is in the result). @default false */
  keepOnFailure?: boolean | undefined;
  /** The directory the scratch directory is created in. @default os.tmpdir() */
  workDir?: string | undefined;
  /** The words that run pgbb in `restore_command` (see `RestoreOptions.pgbbCommand`). @default this package's CLI */
  pgbbCommand?: readonly string[] | undefined;
  /** Cancels the rehearsal: the server is stopped and the scratch directory removed, then it rejects with AbortError. */
  signal?: AbortSignal | undefined;
  /** Told about each step as it ends. */
  onStep?: ((step: RehearsalStep) => void) | undefined;
  /**
   * Told what the rehearsal holds as soon as it holds it (the scratch directory, then the server's
   * process id), for a process that must clean up by itself if it cannot wait for the rehearsal to
   * (pgbb's second Ctrl-C).
   */
  onResources?: ((resources: RehearsalResources) => void) | undefined;
}

/** What a running rehearsal holds. */
export interface RehearsalResources {
  /** The scratch directory: remove it to remove everything the rehearsal wrote. */
  scratchDir: string;
  /** The server's process id (the postmaster), once it was started. */
  serverPid: number | undefined;
}

/** The steps of a rehearsal, in order. */
export type RehearsalStepName =
  | 'restore'
  | 'archive'
  | 'binaries'
  | 'start'
  | 'recovery'
  | 'read-tables'
  | 'amcheck'
  | 'checksums'
  | 'sql-checks'
  | 'stop'
  | 'cleanup';

/** One step's outcome. */
export interface RehearsalStep {
  name: RehearsalStepName;
  status: 'passed' | 'failed' | 'skipped';
  durationMs: number;
  /** What was done or found, in a sentence. */
  detail: string;
  /** The failures found (damaged relations, false checks); at most a few dozen. */
  problems?: string[];
  /** The error that failed the step. */
  error?: PgBackupErrorJson | { name: string; message: string };
}

/** The recovery figures of a rehearsal. */
export interface RehearsalFigures {
  /** Time to fetch and lay out the backup (the restore), ms. */
  restoreMs: number;
  /** Time from starting the server to the end of recovery (promotion), ms. */
  replayMs: number;
  /** Their sum: the recovery time a real restore would take, ms. */
  recoveryMs: number;
  /** WAL replayed: from the backup's start to the last record replayed, bytes. */
  walBytes: number | undefined;
  /** The last replayed WAL position (`pg_last_wal_replay_lsn`). */
  replayLsn: string | undefined;
  /** The commit time of the last replayed transaction (ISO 8601): the recovery point. */
  lastTransactionTime: string | undefined;
  /** The backup's start LSN. */
  backupStartLsn: string | undefined;
}

/** What {@link rehearse} found. */
export interface RehearsalResult {
  /** Every step passed. */
  ok: boolean;
  /** The PostgreSQL major of the backup. */
  major: number | undefined;
  /** The repository backup rehearsed (its id), for a repository source once it was chosen. */
  backupId?: string | undefined;
  startedAt: string;
  durationMs: number;
  steps: RehearsalStep[];
  figures: RehearsalFigures;
  /** The scratch directory, when it was kept (keepOnFailure). */
  keptDir: string | undefined;
  /** The rehearsal ran out of time (timeoutMs). */
  timedOut: boolean;
}
