/**
 * `verifyBackup`: what pg_verifybackup does, for plain and tar-format backups of PostgreSQL 13–18, and
 * for single-tar backups (the stream `-D - -Ft` writes, its manifest the archive's last member).
 * It parses the manifest (checking its checksum), checks that every listed file is present with the
 * listed size and no unlisted file is there, checks pg_control's system identifier (version 2
 * manifests), recomputes every file checksum (streaming, a few files at a time), and checks the WAL
 * the backup needs, page by page and record by record. Problems are yielded as findings while the
 * work goes on; failures to run at all (no manifest file, no backup directory) throw.
 *
 * This file runs the phases in order; the checks are in checks.ts, plain.ts and tar-archives.ts, the
 * file-system access in io.ts, sources-io.ts and checksum-io.ts.
 * @module
 */
import { basename, join } from 'node:path';
import { ManifestError, VerifyError } from '../errors.js';
import { parseManifest } from '../manifest/parse.js';
import { newRunState, reportMissing, setManifest, type RunState } from './checks.js';
import { plainChecksums } from './checksum-io.js';
import { backupPathKind, checkBackupDirectory, detectFormat, listBackupDirectory, readHead, readManifestFile, walSourceFor } from './io.js';
import { walkPlain } from './plain.js';
import {
  archiveWalSource,
  compressionOfMagic,
  compressionOfName,
  MAX_MANIFEST_MEMBER_BYTES,
  readManifestMember,
  type WalSource,
} from './sources.js';
import { defaultArchiveOpener } from './sources-io.js';
import { findManifestInTarFile } from './sources-io.js';
import { checkArchives, classifyBackupFiles } from './tar-archives.js';
import type { ArchiveRef, VerifyFinding, VerifyOptions, VerifyRun, VerifySummary } from './types.js';
import { checkWalRanges } from './wal.js';

/**
 * Verify a backup against its manifest. Iterate the result for findings; its `summary` is set at the end.
 * @example
 * ```ts
 * const run = verifyBackup({ backupDir: '/backups/2024-05-01' }); // or a single tar: '/backups/full.tar.zst'
 * for await (const f of run) console.error(`${f.kind}: ${f.message}`);
 * if (!run.summary?.ok) process.exitCode = 1;
 * ```
 */
export function verifyBackup(options: VerifyOptions): VerifyRun {
  const state = newRunState(options);
  return runWithSummary(state, run(state));
}

/**
 * A run over `state`: yields what `inner` finds (stopping at the first with `exitOnError`) and sets the
 * summary when it ends. Shared by the directory and the stored-backup verifications.
 */
export function runWithSummary(state: RunState, inner: AsyncGenerator<VerifyFinding, void>): VerifyRun {
  const options = state.o;
  const started = Date.now();
  let summary: VerifySummary | undefined;
  let findings = 0;
  let stoppedEarly = false;

  async function* outer(): AsyncGenerator<VerifyFinding, void> {
    try {
      for await (const f of inner) {
        findings++;
        yield f;
        if (options.exitOnError) {
          stoppedEarly = true;
          break;
        }
      }
    } finally {
      summary = {
        ok: findings === 0,
        findings,
        stoppedEarly,
        format: state.format,
        manifestFiles: state.manifest?.files.size ?? 0,
        filesChecksummed: state.filesChecksummed,
        bytesRead: state.bytesRead,
        walRanges: state.walRanges,
        walRecords: state.walRecords,
        elapsedMs: Date.now() - started,
      };
      if (state.manifest) summary.manifestVersion = state.manifest.version;
    }
  }
  const gen = outer();
  // defineProperties, not Object.assign: assign would read the getters once, now.
  return Object.defineProperties(gen, {
    summary: { get: () => summary, enumerable: true },
    manifest: { get: () => state.manifest, enumerable: true },
  }) as unknown as VerifyRun;
}

/**
 * Verify and collect everything: the findings and the summary.
 * @example
 * ```ts
 * const { summary, findings } = await verifyBackupAll({ backupDir: 'backup', skipChecksums: true });
 * ```
 */
export async function verifyBackupAll(options: VerifyOptions): Promise<{ summary: VerifySummary; findings: VerifyFinding[] }> {
  const run = verifyBackup(options);
  const findings: VerifyFinding[] = [];
  for await (const f of run) findings.push(f);
  return { summary: run.summary!, findings };
}

async function* run(s: RunState): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  if ((await backupPathKind(o.backupDir)) === 'file') {
    yield* runSingleTar(s);
    return;
  }
  const manifestPath = o.manifestPath ?? join(o.backupDir, 'backup_manifest');
  if (!(yield* loadManifest(s, await readManifestFile(manifestPath), manifestPath))) return;
  await checkBackupDirectory(o.backupDir);
  if (o.format === undefined) s.format = await detectFormat(o.backupDir);

  let walSource: WalSource | undefined;
  let walDirForDump: string | undefined;
  if (s.format === 'plain') {
    yield* walkPlain(s);
    yield* reportMissing(s);
    if (!o.skipChecksums) yield* plainChecksums(s);
    if (!o.noWal) {
      walDirForDump = o.walDir ?? join(o.backupDir, 'pg_wal');
      walSource = await walSourceFor(walDirForDump, o);
    }
  } else {
    const { archives, base, wal } = yield* classifyBackupFiles(await listBackupDirectory(o.backupDir, s.ignore));
    yield* checkArchives(s, archives);
    yield* reportMissing(s);
    if (!o.noWal) {
      const open = o.openArchive ?? defaultArchiveOpener;
      if (o.walDir !== undefined) {
        walSource = await walSourceFor(o.walDir, o);
        if (walSource.description.startsWith('directory')) walDirForDump = o.walDir;
      } else if (wal) walSource = archiveWalSource(wal, open);
      else if (base) walSource = archiveWalSource(base, open, 'pg_wal/');
      else {
        yield {
          kind: 'wal-missing',
          path: o.backupDir,
          message: 'WAL archive not found',
          detail: 'give the WAL location with walDir (-w), or skip WAL checks with noWal (-n)',
        };
      }
    }
  }
  if (walSource) yield* checkWal(s, walSource, walDirForDump);
}

/**
 * Parses the manifest into the run's state; a damaged one is reported as a finding, and then nothing
 * else is checked. Returns whether the run goes on.
 */
export function* loadManifest(s: RunState, bytes: Buffer, path: string, archive?: string): Generator<VerifyFinding, boolean> {
  try {
    setManifest(s, parseManifest(bytes));
    return true;
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    const mismatch = /manifest checksum mismatch/.test(err.message);
    yield {
      kind: mismatch ? 'manifest-checksum-mismatch' : 'manifest-invalid',
      path,
      message: err.message,
      ...(archive !== undefined ? { archive } : {}),
    };
    return false;
  }
}

/**
 * A single tar archive holding the whole backup (what `pgbb backup -D - -Ft` and `pg_basebackup -D -
 * -Ft` write, compressed or not): the manifest is its `backup_manifest` member unless `manifestPath`
 * names another file, the WAL (with `-X fetch`) its `pg_wal/` members unless `walDir` says otherwise.
 */
async function* runSingleTar(s: RunState): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  if (o.format === 'plain') throw new VerifyError(`"${o.backupDir}" is not a directory`, { path: o.backupDir });
  s.format = 'tar';
  const name = basename(o.backupDir);
  const compression = compressionOfName(name) ?? compressionOfMagic(await readHead(o.backupDir, 4));
  const ref: ArchiveRef = { name, path: o.backupDir, compression };
  const open = o.openArchive ?? defaultArchiveOpener;
  if (o.manifestPath !== undefined) {
    if (!(yield* loadManifest(s, await readManifestFile(o.manifestPath), o.manifestPath))) return;
  } else {
    // Uncompressed and read by the default opener: the headers lead to the member without reading the
    // archive through. Otherwise, or when that walk gives up, the archive is read as a stream.
    const direct =
      compression === 'none' && o.openArchive === undefined
        ? await findManifestInTarFile(o.backupDir, MAX_MANIFEST_MEMBER_BYTES).catch(() => undefined)
        : undefined;
    const bytes = direct ?? (await readManifestMember(ref, open));
    if (!(yield* loadManifest(s, bytes, 'backup_manifest', name))) return;
  }
  yield* checkArchives(s, [{ ref, oid: 0 }]);
  yield* reportMissing(s);
  if (o.noWal) return;
  if (o.walDir === undefined) {
    yield* checkWal(s, archiveWalSource(ref, open, 'pg_wal/'), undefined);
    return;
  }
  const walSource = await walSourceFor(o.walDir, o);
  yield* checkWal(s, walSource, walSource.description.startsWith('directory') ? o.walDir : undefined);
}

/** Checks the manifest's WAL ranges in `walSource`, then closes it. */
export async function* checkWal(s: RunState, walSource: WalSource, walDirForDump: string | undefined): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  const manifest = s.manifest!;
  try {
    let walDone = 0;
    const gen = checkWalRanges(manifest.walRanges, walSource, {
      systemIdentifier: s.controlSysid ?? manifest.systemIdentifier,
      signal: o.signal,
      onBytes: (n) => {
        walDone += n;
        o.onProgress?.({ phase: 'wal', doneBytes: walDone, totalBytes: 0 });
      },
      pgWaldump:
        o.pgWaldumpPath !== undefined && walDirForDump !== undefined ? { path: o.pgWaldumpPath, walDir: walDirForDump } : undefined,
    });
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        s.walRanges = r.value.ranges;
        s.walRecords = r.value.records;
        break;
      }
      yield r.value;
    }
  } finally {
    await walSource.close();
  }
}
