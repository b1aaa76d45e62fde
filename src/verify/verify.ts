/**
 * `verifyBackup`: what pg_verifybackup does, for plain and tar-format backups of PostgreSQL 13–18.
 * It parses the manifest (checking its checksum), checks that every listed file is present with the
 * listed size and no unlisted file is there, checks pg_control's system identifier (version 2
 * manifests), recomputes every file checksum (streaming, a few files at a time), and checks the WAL
 * the backup needs, page by page and record by record. Problems are yielded as findings while the
 * work goes on; failures to run at all (no manifest file, no backup directory) throw.
 * @module
 */
import type { Dirent, Stats } from 'node:fs';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { AbortError, ManifestError, VerifyError } from '../errors.js';
import { CHECKSUM_LENGTHS, createChecksum } from '../manifest/checksum.js';
import { crc32cImplementation } from '../manifest/crc32c.js';
import { parseManifest } from '../manifest/parse.js';
import type { BackupManifest, ManifestFile } from '../manifest/types.js';
import { extractTar } from '../tar/extract.js';
import { ChecksumThread } from './checksum-pool.js';
import { PG_CONTROL_FILE_SIZE, readControlFile } from './control-file.js';
import {
  ALWAYS_IGNORED, archiveWalSource, canonicalRelPath, classifyArchive, defaultArchiveOpener, directoryWalSource,
  isIgnored, type WalSource,
} from './sources.js';
import type { ArchiveRef, VerifyFinding, VerifyOptions, VerifyRun, VerifySummary } from './types.js';
import { checkWalRanges } from './wal.js';

const CONTROL_FILE = 'global/pg_control';
/** Files up to this size are read synchronously, in one read (most of a data directory). */
const SMALL_FILE = 256 * 1024;
/** Read size for larger files. */
const READ_CHUNK = 1024 * 1024;
/** Large files checksummed at once by default, each with a read in flight (measured on 2 cores: 1 lane 4% slower, 4 no faster). */
const LARGE_LANES = 2;
/** About this many bytes of small files are read synchronously between turns of the event loop. */
const SYNC_SLICE_BYTES = 4 * 1024 * 1024;

interface Entry {
  file: ManifestFile;
  matched: boolean;
  bad: boolean;
}

interface RunState {
  readonly o: VerifyOptions;
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

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('verification was aborted', { cause: signal.reason });
}

/**
 * Verify a backup against its manifest. Iterate the result for findings; its `summary` is set at the end.
 * @example
 * ```ts
 * const run = verifyBackup({ backupDir: '/backups/2024-05-01' });
 * for await (const f of run) console.error(`${f.kind}: ${f.message}`);
 * if (!run.summary?.ok) process.exitCode = 1;
 * ```
 */
export function verifyBackup(options: VerifyOptions): VerifyRun {
  const state: RunState = {
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
  const started = Date.now();
  let summary: VerifySummary | undefined;
  let findings = 0;
  let stoppedEarly = false;

  async function* outer(): AsyncGenerator<VerifyFinding, void> {
    const inner = run(state);
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
        ok: findings === 0, findings, stoppedEarly, format: state.format,
        manifestFiles: state.manifest?.files.size ?? 0, filesChecksummed: state.filesChecksummed,
        bytesRead: state.bytesRead, walRanges: state.walRanges, walRecords: state.walRecords,
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
  const manifestPath = o.manifestPath ?? join(o.backupDir, 'backup_manifest');
  let bytes: Buffer;
  try {
    bytes = await readFile(manifestPath);
  } catch (err) {
    throw new VerifyError(`could not open file "${manifestPath}": ${errText(err)}`, { cause: err, path: manifestPath });
  }
  try {
    s.manifest = parseManifest(bytes);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    const mismatch = /manifest checksum mismatch/.test(err.message);
    yield { kind: mismatch ? 'manifest-checksum-mismatch' : 'manifest-invalid', path: manifestPath, message: err.message };
    return;
  }
  for (const [path, file] of s.manifest.files) s.entries.set(path, { file, matched: false, bad: false });

  let dirStat: Stats;
  try {
    dirStat = await stat(o.backupDir);
  } catch (err) {
    throw new VerifyError(`could not open directory "${o.backupDir}": ${errText(err)}`, { cause: err, path: o.backupDir });
  }
  if (!dirStat.isDirectory()) throw new VerifyError(`"${o.backupDir}" is not a directory`, { path: o.backupDir });
  if (o.format === undefined) s.format = await detectFormat(o.backupDir);

  let walSource: WalSource | undefined;
  let walDirForDump: string | undefined;
  if (s.format === 'plain') {
    yield* walkPlain(s, undefined, o.backupDir);
    yield* reportMissing(s);
    if (!o.skipChecksums) yield* plainChecksums(s);
    if (!o.noWal) {
      walDirForDump = o.walDir ?? join(o.backupDir, 'pg_wal');
      walSource = await walSourceFor(walDirForDump, o);
    }
  } else {
    const { base, wal } = yield* verifyTar(s);
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
          kind: 'wal-missing', path: o.backupDir, message: 'WAL archive not found',
          detail: 'give the WAL location with walDir (-w), or skip WAL checks with noWal (-n)',
        };
      }
    }
  }
  if (walSource) {
    try {
      let walDone = 0;
      const gen = checkWalRanges(s.manifest.walRanges, walSource, {
        systemIdentifier: s.controlSysid ?? s.manifest.systemIdentifier,
        signal: o.signal,
        onBytes: (n) => {
          walDone += n;
          o.onProgress?.({ phase: 'wal', doneBytes: walDone, totalBytes: 0 });
        },
        pgWaldump: o.pgWaldumpPath !== undefined && walDirForDump !== undefined ? { path: o.pgWaldumpPath, walDir: walDirForDump } : undefined,
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
}

/**
 * pg_verifybackup takes a directory without PG_VERSION for a tar backup. A plain backup that merely lost
 * PG_VERSION would then be misread, so without PG_VERSION a base archive decides, then a global/ directory.
 */
async function detectFormat(dir: string): Promise<'plain' | 'tar'> {
  const isDir = async (p: string) => {
    try {
      return (await stat(p)).isDirectory();
    } catch {
      return false;
    }
  };
  try {
    await stat(join(dir, 'PG_VERSION'));
    return 'plain';
  } catch {
    // fall through
  }
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // reported later
  }
  if (names.some((n) => classifyArchive(n).kind === 'base')) return 'tar';
  return (await isDir(join(dir, 'global'))) ? 'plain' : 'tar';
}

async function walSourceFor(path: string, o: VerifyOptions): Promise<WalSource> {
  let st: Stats | undefined;
  try {
    st = await stat(path);
  } catch {
    st = undefined;
  }
  if (st?.isFile()) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const kind = classifyArchive(name);
    const compression = kind.kind === 'unexpected' ? 'none' : kind.compression;
    return archiveWalSource({ name, path, compression }, o.openArchive ?? defaultArchiveOpener);
  }
  return directoryWalSource(path);
}

async function* walkPlain(s: RunState, rel: string | undefined, full: string): AsyncGenerator<VerifyFinding, void> {
  checkAbort(s.o.signal);
  let dirents: Dirent[];
  try {
    dirents = await readdir(full, { withFileTypes: true });
  } catch (err) {
    yield { kind: 'unreadable', path: rel ?? '.', message: `could not open directory "${full}"`, detail: errText(err) };
    if (rel !== undefined) s.ignore.push(rel);
    return;
  }
  for (const d of dirents) {
    const name = d.name;
    const childRel = rel === undefined ? name : `${rel}/${name}`;
    if (isIgnored(childRel, s.ignore)) continue;
    const childFull = join(full, name);
    if (d.isDirectory()) {
      yield* walkPlain(s, childRel, childFull);
      continue;
    }
    // stat, not lstat: pg_tblspc/<oid> links are followed, as pg_verifybackup does. Synchronous, as
    // pg_verifybackup's: a thread-pool round trip per file cost 4x the stat itself (20 ms for 1,000 files).
    let st: Stats;
    try {
      st = statSync(childFull);
    } catch (err) {
      yield { kind: 'unreadable', path: childRel, message: `could not stat file or directory "${childRel}"`, detail: errText(err) };
      s.ignore.push(childRel);
      continue;
    }
    if (st.isDirectory()) {
      yield* walkPlain(s, childRel, childFull);
      continue;
    }
    if (!st.isFile()) {
      yield { kind: 'extra-file', path: childRel, message: `"${childRel}" is not a regular file or directory` };
      continue;
    }
    const e = s.entries.get(childRel);
    if (!e) {
      yield { kind: 'extra-file', path: childRel, message: `"${childRel}" is present on disk but not in the manifest` };
      continue;
    }
    e.matched = true;
    if (e.file.size !== st.size) {
      yield {
        kind: 'size-mismatch', path: childRel,
        message: `"${childRel}" has size ${st.size} on disk but size ${e.file.size} in the manifest`,
      };
      e.bad = true;
    }
    if (childRel === CONTROL_FILE) {
      let head: Buffer | undefined;
      try {
        head = await readHead(childFull, PG_CONTROL_FILE_SIZE);
      } catch (err) {
        yield { kind: 'unreadable', path: childRel, message: `could not read file "${childRel}"`, detail: errText(err) };
      }
      if (head) yield* checkControlBytes(s, head, CONTROL_FILE, st.size);
    }
    if (!s.o.skipChecksums && shouldChecksum(e)) s.totalBytes += e.file.size;
  }
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function* checkControlBytes(s: RunState, bytes: Buffer, label: string, size: number): Generator<VerifyFinding, void> {
  const info = readControlFile(bytes);
  if (info) s.controlSysid = info.systemIdentifier;
  const m = s.manifest!;
  // Like pg_verifybackup, the control file is judged only for version 2 manifests (the ones with an identifier).
  if (m.version === 1 || m.systemIdentifier === undefined) return;
  if (size !== PG_CONTROL_FILE_SIZE || !info) {
    yield { kind: 'control-file-invalid', path: CONTROL_FILE, message: `unexpected control file size ${size}, expected ${PG_CONTROL_FILE_SIZE}` };
    return;
  }
  if (!info.crcOk) {
    yield { kind: 'control-file-invalid', path: CONTROL_FILE, message: `${label}: CRC is incorrect` };
    return;
  }
  if (info.systemIdentifier !== m.systemIdentifier) {
    yield {
      kind: 'system-identifier-mismatch', path: CONTROL_FILE,
      message: `${label}: manifest system identifier is ${m.systemIdentifier}, but control file has ${info.systemIdentifier}`,
    };
  }
}

function shouldChecksum(e: Entry): boolean {
  return e.matched && !e.bad && e.file.checksumAlgorithm !== 'NONE';
}

function* reportMissing(s: RunState): Generator<VerifyFinding, void> {
  for (const [path, e] of s.entries) {
    if (!e.matched && !isIgnored(path, s.ignore)) {
      yield { kind: 'missing-file', path, message: `"${path}" is present in the manifest but not on disk` };
    }
  }
}

/** Compare a computed digest with the manifest's, as pg_verifybackup words the outcome. */
function compareChecksum(e: Entry, digest: Buffer, where: string, archive?: string): VerifyFinding | undefined {
  const expected = Buffer.from(e.file.checksum, 'hex');
  const path = e.file.path;
  const base = archive === undefined ? {} : { archive };
  if (expected.length !== digest.length) {
    return {
      kind: 'checksum-mismatch', path, ...base,
      message: `file "${path}"${where} has checksum of length ${expected.length}, but expected ${CHECKSUM_LENGTHS[e.file.checksumAlgorithm]}`,
    };
  }
  if (!expected.equals(digest)) return { kind: 'checksum-mismatch', path, ...base, message: `checksum mismatch for file "${path}"${where}` };
  return undefined;
}

async function* plainChecksums(s: RunState): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  const queue = [...s.entries.values()].filter((e) => shouldChecksum(e) && !isIgnored(e.file.path, s.ignore));
  // Large files first: the longest jobs start early, so the lanes finish together.
  queue.sort((a, b) => b.file.size - a.file.size);
  const out: VerifyFinding[] = [];
  let wake: (() => void) | undefined;
  let stop = false;
  let failure: unknown;
  let done = 0;
  const concurrency = Math.max(1, o.concurrency ?? LARGE_LANES);
  const cores = availableParallelism();
  // Threads pay for themselves only with spare cores and enough slow work: with the CPU's CRC
  // instruction this thread checksums CRC-32C faster than the thread pool copies files in, and on two
  // busy cores the measured cost of starting and warming threads up exceeded the gain.
  const crcNative = crc32cImplementation() === 'native';
  const slowBytes = queue.reduce((n, e) => n + (e.file.checksumAlgorithm === 'CRC32C' && crcNative ? 0 : e.file.size), 0);
  const threads = Math.max(0, o.threads ?? (slowBytes > 256 * 1024 * 1024 && cores >= 4 ? Math.min(o.concurrency ?? 4, cores - 1) : 0));
  const pool: ChecksumThread[] = [];

  const countBytes = (n: number) => {
    done += n;
    s.bytesRead += n;
    o.onProgress?.({ phase: 'checksums', doneBytes: done, totalBytes: s.totalBytes });
  };

  const finish = (e: Entry, read: number, digest: () => Buffer): VerifyFinding | undefined => {
    const path = e.file.path;
    if (read !== e.file.size) {
      return { kind: 'size-mismatch', path, message: `file "${path}" should contain ${e.file.size} bytes, but read ${read}` };
    }
    s.filesChecksummed++;
    return compareChecksum(e, digest(), '');
  };

  const checkOnThread = async (e: Entry, thread: ChecksumThread): Promise<VerifyFinding | undefined> => {
    const path = e.file.path;
    checkAbort(o.signal);
    const r = await thread.checksum(join(o.backupDir, path), e.file.checksumAlgorithm, countBytes);
    if (!r.ok) {
      return { kind: 'unreadable', path, message: `could not ${r.stage} file "${path}"`, detail: r.error };
    }
    return finish(e, r.bytes, () => r.digest);
  };

  // Most files of a data directory are small (one to a few pages). Each is opened, read and closed
  // synchronously, as pg_verifybackup does: three thread-pool round trips would cost more than the read.
  const checkSmall = (e: Entry, buf: Buffer): VerifyFinding | undefined => {
    const path = e.file.path;
    const ctx = createChecksum(e.file.checksumAlgorithm);
    let read = 0;
    let fd: number;
    try {
      fd = openSync(join(o.backupDir, path), 'r');
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not open file "${path}"`, detail: errText(err) };
    }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        ctx.update(buf.subarray(0, n));
        read += n;
        countBytes(n);
        // A short read of a regular file is its end: saves the read that would return 0.
        if (n < buf.length) break;
      }
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not read file "${path}"`, detail: errText(err) };
    } finally {
      closeSync(fd);
    }
    return finish(e, read, () => ctx.digest());
  };

  // Larger files are read on the thread pool, one chunk ahead: the next chunk is copied in on another
  // core while this thread checksums the current one.
  const checkLarge = async (e: Entry, bufs: readonly [Buffer, Buffer]): Promise<VerifyFinding | undefined> => {
    const path = e.file.path;
    const ctx = createChecksum(e.file.checksumAlgorithm);
    let read = 0;
    let fh: FileHandle;
    try {
      fh = await open(join(o.backupDir, path), 'r');
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not open file "${path}"`, detail: errText(err) };
    }
    let pending: Promise<{ bytesRead: number }> | undefined = fh.read(bufs[0], 0, bufs[0].length, 0);
    try {
      let which = 0;
      while (pending) {
        const { bytesRead } = await pending;
        pending = undefined;
        if (stop) return undefined;
        checkAbort(o.signal);
        if (bytesRead === 0) break;
        const buf = bufs[which]!;
        read += bytesRead;
        const more = bytesRead === buf.length;
        if (more) {
          which ^= 1;
          pending = fh.read(bufs[which]!, 0, bufs[which]!.length, read);
        }
        ctx.update(buf.subarray(0, bytesRead));
        countBytes(bytesRead);
      }
    } catch (err) {
      if (err instanceof AbortError) throw err;
      return { kind: 'unreadable', path, message: `could not read file "${path}"`, detail: errText(err) };
    } finally {
      // The read ahead writes into a buffer of this lane: let it land before the lane goes on.
      await pending?.catch(() => undefined);
      await fh.close();
    }
    return finish(e, read, () => ctx.digest());
  };

  const report = (f: VerifyFinding | undefined) => {
    if (f) {
      out.push(f);
      wake?.();
    }
  };

  /** Checks entries taken from `take` one at a time until none is left, the run stops or one fails. */
  const drain = async (take: () => Entry | undefined, check: (e: Entry) => Promise<VerifyFinding | undefined>) => {
    try {
      while (!stop && failure === undefined) {
        const e = take();
        if (!e) return;
        report(await check(e));
      }
    } catch (err) {
      failure ??= err;
    }
  };
  const threadLane = (thread: ChecksumThread) => drain(() => queue.shift(), (e) => checkOnThread(e, thread));

  const large = threads > 0 ? [] : queue.filter((e) => e.file.size > SMALL_FILE);
  const small = threads > 0 ? [] : queue.filter((e) => e.file.size <= SMALL_FILE);
  const largeLane = () => {
    const bufs = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)] as const;
    return drain(() => large.shift(), (e) => checkLarge(e, bufs));
  };
  const smallLane = async () => {
    const buf = Buffer.allocUnsafe(SMALL_FILE);
    try {
      let slice = 0;
      while (!stop && failure === undefined) {
        const e = small.pop();
        if (!e) return;
        checkAbort(o.signal);
        report(checkSmall(e, buf));
        slice += e.file.size + 4096;
        // Give the event loop a turn now and then: the large-file lanes' reads complete there.
        if (slice >= SYNC_SLICE_BYTES) {
          slice = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (err) {
      failure ??= err;
    }
  };

  for (let i = 0; i < threads; i++) pool.push(new ChecksumThread());
  const lanes: Promise<void>[] = threads > 0
    ? pool.map(threadLane)
    : [...Array.from({ length: Math.min(concurrency, large.length) }, largeLane), smallLane()];
  let active = lanes.length;
  const workers = lanes.map((l) => l.finally(() => {
    active--;
    wake?.();
  }));
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const f = out.shift();
      if (f) {
        yield f;
        continue;
      }
      if (active === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    if (failure !== undefined) throw failure;
  } finally {
    stop = true;
    // Threads first: a file still being read on one is abandoned, which also settles its lane.
    await Promise.allSettled(pool.map((t) => t.close()));
    await Promise.allSettled(workers);
  }
}

async function* verifyTar(s: RunState): AsyncGenerator<VerifyFinding, { base?: ArchiveRef; wal?: ArchiveRef }> {
  const o = s.o;
  const open = o.openArchive ?? defaultArchiveOpener;
  const archives: { ref: ArchiveRef; oid: number }[] = [];
  const found: { base?: ArchiveRef; wal?: ArchiveRef } = {};
  let names: string[];
  try {
    names = await readdir(o.backupDir);
  } catch (err) {
    throw new VerifyError(`could not open directory "${o.backupDir}": ${errText(err)}`, { cause: err, path: o.backupDir });
  }
  for (const name of names.sort()) {
    if (isIgnored(name, s.ignore)) continue;
    const path = join(o.backupDir, name);
    let st: Stats;
    try {
      st = await stat(path);
    } catch (err) {
      yield { kind: 'unreadable', path: name, message: `could not stat file or directory "${name}"`, detail: errText(err) };
      continue;
    }
    if (!st.isFile()) {
      yield { kind: 'extra-file', path: name, message: `file "${name}" is not a regular file` };
      continue;
    }
    const kind = classifyArchive(name);
    if (kind.kind === 'unexpected') {
      yield { kind: 'extra-file', path: name, message: `file "${name}" is not expected in a tar format backup` };
      continue;
    }
    const ref: ArchiveRef = { name, path, compression: kind.compression };
    if (kind.kind === 'wal') {
      found.wal = ref;
      continue;
    }
    if (kind.kind === 'base') found.base = ref;
    archives.push({ ref, oid: kind.kind === 'tablespace' ? kind.oid : 0 });
  }
  for (const e of s.entries.values()) {
    if (!o.skipChecksums && e.file.checksumAlgorithm !== 'NONE' && !isIgnored(e.file.path, s.ignore)) s.totalBytes += e.file.size;
  }
  let done = 0;
  for (const { ref, oid } of archives) {
    checkAbort(o.signal);
    let src: AsyncIterable<Uint8Array> | undefined;
    try {
      src = open(ref);
    } catch (err) {
      yield { kind: 'unreadable', path: ref.name, archive: ref.name, message: `could not read archive "${ref.name}"`, detail: errText(err) };
      continue;
    }
    if (!src) {
      yield {
        kind: 'unreadable', path: ref.name, archive: ref.name,
        message: `could not read archive "${ref.name}": no decompressor for ${ref.compression} is available`,
      };
      continue;
    }
    try {
      for await (const entry of extractTar(src as AsyncIterable<Buffer>)) {
        checkAbort(o.signal);
        const h = entry.header;
        if (h.type === 'directory' || h.type === 'symlink' || h.type === 'hardlink') continue;
        const member = h.name;
        const path = oid !== 0 ? canonicalRelPath(`pg_tblspc/${oid}/${member}`) : canonicalRelPath(member);
        if (isIgnored(path, s.ignore)) continue;
        const e = s.entries.get(path);
        if (!e) {
          yield {
            kind: 'extra-file', path, archive: ref.name,
            message: `file "${member}" is present in archive "${ref.name}" but not in the manifest`,
          };
          continue;
        }
        e.matched = true;
        if (e.file.size !== h.size) {
          yield {
            kind: 'size-mismatch', path, archive: ref.name,
            message: `file "${member}" has size ${h.size} in archive "${ref.name}" but size ${e.file.size} in the manifest`,
          };
          e.bad = true;
          continue;
        }
        const verifySum = !o.skipChecksums && e.file.checksumAlgorithm !== 'NONE';
        const isControl = path === CONTROL_FILE;
        if (!verifySum && !isControl) continue;
        const ctx = createChecksum(verifySum ? e.file.checksumAlgorithm : 'NONE');
        const control: Buffer[] = [];
        let controlBytes = 0;
        let read = 0;
        for await (const chunk of entry.body) {
          if (verifySum) ctx.update(chunk);
          if (isControl && controlBytes < PG_CONTROL_FILE_SIZE) {
            control.push(Buffer.from(chunk.subarray(0, PG_CONTROL_FILE_SIZE - controlBytes)));
            controlBytes += Math.min(chunk.length, PG_CONTROL_FILE_SIZE - controlBytes);
          }
          read += chunk.length;
          if (verifySum) {
            done += chunk.length;
            s.bytesRead += chunk.length;
            o.onProgress?.({ phase: 'archives', doneBytes: done, totalBytes: s.totalBytes });
          }
        }
        if (isControl) yield* checkControlBytes(s, Buffer.concat(control), `${ref.name}: ${CONTROL_FILE}`, read);
        if (!verifySum) continue;
        if (read !== e.file.size) {
          yield {
            kind: 'size-mismatch', path, archive: ref.name,
            message: `file "${path}" in archive "${ref.name}" should contain ${e.file.size} bytes, but ${read} bytes were read`,
          };
          continue;
        }
        s.filesChecksummed++;
        const f = compareChecksum(e, ctx.digest(), ` in archive "${ref.name}"`, ref.name);
        if (f) yield f;
      }
    } catch (err) {
      if (err instanceof AbortError) throw err;
      yield { kind: 'unreadable', path: ref.name, archive: ref.name, message: `could not read archive "${ref.name}"`, detail: errText(err) };
    }
  }
  return found;
}
