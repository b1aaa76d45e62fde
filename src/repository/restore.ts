/**
 * A restore from a repository, as one call: choose the newest backup that ended before the recovery
 * target (for a restore point or a transaction, found by walking the repository's archived WAL), walk
 * the WAL from that backup to the target (the pre-flight, before any file is written), stream the
 * backup's archives from storage straight into the data directory while checking every member against
 * the stored manifest, and set `restore_command` to `pgbb restore-wal --repo`. An incremental backup's
 * chain is restored into a scratch directory beside the data directory and combined into it (see
 * {@link restoreFromRepository}). Everything written is taken back on failure or abort.
 * @module
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { ConfigError, RepositoryError, VerifyError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { firstArchivedSegment, probeWalArchive } from '../recovery/archive-probe.js';
import { inspectStoredBackup, type StoredArchive } from '../recovery/backup-source.js';
import { preflightRestore } from '../recovery/preflight.js';
import { repositoryRestoreCommandLine } from '../recovery/recovery-settings.js';
import { defaultPgbbCommand, restoreSource, type RestoreOptions, type RestoreResult } from '../recovery/restore.js';
import type { RecoveryTarget } from '../recovery/wal-targets.js';
import { MANIFEST_OBJECT } from './backup-sink.js';
import { backupObjectKey } from './layout.js';
import type { BackupObject, BackupRecord } from './record.js';
import type { Repository } from './repository.js';
import { backupChain, newestBackupBefore, oldestBackup, type BackupBound } from './select.js';
import { repositoryWalArchive } from './wal-source.js';

/** Options of {@link restoreFromRepository}: those of `restoreBackup`, less the backup and archive directories. */
export interface RepositoryRestoreOptions extends Omit<RestoreOptions, 'backupDir' | 'walArchive'> {
  /**
   * Restore this backup (its id) instead of choosing one; a target before its end is refused.
   * @default the newest backup that ended before the target
   */
  backupId?: string | undefined;
  /**
   * The repository address written into `restore_command` (`pgbb restore-wal --repo ADDRESS`): what
   * `openRepository` was given, with the endpoint and region of an S3 repository. Never holds credentials.
   * @default the directory, for a local-directory repository (required for other storage)
   */
  repositoryAddress?: string | undefined;
}

/** What {@link restoreFromRepository} did. */
export interface RepositoryRestoreResult extends RestoreResult {
  /** The backup restored. */
  backup: BackupRecord;
  /** The ids of the backups restored, oldest first: the backup alone, or its incremental chain from the full backup. */
  chain: string[];
  /** Whether the repository holds archived WAL (then recovery fetches it with `restore-wal --repo`). */
  walArchive: boolean;
}

/**
 * Restore a backup of `repository` into a new data directory, for recovery to `options.target`.
 * @throws NoBackupForTargetError when the target is before the end of the oldest backup (or there is
 *   none); ConfigError when the WAL cannot reach the target (naming the first missing segment);
 *   VerifyError when a stored archive does not match its manifest; WalArchiveError, StorageError,
 *   TargetError, IoError, AbortError. Nothing is left in the data directory when it throws.
 * @example
 * ```ts
 * import { openRepository, restoreFromRepository } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('/backups/db1');
 * const r = await restoreFromRepository(repo, {
 *   dataDir: '/srv/pg/restored',
 *   target: { kind: 'time', time: new Date('2026-12-06T03:00:00Z') },
 *   targetAction: 'promote',
 * });
 * console.log(`restored ${r.backup.id}; recovery stops at ${r.targetLsn}`);
 * ```
 */
export async function restoreFromRepository(repository: Repository, options: RepositoryRestoreOptions): Promise<RepositoryRestoreResult> {
  const { backupId, repositoryAddress, ...restoreOptions } = options;
  const call = options.signal ? { signal: options.signal } : {};
  const records = await repository.listBackups(call);
  const wal = repositoryWalArchive(repository);
  const hasWal = (await firstArchivedSegment(wal)) !== undefined;
  if (options.target !== undefined && !hasWal) {
    throw new ConfigError(
      `the repository ${repository.location} holds no archived WAL: a recovery target needs it (archive WAL into it with pgbb receive-wal --repo)`,
    );
  }
  const chosen =
    backupId !== undefined
      ? await repository.getBackup(backupId, call)
      : newestBackupBefore(records, await boundOf(repository, records, options));
  const chain = backupChain(records, chosen);
  if (chain.length > 1) {
    throw new RepositoryError(`backup ${chosen.id} is incremental: restoring an incremental chain from a repository is not supported yet`, {
      advice: `restore its full backup ${chain[0]!.id}, or combine the chain by hand`,
    });
  }
  if (!hasWal && chosen.wal === 'none') {
    throw new ConfigError(
      `backup ${chosen.id} holds no WAL (taken with -X none) and the repository holds no archived WAL: it cannot be restored to a consistent state`,
    );
  }
  const verify = options.verify ?? true;
  const source = await inspectStoredBackup(
    `${repository.location}/backups/${chosen.id}`,
    chosen.objects.filter((o) => o.name !== MANIFEST_OBJECT).map((o) => storedArchive(repository, chosen.id, o, verify)),
    await readManifest(repository, chosen, options.signal),
  );
  const address = restoreCommandAddress(repository, repositoryAddress);
  const result = await restoreSource(source, {
    ...restoreOptions,
    wal: hasWal
      ? { source: wal, restoreCommand: () => repositoryRestoreCommandLine(options.pgbbCommand ?? defaultPgbbCommand(), address) }
      : undefined,
    verification: verify ? 'stream' : 'none',
  });
  return { ...result, backup: chosen, chain: chain.map((r) => r.id), walArchive: hasWal };
}

/** What the chosen backup must have ended before, for the target. */
async function boundOf(repository: Repository, records: readonly BackupRecord[], o: RepositoryRestoreOptions): Promise<BackupBound> {
  const t: RecoveryTarget | undefined = o.target;
  if (t === undefined || t.kind === 'immediate') return { kind: 'latest' };
  if (t.kind === 'time') return { kind: 'time', time: t.time };
  if (t.kind === 'lsn') return { kind: 'lsn', lsn: t.lsn };
  // A restore point or a transaction is placed by the WAL: walk it from the oldest backup's start (the
  // earliest WAL any backup needs) to the record, then take the newest backup that ended before it.
  const oldest = oldestBackup(records);
  const source = repositoryWalArchive(repository);
  const probe = await probeWalArchive(source);
  const walk = await preflightRestore({
    source,
    startLsn: oldest.startLsn,
    timeline: oldest.timeline,
    // Every record after the oldest backup's start may be the target: which backup serves it is decided after.
    endLsn: oldest.startLsn,
    target: t,
    inclusive: !(o.exclusive ?? false),
    targetTimeline: o.targetTimeline ?? 'latest',
    segmentSize: probe.segmentSize,
    systemIdentifier: probe.systemIdentifier,
    major: probe.major,
    signal: o.signal,
  });
  if (!walk.resolution.reached) throw new ConfigError('the recovery target cannot be reached');
  return { kind: 'record', lsn: walk.resolution.lsn as Lsn, what: walk.resolution.detail };
}

function restoreCommandAddress(repository: Repository, given: string | undefined): string {
  // A local repository's location is its absolute path: usable from the server's working directory.
  if (repository.storage.kind === 'local') return repository.location;
  if (given === undefined || given === '') {
    throw new ConfigError(
      `restoring from ${repository.location} needs its full address for restore_command: pass repositoryAddress (what openRepository was given)`,
    );
  }
  return given;
}

async function readManifest(repository: Repository, record: BackupRecord, signal: AbortSignal | undefined): Promise<Buffer | undefined> {
  const object = record.objects.find((o) => o.name === MANIFEST_OBJECT);
  if (object === undefined) return undefined;
  const chunks: Buffer[] = [];
  const stream = await repository.openBackupObject(record.id, MANIFEST_OBJECT, signal ? { signal } : {});
  const digest = new StoredDigest(object, `${repository.location}/${backupObjectKey(record.id, object.name)}`);
  for await (const chunk of stream.pipe(digest)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One archive of a stored backup, streamed from storage (and checked against its recorded SHA-256 when `verify`). */
function storedArchive(repository: Repository, id: string, object: BackupObject, verify: boolean): StoredArchive {
  const location = `${repository.location}/${backupObjectKey(id, object.name)}`;
  return {
    name: object.name,
    size: object.size,
    location,
    async open(signal?: AbortSignal): Promise<Readable> {
      const stream = await repository.openBackupObject(id, object.name, signal ? { signal } : {});
      if (!verify) return stream;
      const checked = new StoredDigest(object, location);
      stream.once('error', (err) => checked.destroy(err));
      return stream.pipe(checked);
    },
  };
}

/**
 * Passes a stored object's bytes through and fails at their end when their size or SHA-256 is not what
 * the catalog recorded when the object was stored (damage in storage, or an object replaced).
 */
class StoredDigest extends Transform {
  readonly #hash = createHash('sha256');
  #size = 0;

  constructor(
    private readonly object: BackupObject,
    private readonly location: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256 = this.#hash.digest('hex');
    if (this.#size !== this.object.size || sha256 !== this.object.sha256) {
      done(
        new VerifyError(
          `${this.location} is not the object the backup stored: ${this.#size} bytes with SHA-256 ${sha256}, ` +
            `recorded ${this.object.size} bytes with SHA-256 ${this.object.sha256}`,
          { path: this.location },
        ),
      );
      return;
    }
    done();
  }
}
