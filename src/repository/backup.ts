/**
 * A backup into a repository, as one call: take the lock, skip when a full backup is recent enough
 * (`ifOlderThanMs`), remove what killed runs left, stream the archives into `backups/<id>/` while they
 * arrive, check (or record, on first use) the cluster before the first object is stored, and commit the
 * catalog record last. On any failure the backup's objects are deleted and no record is written.
 * @module
 */
import { DEFAULT_BACKUP_LABEL } from '../backup/options.js';
import { runBackup, type RunBackupOptions, type RunBackupResult } from '../backup/run.js';
import { compressionDetailText, resolveCompression, type CompressionSpec } from '../compress/spec.js';
import { AbortError, PgBackupError, RepositoryError, RepositoryMismatchError } from '../errors.js';
import { backupIdFor } from './backup-id.js';
import { MANIFEST_OBJECT, RepositoryBackupSink } from './backup-sink.js';
import { backupDue } from './catalog.js';
import { recordBackupFailure } from './history.js';
import { postgresVersionText, type BackupRecord } from './record.js';
import type { Repository } from './repository.js';

/** Options of {@link backupToRepository}: those of `runBackup`, less the output, plus the repository's own. */
export interface RepositoryBackupOptions
  extends Omit<RunBackupOptions, 'output' | 'writeRecoveryConf' | 'noClean' | 'noSync' | 'incrementalManifest' | 'walSink' | 'onStart'> {
  /**
   * Do nothing (resolve with `skipped`) when the newest full backup in the catalog ended less than this
   * many milliseconds ago, so that a scheduler can run the backup often (`--if-older-than`).
   * @default always back up
   */
  ifOlderThanMs?: number | undefined;
  /**
   * Take an incremental backup (PostgreSQL 17+) against this backup of the repository: its id, or
   * `latest` for the backup that ended last. Its `backup_manifest` is read from the repository.
   * @default a full backup
   */
  incrementalFrom?: string | undefined;
}

/** What {@link backupToRepository} did. */
export type RepositoryBackupResult =
  | { skipped: false; record: BackupRecord; result: RunBackupResult }
  | {
      /** `ifOlderThanMs` found a recent enough full backup: nothing was done. */
      skipped: true;
      /** That backup. */
      newest: BackupRecord;
      /** Its age, in milliseconds. */
      ageMs: number;
    };

/** The compression as the record states it, in pg_basebackup's syntax. */
function compressionText(spec: CompressionSpec): string {
  if (spec.algorithm === 'none') return 'none';
  const detail = spec.location === 'server' ? compressionDetailText(spec) : spec.levelExplicit ? `level=${spec.level}` : undefined;
  return `${spec.location === 'server' ? 'server-' : ''}${spec.algorithm}${detail === undefined ? '' : `:${detail}`}`;
}

async function readManifest(repository: Repository, parent: BackupRecord, signal: AbortSignal | undefined): Promise<Buffer> {
  if (!parent.objects.some((o) => o.name === MANIFEST_OBJECT)) {
    throw new RepositoryError(`backup ${parent.id} has no backup manifest: an incremental backup cannot be taken against it`, {
      advice: 'take a full backup, or choose a backup taken with a manifest',
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of await repository.openBackupObject(parent.id, MANIFEST_OBJECT, signal ? { signal } : {})) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Take a backup into `repository` (see the module documentation). Holds the repository lock while it
 * runs; fails with `RepositoryLockedError` when another backup or expire holds it, and with
 * `RepositoryMismatchError`, before anything is stored, when the server is not the repository's cluster.
 *
 * @example
 * ```ts
 * import { backupToRepository, openRepository } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('/backups/db1');
 * const outcome = await backupToRepository(repo, { connection: 'host=db1 user=replicator', compression: 'lz4', ifOlderThanMs: 86_400_000 });
 * if (!outcome.skipped) console.log(`stored backup ${outcome.record.id}`);
 * ```
 */
export async function backupToRepository(repository: Repository, options: RepositoryBackupOptions): Promise<RepositoryBackupResult> {
  const started = new Date();
  const { ifOlderThanMs, incrementalFrom, signal: callerSignal, ...backupOptions } = options;
  const spec = resolveCompression(options.compression);
  const lock = await repository.lock('backup', { signal: callerSignal });
  try {
    const callOptions = callerSignal ? { signal: callerSignal } : {};
    const records = await repository.listBackups(callOptions);
    if (ifOlderThanMs !== undefined) {
      const due = backupDue(records, ifOlderThanMs, started);
      if (!due.due) return { skipped: true, newest: due.newest, ageMs: due.ageMs };
    }
    // Objects without a record are from runs that died before their commit: with the lock held, none is running.
    await repository.removeUncommitted(callOptions);

    let parent: BackupRecord | undefined;
    if (incrementalFrom !== undefined) {
      parent =
        incrementalFrom === 'latest'
          ? [...records].sort((a, b) => a.endTime.getTime() - b.endTime.getTime()).at(-1)
          : await repository.getBackup(incrementalFrom, callOptions);
      if (parent === undefined) {
        throw new RepositoryError(`the repository ${repository.location} has no backup to take an incremental backup against`, {
          advice: 'take a full backup first',
        });
      }
    }
    const id = backupIdFor(started, parent ? 'incremental' : 'full');
    let session: { systemIdentifier: string; serverVersionNum: number; walSegmentSize: number } | undefined;
    const sink = new RepositoryBackupSink(repository.storage, id, {
      compression: spec.location === 'client' && spec.algorithm !== 'none' ? spec : undefined,
      beforeFirstPut: async () => {
        if (session === undefined) throw new RepositoryError('the backup stored an archive before the server started it');
        await repository.claim(
          {
            systemIdentifier: session.systemIdentifier,
            majorVersion: Math.floor(session.serverVersionNum / 10000),
            walSegmentSize: session.walSegmentSize,
          },
          callOptions,
        );
      },
    });
    // Losing the lock (a renewal that failed) stops the backup as an abort does.
    const signal = callerSignal ? AbortSignal.any([callerSignal, lock.signal]) : lock.signal;
    let result: RunBackupResult;
    try {
      result = await runBackup({
        ...backupOptions,
        // The sink compresses on the client; the server is asked only for server-side compression.
        ...(spec.location === 'client' ? { compression: 'none' } : {}),
        ...(parent ? { incrementalManifest: await readManifest(repository, parent, callerSignal) } : {}),
        output: { sink },
        signal,
        onStart: (s) => {
          session = s;
        },
      });
      if (session === undefined) throw new RepositoryError('the backup finished without the server starting it');
      const ended = new Date();
      const record: BackupRecord = {
        id,
        type: parent ? 'incremental' : 'full',
        parent: parent?.id ?? null,
        status: 'complete',
        startTime: started,
        endTime: ended,
        startLsn: result.startLsn,
        endLsn: result.endLsn,
        timeline: result.startTimeline,
        endTimeline: result.endTimeline,
        postgresVersion: postgresVersionText(session.serverVersionNum),
        systemIdentifier: session.systemIdentifier,
        // Streamed WAL goes straight into the repository (pushedBytes); walBytes counts a spooled pg_wal.tar, which this sink never gets.
        originalSize: result.stats.totalBytes + (result.stats.walBytes ?? 0) + sink.pushedBytes,
        storedSize: sink.objects.reduce((sum, o) => sum + o.size, 0),
        compression: compressionText(spec),
        durationMs: ended.getTime() - started.getTime(),
        wal: options.wal ?? 'stream',
        label: options.label ?? DEFAULT_BACKUP_LABEL,
        objects: [...sink.objects],
      };
      if (signal.aborted) throw new AbortError('the backup was aborted before its record was written', { cause: signal.reason });
      await repository.commitBackup(record);
      return { skipped: false, record, result };
    } catch (err) {
      // runBackup already removed them; a failure after it (the record) did not.
      await sink.cleanup().catch(() => undefined);
      throw err;
    }
  } catch (err) {
    // Monitoring counts the failed runs since the last success. Best effort: the storage may be what
    // failed. Another cluster's server is refused without a trace: this repository's backups did not fail.
    if (err instanceof RepositoryMismatchError) throw err;
    const code = err instanceof PgBackupError ? err.code : 'ERR_UNEXPECTED';
    await recordBackupFailure(repository, {
      id: backupIdFor(started, incrementalFrom === undefined ? 'full' : 'incremental'),
      type: incrementalFrom === undefined ? 'full' : 'incremental',
      startTime: started,
      endTime: new Date(),
      error: { code, message: err instanceof Error ? err.message : String(err) },
    }).catch(() => undefined);
    throw err;
  } finally {
    await lock.release().catch(() => undefined);
  }
}
