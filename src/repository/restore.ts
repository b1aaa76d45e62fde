/**
 * A restore from a repository, as one call: choose the newest backup that ended before the recovery
 * target (for a restore point or a transaction, found by walking the repository's archived WAL), walk
 * the WAL from that backup to the target (the pre-flight, before any file is written), stream the
 * backup's archives from storage straight into the data directory (from object storage, several ranged
 * GETs in flight: ranged-read.ts) while checking every member against
 * the stored manifest, and set `restore_command` to `pgbb restore-wal --repo`. An incremental backup's
 * chain is combined in place while it streams: the full backup first, then each incremental applied
 * over it (recovery/chain-apply.ts), with no copy of the chain on local disk. Everything written is
 * taken back on failure or abort.
 * @module
 */
import type { Readable, TransformCallback } from 'node:stream';
import { AbortError, ConfigError, VerifyError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { firstArchivedSegment, probeWalArchive } from '../recovery/archive-probe.js';
import { inspectStoredBackup, type BackupSource, type StoredArchive } from '../recovery/backup-source.js';
import { preflightRestore } from '../recovery/preflight.js';
import { repositoryRestoreCommandLine } from '../recovery/recovery-settings.js';
import { defaultPgbbCommand, restoreSource, type RestoreOptions, type RestoreResult } from '../recovery/restore.js';
import { DigestingStream } from '../storage/body.js';
import type { RecoveryTarget } from '../recovery/wal-targets.js';
import { MANIFEST_OBJECT } from './backup-sink.js';
import { RANGED_READ_PART_BYTES, rangedRead } from './ranged-read.js';
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
  try {
    return await restoreFrom(repository, options);
  } catch (err) {
    // An abort surfaces from wherever it happened (a storage call, a stream, throwIfAborted).
    if (options.signal?.aborted && !(err instanceof AbortError)) {
      throw new AbortError('the restore was aborted; nothing it wrote was left behind', { cause: err });
    }
    throw err;
  }
}

async function restoreFrom(repository: Repository, options: RepositoryRestoreOptions): Promise<RepositoryRestoreResult> {
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
  if (!hasWal && chosen.wal === 'none') {
    throw new ConfigError(
      `backup ${chosen.id} holds no WAL (taken with -X none) and the repository holds no archived WAL: it cannot be restored to a consistent state`,
    );
  }
  const verify = options.verify ?? true;
  const address = restoreCommandAddress(repository, repositoryAddress);
  const pgbb = options.pgbbCommand;
  const walOption = hasWal
    ? { source: wal, restoreCommand: () => repositoryRestoreCommandLine(pgbb ?? defaultPgbbCommand(), address) }
    : undefined;
  const stored = await storedSource(repository, chosen, verify, options.signal);
  // An incremental backup: its chain is combined in place while it streams into the data directory.
  const older: BackupSource[] = [];
  for (const record of chain.slice(0, -1)) older.push(await storedSource(repository, record, verify, options.signal));
  const result = await restoreSource(stored, {
    ...restoreOptions,
    wal: walOption,
    verification: verify ? 'stream' : 'none',
    chain: older,
  });
  return { ...result, backup: chosen, chain: chain.map((r) => r.id), walArchive: hasWal };
}

/** A stored backup as a restore sees it (incremental ones included). */
async function storedSource(
  repository: Repository,
  record: BackupRecord,
  verify: boolean,
  signal: AbortSignal | undefined,
): Promise<BackupSource> {
  const manifest = await readManifest(repository, record, signal);
  return inspectStoredBackup(
    `${repository.location}/backups/${record.id}`,
    record.objects.filter((o) => o.name !== MANIFEST_OBJECT).map((o) => storedArchive(repository, record.id, o, verify)),
    manifest,
    { allowIncremental: true },
  );
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
      // Object storage: several ranged GETs in flight; a local file is read at disk speed as it is.
      const stream =
        repository.storage.kind !== 'local' && object.size > RANGED_READ_PART_BYTES
          ? rangedRead(repository.storage, backupObjectKey(id, object.name), object.size, { signal })
          : await repository.openBackupObject(id, object.name, signal ? { signal } : {});
      if (!verify) return stream;
      const checked = new StoredDigest(object, location);
      stream.once('error', (err) => checked.destroy(err));
      // A reader that stops early (the head of base.tar, for its label) destroys the digest: the
      // stored stream under it is let go too, not left to the garbage collector with its file open.
      checked.once('close', () => stream.destroy());
      return stream.pipe(checked);
    },
  };
}

/**
 * Passes a stored object's bytes through and fails at their end when their size or SHA-256 is not what
 * the catalog recorded when the object was stored (damage in storage, or an object replaced).
 */
class StoredDigest extends DigestingStream {
  constructor(
    private readonly object: BackupObject,
    private readonly location: string,
  ) {
    super();
  }

  override _flush(done: TransformCallback): void {
    super._flush((err) => {
      if (err) return done(err);
      if (this.bytes === this.object.size && this.sha256 === this.object.sha256) return done();
      done(
        new VerifyError(
          `${this.location} is not the object the backup stored: ${this.bytes} bytes with SHA-256 ${this.sha256}, ` +
            `recorded ${this.object.size} bytes with SHA-256 ${this.object.sha256}`,
          { path: this.location },
        ),
      );
    });
  }
}
