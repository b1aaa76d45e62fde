/**
 * The checks of a verification, apart from the reading: the run's state (the manifest's entries and
 * what was seen of each), and the judgements pg_verifybackup makes on what was read — a file present
 * or not, its size, its checksum, pg_control's identifier and CRC — worded as pg_verifybackup words
 * them. No I/O here: the callers read (io.ts, checksum-io.ts, tar-archives.ts) and hand over sizes,
 * bytes and digests.
 * @module
 */
import { AbortError } from '../errors.js';
import { CHECKSUM_LENGTHS } from '../manifest/checksum.js';
import type { BackupManifest, ManifestFile } from '../manifest/types.js';
import { PG_CONTROL_FILE_SIZE, readControlFile } from './control-file.js';
import { ALWAYS_IGNORED, canonicalRelPath, isIgnored } from './sources.js';
import type { VerifyFinding, VerifyOptions } from './types.js';

/** Where pg_control is, relative to the data directory. */
export const CONTROL_FILE = 'global/pg_control';

/** A file the manifest lists, and what verification has seen of it. */
export interface Entry {
  file: ManifestFile;
  /** Found in the backup. */
  matched: boolean;
  /** Found with the wrong size: its checksum is not computed. */
  bad: boolean;
}

/** What a run knows so far; the summary is made from it. */
export interface RunState {
  readonly o: VerifyOptions;
  /** Paths left out: the options', pg_verifybackup's fixed ones, and those that could not be read. */
  readonly ignore: string[];
  manifest: BackupManifest | undefined;
  entries: Map<string, Entry>;
  format: 'plain' | 'tar';
  filesChecksummed: number;
  bytesRead: number;
  totalBytes: number;
  walRanges: number;
  walRecords: number;
  /** System identifier from pg_control, for the WAL long headers. */
  controlSysid: bigint | undefined;
}

/** A fresh state for a run with these options. */
export function newRunState(options: VerifyOptions): RunState {
  return {
    o: options,
    ignore: [...ALWAYS_IGNORED, ...(options.ignore ?? []).map(canonicalRelPath)],
    manifest: undefined,
    entries: new Map(),
    format: options.format ?? 'plain',
    filesChecksummed: 0,
    bytesRead: 0,
    totalBytes: 0,
    walRanges: 0,
    walRecords: 0,
    controlSysid: undefined,
  };
}

/** Records the parsed manifest: every file it lists becomes an unseen entry. */
export function setManifest(s: RunState, manifest: BackupManifest): void {
  s.manifest = manifest;
  for (const [path, file] of manifest.files) s.entries.set(path, { file, matched: false, bad: false });
}

/** An error's message, for a finding's detail. */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Throws the AbortError once `signal` has fired. */
export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('verification was aborted', { cause: signal.reason });
}

/**
 * A regular file of a plain backup, `size` bytes on disk: is it in the manifest, with that size?
 * Returns the finding, if any, and the entry when there is one.
 */
export function checkPlainFile(s: RunState, rel: string, size: number): { finding?: VerifyFinding; entry?: Entry } {
  const e = s.entries.get(rel);
  if (!e) return { finding: { kind: 'extra-file', path: rel, message: `"${rel}" is present on disk but not in the manifest` } };
  e.matched = true;
  let finding: VerifyFinding | undefined;
  if (e.file.size !== size) {
    finding = { kind: 'size-mismatch', path: rel, message: `"${rel}" has size ${size} on disk but size ${e.file.size} in the manifest` };
    e.bad = true;
  }
  if (!s.o.skipChecksums && shouldChecksum(e)) s.totalBytes += e.file.size;
  return finding ? { finding, entry: e } : { entry: e };
}

/** pg_control's bytes (its first {@link PG_CONTROL_FILE_SIZE}), judged as pg_verifybackup judges them. */
export function* checkControlBytes(s: RunState, bytes: Buffer, label: string, size: number): Generator<VerifyFinding, void> {
  const info = readControlFile(bytes);
  if (info) s.controlSysid = info.systemIdentifier;
  const m = s.manifest!;
  // Like pg_verifybackup, the control file is judged only for version 2 manifests (the ones with an identifier).
  if (m.version === 1 || m.systemIdentifier === undefined) return;
  if (size !== PG_CONTROL_FILE_SIZE || !info) {
    yield {
      kind: 'control-file-invalid',
      path: CONTROL_FILE,
      message: `unexpected control file size ${size}, expected ${PG_CONTROL_FILE_SIZE}`,
    };
    return;
  }
  if (!info.crcOk) {
    yield { kind: 'control-file-invalid', path: CONTROL_FILE, message: `${label}: CRC is incorrect` };
    return;
  }
  if (info.systemIdentifier !== m.systemIdentifier) {
    yield {
      kind: 'system-identifier-mismatch',
      path: CONTROL_FILE,
      message: `${label}: manifest system identifier is ${m.systemIdentifier}, but control file has ${info.systemIdentifier}`,
    };
  }
}

/** Found with the listed size, and listed with a checksum. */
export function shouldChecksum(e: Entry): boolean {
  return e.matched && !e.bad && e.file.checksumAlgorithm !== 'NONE';
}

/** Every listed file not found (nor ignored). */
export function* reportMissing(s: RunState): Generator<VerifyFinding, void> {
  for (const [path, e] of s.entries) {
    if (!e.matched && !isIgnored(path, s.ignore)) {
      yield { kind: 'missing-file', path, message: `"${path}" is present in the manifest but not on disk` };
    }
  }
}

/** Compare a computed digest with the manifest's, as pg_verifybackup words the outcome. */
export function compareChecksum(e: Entry, digest: Buffer, where: string, archive?: string): VerifyFinding | undefined {
  const expected = Buffer.from(e.file.checksum, 'hex');
  const path = e.file.path;
  const base = archive === undefined ? {} : { archive };
  if (expected.length !== digest.length) {
    return {
      kind: 'checksum-mismatch',
      path,
      ...base,
      message: `file "${path}"${where} has checksum of length ${expected.length}, but expected ${CHECKSUM_LENGTHS[e.file.checksumAlgorithm]}`,
    };
  }
  if (!expected.equals(digest))
    return { kind: 'checksum-mismatch', path, ...base, message: `checksum mismatch for file "${path}"${where}` };
  return undefined;
}

/**
 * A plain-backup file read to its end: `read` bytes, whose digest `digest` computes. A size that
 * changed since the directory was listed is a mismatch; otherwise the checksums are compared.
 */
export function checkReadFile(s: RunState, e: Entry, read: number, digest: () => Buffer): VerifyFinding | undefined {
  const path = e.file.path;
  if (read !== e.file.size) {
    return { kind: 'size-mismatch', path, message: `file "${path}" should contain ${e.file.size} bytes, but read ${read}` };
  }
  s.filesChecksummed++;
  return compareChecksum(e, digest(), '');
}
