/**
 * `verify --repo`: checks the stored backups in place, streaming their objects (never staged on disk),
 * and the WAL archive's continuity. For each backup: every object its record lists is there with the
 * recorded size and SHA-256; its `backup_manifest` is checked against the tar contents and its WAL
 * ranges as `verifyBackup` checks a tar-format directory (the WAL from `pg_wal.tar`, from `pg_wal/` in
 * `base.tar`, or, for a backup taken without WAL, from the repository's archive); an incremental
 * backup's parent is in the catalog. Then the archive is continuous from the oldest verified backup's
 * start segment to the newest segment of each timeline.
 * @module
 */
import { StorageError } from '../errors.js';
import { segmentNumber } from '../wal-segments.js';
import { verifyStoredBackup } from '../verify/stored.js';
import type { VerifyFinding, VerifyFindingKind } from '../verify/types.js';
import { MANIFEST_OBJECT } from './backup-sink.js';
import { backupObjectKey } from './layout.js';
import type { BackupRecord } from './record.js';
import type { Repository } from './repository.js';
import { backupObjectReader, repositoryWalSource, type ObjectDigest } from './stored-reads.js';
import { walHoles } from './wal-continuity.js';
import { walArchiveExtent, type ParsedWalKey, type WalTimelineExtent } from './wal-keys.js';
import { listWalKeys } from './wal-listing.js';

/** What a {@link RepositoryFinding} reports: a finding of the backup's manifest checks, or one about the stored objects or the WAL archive. */
export type RepositoryFindingKind =
  | VerifyFindingKind
  /** An object the backup's record lists is not stored. */
  | 'object-missing'
  /** A stored object's size or SHA-256 differs from its record's. */
  | 'object-mismatch'
  /** The WAL archive lacks segments between the oldest backup's start and the newest segment. */
  | 'wal-gap'
  /** An incremental backup's parent is not in the catalog: the backup cannot be restored. */
  | 'parent-missing';

/** One problem found in the repository. */
export interface RepositoryFinding {
  kind: RepositoryFindingKind;
  /** The backup it is about; `null` for the WAL archive. */
  backup: string | null;
  /** The object, archive member, or segment at fault. */
  path: string;
  message: string;
  detail?: string | undefined;
}

/** Options of {@link verifyRepository}. */
export interface RepositoryVerifyOptions {
  /** Verify only this backup (and the WAL archive from its start). @default every backup */
  id?: string | undefined;
  /** Check presence and sizes only: no object SHA-256, no manifest checksums. @default false */
  skipChecksums?: boolean | undefined;
  /** Do not check the backups' WAL ranges nor the WAL archive's continuity. @default false */
  noWal?: boolean | undefined;
  /** Called with each finding as it is made. */
  onFinding?: ((finding: RepositoryFinding) => void) | undefined;
  /** Cancels verification (rejects with an AbortError). */
  signal?: AbortSignal | undefined;
}

/** What {@link verifyRepository} found. */
export interface RepositoryVerifyResult {
  /** True when nothing was found. */
  ok: boolean;
  /** Each backup verified, oldest first, with the number of its findings. */
  backups: { id: string; findings: number }[];
  /** The WAL archive per timeline (empty without an archive or a recorded segment size). */
  walArchive: WalTimelineExtent[];
  findings: RepositoryFinding[];
}

function fromVerify(id: string, f: VerifyFinding): RepositoryFinding {
  return {
    kind: f.kind,
    backup: id,
    path: f.archive !== undefined && f.archive !== f.path ? `${f.archive}: ${f.path}` : f.path,
    message: f.message,
    detail: f.detail,
  };
}

function compareObject(
  id: string,
  object: BackupRecord['objects'][number],
  seen: ObjectDigest,
  sizesOnly: boolean,
): RepositoryFinding | undefined {
  if (seen.size !== object.size) {
    return {
      kind: 'object-mismatch',
      backup: id,
      path: object.name,
      message: `backup ${id}: object "${object.name}" has ${seen.size} bytes stored, but ${object.size} in its record`,
    };
  }
  if (!sizesOnly && seen.sha256 !== object.sha256) {
    return {
      kind: 'object-mismatch',
      backup: id,
      path: object.name,
      message: `backup ${id}: object "${object.name}" has SHA-256 ${seen.sha256}, but ${object.sha256} in its record`,
    };
  }
  return undefined;
}

async function* verifyOne(
  repository: Repository,
  record: BackupRecord,
  walKeys: readonly ParsedWalKey[],
  segmentSize: number | undefined,
  o: RepositoryVerifyOptions,
): AsyncGenerator<RepositoryFinding> {
  const id = record.id;
  const call = o.signal ? { signal: o.signal } : {};
  const reader = backupObjectReader(repository, id, call);
  const missing = new Set<string>();
  // A missing object is named once, here; the checks that needed it then say what it lacked.
  for (const object of record.objects) {
    if ((await repository.storage.stat(backupObjectKey(id, object.name), call)) === undefined) {
      missing.add(object.name);
      yield { kind: 'object-missing', backup: id, path: object.name, message: `backup ${id}: object "${object.name}" is not stored` };
    }
  }
  const manifestObject = record.objects.find((object) => object.name === MANIFEST_OBJECT);
  if (manifestObject && !missing.has(MANIFEST_OBJECT)) {
    const chunks: Buffer[] = [];
    for await (const chunk of reader.open({ name: MANIFEST_OBJECT, path: MANIFEST_OBJECT, compression: 'none' }) ?? [])
      chunks.push(Buffer.from(chunk));
    const run = verifyStoredBackup({
      name: id,
      manifest: Buffer.concat(chunks),
      archives: record.objects.map((object) => object.name).filter((name) => name !== MANIFEST_OBJECT && !missing.has(name)),
      openArchive: reader.open,
      skipChecksums: o.skipChecksums ?? false,
      noWal: o.noWal ?? false,
      ...(record.wal === 'none' && segmentSize !== undefined
        ? { walSource: repositoryWalSource(repository, walKeys, segmentSize, call) }
        : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    for await (const f of run) yield fromVerify(id, f);
  }
  for (const object of record.objects) {
    if (missing.has(object.name)) continue;
    const seen = reader.digests.get(object.name) ?? (await reader.read(object.name));
    const problem = compareObject(id, object, seen, o.skipChecksums ?? false);
    if (problem) yield problem;
  }
}

/**
 * Verify the backups of `repository` (or one, `id`) and its WAL archive in place (see the module
 * documentation). Resolves with every finding; `ok` is false when there is any. Throws
 * `RepositoryError` when `id` names no backup, `StorageError` when the storage cannot be listed.
 *
 * @example
 * ```ts
 * import { openRepository, verifyRepository } from 'pg-basebackup/repository';
 *
 * await using repo = await openRepository('/backups/db1');
 * const result = await verifyRepository(repo, { onFinding: (f) => console.error(f.message) });
 * if (!result.ok) process.exitCode = 1;
 * ```
 */
export async function verifyRepository(repository: Repository, options: RepositoryVerifyOptions = {}): Promise<RepositoryVerifyResult> {
  const call = options.signal ? { signal: options.signal } : {};
  const catalog = await repository.listBackups(call);
  const records = options.id === undefined ? catalog : [await repository.getBackup(options.id, call)];
  const ids = new Set(catalog.map((r) => r.id));
  const segmentSize = (await repository.info(call))?.cluster.walSegmentSize;
  const walKeys = await listWalKeys(repository.storage, call);
  const findings: RepositoryFinding[] = [];
  const report = (f: RepositoryFinding): void => {
    findings.push(f);
    options.onFinding?.(f);
  };
  const backups: RepositoryVerifyResult['backups'] = [];
  for (const record of records) {
    let count = 0;
    if (record.parent !== null && !ids.has(record.parent)) {
      count++;
      report({
        kind: 'parent-missing',
        backup: record.id,
        path: record.parent,
        message: `backup ${record.id} is incremental, and its parent ${record.parent} is not in the catalog: it cannot be restored`,
      });
    }
    try {
      for await (const f of verifyOne(repository, record, walKeys, segmentSize, options)) {
        count++;
        report(f);
      }
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      count++;
      report({ kind: 'unreadable', backup: record.id, path: err.key ?? record.id, message: `backup ${record.id}: ${err.message}` });
    }
    backups.push({ id: record.id, findings: count });
  }
  const oldest = records[0];
  if (!options.noWal && segmentSize !== undefined) {
    const from = oldest ? { timeline: oldest.timeline, segno: segmentNumber(oldest.startLsn, segmentSize) } : undefined;
    for (const hole of walHoles(walKeys, segmentSize, from)) {
      const what = hole.kind === 'start' ? `from the start of backup ${oldest?.id}` : 'between stored segments';
      report({
        kind: 'wal-gap',
        backup: null,
        path: hole.first === hole.last ? hole.first : `${hole.first}..${hole.last}`,
        message:
          hole.first === hole.last
            ? `the WAL archive lacks segment ${hole.first} (timeline ${hole.timeline}, ${what})`
            : `the WAL archive lacks segments ${hole.first} to ${hole.last} (timeline ${hole.timeline}, ${what})`,
      });
    }
  }
  return {
    ok: findings.length === 0,
    backups,
    walArchive: segmentSize === undefined ? [] : walArchiveExtent(walKeys, segmentSize),
    findings,
  };
}
