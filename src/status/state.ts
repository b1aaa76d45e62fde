/**
 * What monitoring reads from a repository, in one snapshot: its identity, the catalog, the records of
 * failed runs and rehearsals, the archived WAL's names and times, and (when the caller asked the
 * server) the server's current WAL position. The only I/O of `pgbb status` and `pgbb metrics`; the
 * evaluation and the metrics are pure functions of this snapshot.
 * @module
 */
import type { Lsn } from '../lsn.js';
import type { BackupFailureRecord } from '../repository/failure-record.js';
import { listBackupFailures, listRehearsals, type UnreadableHistoryRecord } from '../repository/history.js';
import type { RepositoryInfo } from '../repository/identity.js';
import type { BackupRecord } from '../repository/record.js';
import type { RehearsalRecord } from '../repository/rehearsal-record.js';
import type { Repository } from '../repository/repository.js';
import { listWalKeys } from '../repository/wal-listing.js';
import type { StorageCallOptions } from '../storage/types.js';

/** The server's current WAL position (`IDENTIFY_SYSTEM`'s `xlogpos`, or `pg_current_wal_lsn()`). */
export interface ServerWalPosition {
  lsn: Lsn;
  timeline: number;
}

/** An archived WAL segment as the repository lists it. */
export interface ArchivedSegmentInfo {
  /** The segment's name (`000000010000000000000003`), without the compression suffix. */
  name: string;
  /** When the storage finished storing it. */
  storedAt: Date;
}

/** A repository as monitoring sees it at one moment. */
export interface RepositoryState {
  /** Where it is (never credentials). */
  location: string;
  /** Its identity record; `undefined` while nothing has used it. */
  info: RepositoryInfo | undefined;
  /** The committed backups, oldest first. */
  backups: BackupRecord[];
  /** The recorded failed backup runs, oldest first. */
  failures: BackupFailureRecord[];
  /** The recorded rehearsals, oldest first. */
  rehearsals: RehearsalRecord[];
  /**
   * History records that could not be read and were left out of {@link failures} and
   * {@link rehearsals} (for a warning: monitoring goes on with the rest); {@link readRepositoryState}
   * always sets it.
   * @default none
   */
  unreadableHistory?: UnreadableHistoryRecord[] | undefined;
  /** The complete segments under `wal/`, in key order (a segment stored in two compressions appears twice). */
  walSegments: ArchivedSegmentInfo[];
  /** The server's position when the caller asked for it: the position, or why it could not be had. */
  server: ServerWalPosition | { error: string } | undefined;
}

/** Options of {@link readRepositoryState}. */
export interface ReadRepositoryStateOptions extends StorageCallOptions {
  /**
   * The server's current WAL position, for the WAL archive's lag in bytes (ask the server with
   * `identify()` from `pg-basebackup`), or the message of the error that prevented it.
   * @default not known: the lag in bytes is not reported
   */
  server?: ServerWalPosition | { error: string } | undefined;
}

/** Reads the snapshot of `repository` that `evaluateStatus` and `repositoryMetrics` work on. */
export async function readRepositoryState(repository: Repository, options: ReadRepositoryStateOptions = {}): Promise<RepositoryState> {
  const call = options.signal ? { signal: options.signal } : {};
  const info = await repository.info(call);
  const walSegments: ArchivedSegmentInfo[] = (await listWalKeys(repository.storage, call)).flatMap((k) =>
    k.kind === 'segment' ? [{ name: k.name, storedAt: k.storedAt }] : [],
  );
  const unreadableHistory: UnreadableHistoryRecord[] = [];
  const history = { ...call, onUnreadable: (u: UnreadableHistoryRecord) => unreadableHistory.push(u) };
  return {
    location: repository.location,
    info,
    backups: await repository.listBackups(call),
    failures: await listBackupFailures(repository, history),
    rehearsals: await listRehearsals(repository, history),
    unreadableHistory,
    walSegments,
    server: options.server,
  };
}
