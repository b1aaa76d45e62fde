/**
 * verifyBackup against real backups taken by Debian's pg_basebackup 15, intact and damaged, with
 * pg_verifybackup 15 as the oracle for plain backups (same exit status, same file named). The suite is
 * a function of a backup-taking function so that backups taken by our own backup command (any major)
 * can be run through the same cases once it lands.
 *
 * Kept cheap for CI: one cluster per major (and one Debian 15 cluster) serves every block that needs it,
 * the data is small (a relation of about a megabyte still gives every check a page to damage), and the
 * damaged copies hard-link every file they leave alone (a mutated file is first replaced by its own copy).
 * The 160 MB speed measurement runs once, on Debian 15, and asserts only the outcome.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  openSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { formatLsn } from '../../src/lsn.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { buildManifest } from '../../src/manifest/build.js';
import { verifyBackup, verifyBackupAll } from '../../src/verify/verify.js';
import type { VerifyFinding, VerifyOptions } from '../../src/verify/types.js';
import { runCli } from '../../src/cli/run.js';
import type { CliContext } from '../../src/cli/context.js';
import { runBackup } from '../../src/backup/run.js';
import { WalRangeChecker, XLOG_PAGE_MAGIC } from '../../src/verify/wal-check.js';
import { parseLsn } from '../../src/lsn.js';
import { debianBinDir, makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';

/** Run `pgbb verify ...` in-process; returns the exit status and what it printed. */
async function pgbbVerify(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const ctx = {
    stdout: {
      write: (s: string | Uint8Array) => {
        out.stdout += String(s);
        return true;
      },
    },
    stderr: {
      write: (s: string) => {
        out.stderr += s;
        return true;
      },
      isTTY: false,
    },
    stdin: undefined as unknown as CliContext['stdin'],
    env: {},
    signal: new AbortController().signal,
    version: 'test',
    lib: undefined as unknown as CliContext['lib'],
    now: () => 0,
  } satisfies CliContext;
  const code = await runCli(['verify', ...args], ctx);
  return { code, ...out };
}

/** Takes a backup of `cluster` into `target` (a new directory) in the given format. */
export type TakeBackup = (cluster: Cluster, target: string, format: 'plain' | 'tar', extra?: string[]) => Promise<void>;

const debianBackup: TakeBackup = async (cluster, target, format, extra = []) => {
  execFileSync(
    join(debianBinDir()!, 'pg_basebackup'),
    [
      '-d',
      cluster.connectionString(),
      '-D',
      target,
      '-F',
      format === 'plain' ? 'p' : 't',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
      ...extra,
    ],
    { stdio: 'pipe' },
  );
};

function oracle(dir: string, args: string[] = []): { code: number; stderr: string } {
  const r = spawnSync(join(debianBinDir()!, 'pg_verifybackup'), [...args, dir], { encoding: 'utf8' });
  return { code: r.status ?? -1, stderr: r.stderr };
}

async function findingsOf(o: VerifyOptions): Promise<VerifyFinding[]> {
  return (await verifyBackupAll(o)).findings;
}

/** Clusters shared by the blocks of this file, one per major and flavor (destroyed by the harness's afterAll). */
const clusters = new Map<string, Promise<Cluster>>();
function sharedCluster(major: number, flavor?: 'debian' | 'embedded'): Promise<Cluster> {
  const key = `${major}/${flavor ?? ''}`;
  let c = clusters.get(key);
  if (!c) {
    c = startCluster({ major, ...(flavor ? { flavor } : {}) });
    clusters.set(key, c);
  }
  return c;
}

/**
 * This file's scratch directories, removed (asynchronously, here in the worker) when it ends. Left to the
 * harness's global teardown, whose removal of the run root is synchronous in vitest's main process, the
 * gigabytes of backup copies blocked that process for over teardownTimeout (30 s) on a busy machine, and
 * vitest then printed "[vitest-pool]: Timeout terminating forks worker" for a worker that had long exited.
 */
const scratch: string[] = [];
async function scratchDir(label: string): Promise<string> {
  const dir = await makeTempDir(label);
  scratch.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.allSettled(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

/** A copy of a backup whose files are hard links to the original's; mutate files only through {@link own}. */
function copyBackup(src: string, dst: string): string {
  mkdirSync(dst);
  for (const name of readdirSync(src, { withFileTypes: true })) {
    const from = join(src, name.name);
    const to = join(dst, name.name);
    if (name.isDirectory()) copyBackup(from, to);
    else if (name.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else linkSync(from, to);
  }
  return dst;
}

/** Gives `path` (in a {@link copyBackup} copy) its own inode, so that changing it leaves the original alone. */
function own(path: string): string {
  copyFileSync(path, `${path}.own`);
  renameSync(`${path}.own`, path);
  return path;
}

/** The largest regular file under base/ (a relation with real data). */
function largestRelation(dir: string): string {
  let best = '';
  let bestSize = -1;
  for (const db of readdirSync(join(dir, 'base'))) {
    for (const f of readdirSync(join(dir, 'base', db))) {
      const st = statSync(join(dir, 'base', db, f));
      if (st.isFile() && st.size > bestSize) {
        best = `base/${db}/${f}`;
        bestSize = st.size;
      }
    }
  }
  return best;
}

function flipByte(path: string, offset: number): void {
  own(path);
  const buf = readFileSync(path);
  buf[offset] = buf[offset]! ^ 0xff;
  writeFileSync(path, buf);
}

function suite(label: string, take: TakeBackup, opts: { major: number; flavor?: 'debian' | 'embedded'; oracle: boolean }) {
  describe(label, () => {
    let cluster: Cluster;
    let root: string;
    let plain: string;
    let tar: string;

    beforeAll(async () => {
      cluster = await sharedCluster(opts.major, opts.flavor);
      // About 1.3 MB: the largest relation has pages to flip and truncate; more data only costs time.
      await cluster.sql('create table if not exists big as select g, md5(g::text) as h from generate_series(1, 20000) g');
      root = await scratchDir('verify');
      plain = join(root, 'plain');
      tar = join(root, 'tar');
      await take(cluster, plain, 'plain');
      await take(cluster, tar, 'tar');
    }, 240_000);

    it('an intact plain backup verifies, with WAL records checked', async () => {
      const run = verifyBackup({ backupDir: plain });
      const findings: VerifyFinding[] = [];
      for await (const f of run) findings.push(f);
      expect(findings).toEqual([]);
      const s = run.summary!;
      expect(s.ok).toBe(true);
      expect(s.format).toBe('plain');
      expect(s.filesChecksummed).toBeGreaterThan(500);
      expect(s.walRanges).toBe(1);
      expect(s.walRecords).toBeGreaterThan(0);
      if (opts.oracle) expect(oracle(plain).code).toBe(0);
    });

    it('an intact tar backup verifies (base.tar + pg_wal.tar)', async () => {
      expect(readdirSync(tar).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
      const { summary, findings } = await verifyBackupAll({ backupDir: tar });
      expect(findings).toEqual([]);
      expect(summary.format).toBe('tar');
      expect(summary.walRecords).toBeGreaterThan(0);
      // Every file but postgresql.auto.conf, which is always ignored.
      expect(summary.filesChecksummed).toBe(summary.manifestFiles - 1);
    });

    it('the manifest re-encodes byte for byte with buildManifest', () => {
      const bytes = readFileSync(join(plain, 'backup_manifest'));
      const m = parseManifest(bytes);
      const rebuilt = buildManifest({
        version: m.version,
        ...(m.systemIdentifier !== undefined ? { systemIdentifier: m.systemIdentifier } : {}),
        files: m.files.values(),
        walRanges: m.walRanges,
      });
      expect(rebuilt.toString('utf8')).toBe(bytes.toString('utf8'));
    });

    it('a flipped byte in a relation file is a checksum mismatch naming the file', async () => {
      const dir = copyBackup(plain, join(root, 'flip'));
      const rel = largestRelation(dir);
      flipByte(join(dir, rel), 4096 + 17);
      const findings = await findingsOf({ backupDir: dir });
      expect(findings).toEqual([
        expect.objectContaining({ kind: 'checksum-mismatch', path: rel, message: `checksum mismatch for file "${rel}"` }),
      ]);
      expect(await findingsOf({ backupDir: dir, skipChecksums: true })).toEqual([]);
      if (opts.oracle) {
        const r = oracle(dir);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`checksum mismatch for file "${rel}"`);
        expect(oracle(dir, ['-s']).code).toBe(0);
      }
    });

    it("pgbb verify: success message, and each problem named with pg_verifybackup's exit status", async () => {
      const ok = await pgbbVerify([plain]);
      expect(ok).toMatchObject({ code: 0, stdout: 'backup successfully verified\n', stderr: '' });
      expect((await pgbbVerify(['-q', plain])).stdout).toBe('');
      expect((await pgbbVerify([tar])).code).toBe(0);
      const dir = copyBackup(plain, join(root, 'cli'));
      const rel = largestRelation(dir);
      const size = statSync(join(dir, rel)).size;
      truncateSync(own(join(dir, rel)), 8192);
      writeFileSync(join(dir, 'extra'), 'x');
      const bad = await pgbbVerify([dir]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('');
      expect(bad.stderr).toContain(`pgbb verify: error: "${rel}" has size 8192 on disk but size ${size} in the manifest\n`);
      expect(bad.stderr).toContain('pgbb verify: error: "extra" is present on disk but not in the manifest\n');
      const ignored = await pgbbVerify(['-i', 'extra', '--ignore', rel, dir]);
      expect(ignored).toMatchObject({ code: 0, stdout: 'backup successfully verified\n' });
      const json = await pgbbVerify(['--json', '-e', dir]);
      const events = json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events.filter((e) => e['event'] === 'finding')).toHaveLength(1);
      expect(events.at(-1)).toMatchObject({ event: 'done', ok: false, stoppedEarly: true });
      expect(json.code).toBe(1);
      expect((await pgbbVerify(['-P', '-q', dir])).stderr).toContain('cannot specify both -P/--progress and -q/--quiet');
      expect((await pgbbVerify([])).stderr).toContain('no backup directory specified');
      const missing = await pgbbVerify([join(root, 'does-not-exist')]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^pgbb verify: error: could not open file ".*backup_manifest"/);
      const progress = await pgbbVerify(['-P', plain]);
      expect(progress.stderr).toMatch(/^( *\d+\/\d+ kB \(\d+%\) verified\n)*\d+\/\d+ kB \(100%\) verified\n$/);
      if (opts.oracle) {
        expect(oracle(dir).code).toBe(1);
        expect(oracle(dir, ['-i', 'extra', '-i', rel]).code).toBe(0);
        expect(oracle(join(root, 'does-not-exist')).code).toBe(1);
      }
    });

    it('a missing, an extra and a truncated file are each named; -i hides the extra one', async () => {
      const dir = copyBackup(plain, join(root, 'files'));
      const rel = largestRelation(dir);
      rmSync(join(dir, 'PG_VERSION'));
      writeFileSync(join(dir, 'base', 'stray_file'), 'x');
      const size = statSync(join(dir, rel)).size;
      truncateSync(own(join(dir, rel)), size - 8192);
      const findings = await findingsOf({ backupDir: dir });
      const byKind = Object.fromEntries(findings.map((f) => [f.kind, f]));
      expect(findings).toHaveLength(3);
      expect(byKind['missing-file']).toMatchObject({
        path: 'PG_VERSION',
        message: '"PG_VERSION" is present in the manifest but not on disk',
      });
      expect(byKind['extra-file']).toMatchObject({
        path: 'base/stray_file',
        message: '"base/stray_file" is present on disk but not in the manifest',
      });
      expect(byKind['size-mismatch']).toMatchObject({
        path: rel,
        message: `"${rel}" has size ${size - 8192} on disk but size ${size} in the manifest`,
      });
      const ignored = await findingsOf({ backupDir: dir, ignore: ['base/stray_file', 'PG_VERSION'] });
      expect(ignored.map((f) => f.kind)).toEqual(['size-mismatch']);
      const first = await findingsOf({ backupDir: dir, exitOnError: true });
      expect(first).toHaveLength(1);
      if (opts.oracle) {
        const r = oracle(dir);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('"PG_VERSION" is present in the manifest but not on disk');
        expect(r.stderr).toContain('"base/stray_file" is present on disk but not in the manifest');
        expect(r.stderr).toContain(`"${rel}" has size ${size - 8192} on disk but size ${size} in the manifest`);
      }
    });

    it('a missing WAL segment is wal-missing; -n skips WAL', async () => {
      const dir = copyBackup(plain, join(root, 'nowal'));
      const m = parseManifest(readFileSync(join(dir, 'backup_manifest')));
      const segs = readdirSync(join(dir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n));
      for (const s of segs) rmSync(join(dir, 'pg_wal', s));
      const findings = await findingsOf({ backupDir: dir });
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ kind: 'wal-missing', path: segs[0] });
      expect(findings[0]!.message).toContain(`WAL parsing failed for timeline ${m.walRanges[0]!.timeline}`);
      expect(await findingsOf({ backupDir: dir, noWal: true })).toEqual([]);
      if (opts.oracle) {
        expect(oracle(dir).code).toBe(1);
        expect(oracle(dir, ['-n']).code).toBe(0);
      }
    });

    it('a damaged WAL record is wal-invalid (record CRC), like pg_waldump sees it', async () => {
      const dir = copyBackup(plain, join(root, 'badwal'));
      const m = parseManifest(readFileSync(join(dir, 'backup_manifest')));
      const range = m.walRanges[0]!;
      const segSize = 16 * 1024 * 1024;
      const seg = readdirSync(join(dir, 'pg_wal'))
        .filter((n) => /^[0-9A-F]{24}$/.test(n))
        .sort()[0]!;
      // Inside the first record, just after its 24-byte header (17's CHECKPOINT_REDO record is only 30 bytes long).
      flipByte(join(dir, 'pg_wal', seg), Number(range.startLsn % BigInt(segSize)) + 25);
      const findings = await findingsOf({ backupDir: dir });
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ kind: 'wal-invalid', path: seg });
      expect(findings[0]!.message).toContain(`incorrect resource manager data checksum in record at ${formatLsn(range.startLsn)}`);
      if (opts.oracle) expect(oracle(dir).code).toBe(1);
    });

    it('a damaged manifest is reported and nothing else is checked', async () => {
      const dir = copyBackup(plain, join(root, 'badmanifest'));
      const path = own(join(dir, 'backup_manifest'));
      const text = readFileSync(path, 'utf8');
      writeFileSync(path, text.replace('"Path": "PG_VERSION", "Size": 3', '"Path": "PG_VERSION", "Size": 4'));
      const findings = await findingsOf({ backupDir: dir });
      expect(findings).toEqual([expect.objectContaining({ kind: 'manifest-checksum-mismatch', path })]);
      writeFileSync(path, text.slice(0, text.length - 20));
      expect((await findingsOf({ backupDir: dir }))[0]?.kind).toBe('manifest-invalid');
      expect(() => parseManifest(readFileSync(path))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_MANIFEST' }));
      appendFileSync(path, '');
      if (opts.oracle) expect(oracle(dir).code).toBe(1);
      // The intact manifest, given with manifestPath (-m), still works for the copy.
      expect(await findingsOf({ backupDir: dir, manifestPath: join(plain, 'backup_manifest') })).toEqual([]);
    });

    it('a flipped byte inside base.tar names the member and the archive', async () => {
      const dir = copyBackup(tar, join(root, 'tarflip'));
      const buf = readFileSync(own(join(dir, 'base.tar')));
      // The first 512-byte header naming PG_VERSION; its body follows.
      const at = buf.indexOf(Buffer.from('PG_VERSION\0'));
      expect(at % 512).toBe(0);
      buf[at + 512] = buf[at + 512]! ^ 0x01;
      writeFileSync(join(dir, 'base.tar'), buf);
      const findings = await findingsOf({ backupDir: dir });
      expect(findings).toEqual([
        expect.objectContaining({
          kind: 'checksum-mismatch',
          path: 'PG_VERSION',
          archive: 'base.tar',
          message: 'checksum mismatch for file "PG_VERSION" in archive "base.tar"',
        }),
      ]);
      rmSync(join(dir, 'pg_wal.tar'));
      const nowal = await findingsOf({ backupDir: dir, skipChecksums: true });
      expect(nowal.map((f) => f.kind)).toEqual(['wal-missing']);
    });
  });
}

const debian = debianBinDir();
if (!debian) throw new Error('Debian PostgreSQL 15 is required for these tests (.ci/run installs it)');

suite('pg_basebackup 15 backups of a PostgreSQL 15 (Debian) cluster', debianBackup, { major: 15, flavor: 'debian', oracle: true });

/** Our own backup command, for every major. */
const pgbbBackup: TakeBackup = async (cluster, target, format) => {
  await runBackup({ connection: cluster.connectionString(), checkpoint: 'fast', noSync: true, output: { format, directory: target } });
};
for (const major of testMajors()) {
  // pg_verifybackup 15 reads only its own major's WAL, so it is the oracle for 15 alone.
  suite(`pgbb backups of PostgreSQL ${major}`, pgbbBackup, { major, oracle: major === 15 });
}

describe.each(testMajors())('live WAL of PostgreSQL %i', (major) => {
  it("every record from the last checkpoint's redo point to the insert position checks out, with the major's page magic", async () => {
    // The own-backup suite's cluster, already running.
    const c = await sharedCluster(major);
    await c.sql('create table w as select g, repeat(md5(g::text), 5) as h from generate_series(1, 20000) g');
    await c.sql('select pg_switch_wal()');
    await c.sql('create table w2 as select generate_series(1, 1000) as n');
    const [ck] = await c.sql<{ redo: string }>('select redo_lsn::text as redo from pg_control_checkpoint()');
    const [cur] = await c.sql<{ lsn: string; sysid: string }>(
      'select pg_current_wal_flush_lsn()::text as lsn, (select system_identifier::text from pg_control_system()) as sysid',
    );
    const checker = new WalRangeChecker({
      timeline: 1,
      startLsn: parseLsn(ck!.redo),
      endLsn: parseLsn(cur!.lsn),
      segmentSize: 16 * 1024 * 1024,
      systemIdentifier: BigInt(cur!.sysid),
      pageMagic: XLOG_PAGE_MAGIC[major],
    });
    for (const segno of checker.segments()) {
      checker.beginSegment(segno);
      checker.push(readFileSync(join(c.dataDir, 'pg_wal', checker.fileName(segno))));
      if (checker.finished) break;
    }
    const r = checker.result();
    expect(r).toMatchObject({ ok: true, major });
    expect(r.records).toBeGreaterThan(1000);
  }, 120_000);
});

/** `pgbb backup ARGS` from the built CLI, its standard output written to `file`. */
async function pgbbBackupToFile(args: string[], file: string): Promise<{ code: number | null; stderr: string }> {
  const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
  const fd = openSync(file, 'w', 0o600);
  try {
    const child = spawn(process.execPath, [cli, 'backup', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', fd, 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    return await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  } finally {
    closeSync(fd);
  }
}

describe.each(testMajors())('single-tar backups written by pgbb backup -D - -Ft of PostgreSQL %i', (major) => {
  let cluster: Cluster;
  let root: string;
  beforeAll(async () => {
    const dist = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    // Built once per run by whichever file needs it first (cli-backup and cli-signals do the same).
    if (!existsSync(dist)) execFileSync('npx', ['tsup'], { cwd: fileURLToPath(new URL('../../', import.meta.url)), stdio: 'pipe' });
    cluster = await sharedCluster(major);
    await cluster.sql('create table if not exists big as select g, md5(g::text) as h from generate_series(1, 20000) g');
    root = await scratchDir('verify-single');
  }, 240_000);

  it('-X fetch > file.tar verifies with the manifest found inside, by the library and by pgbb verify', async () => {
    const file = join(root, 'backup.tar');
    const r = await pgbbBackupToFile(['-d', cluster.connectionString(), '-D', '-', '-Ft', '-X', 'fetch', '-c', 'fast'], file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(join(root, 'backup_manifest'))).toBe(false);
    const { summary, findings } = await verifyBackupAll({ backupDir: file });
    expect(findings).toEqual([]);
    expect(summary).toMatchObject({ ok: true, format: 'tar', walRanges: 1 });
    expect(summary.walRecords).toBeGreaterThan(0);
    expect(summary.filesChecksummed).toBeGreaterThan(500);
    expect(await pgbbVerify([file])).toMatchObject({ code: 0, stdout: 'backup successfully verified\n', stderr: '' });

    // A flipped byte in a member's body: a checksum mismatch naming the member and the file, exit status 1.
    const bad = join(root, 'damaged.tar');
    const buf = readFileSync(file);
    let at = buf.indexOf(Buffer.from('PG_VERSION\0'));
    while (at !== -1 && at % 512 !== 0) at = buf.indexOf(Buffer.from('PG_VERSION\0'), at + 1);
    expect(at).toBeGreaterThanOrEqual(0);
    buf[at + 512] = buf[at + 512]! ^ 0x01;
    writeFileSync(bad, buf);
    const { findings: damaged } = await verifyBackupAll({ backupDir: bad });
    expect(damaged).toEqual([
      expect.objectContaining({
        kind: 'checksum-mismatch',
        path: 'PG_VERSION',
        archive: 'damaged.tar',
        message: 'checksum mismatch for file "PG_VERSION" in archive "damaged.tar"',
      }),
    ]);
    const cli = await pgbbVerify([bad]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toBe('pgbb verify: error: checksum mismatch for file "PG_VERSION" in archive "damaged.tar"\n');
  }, 240_000);

  it('-X fetch -z > file.tar.gz (client gzip to standard output) verifies; damage in it is found', async () => {
    const file = join(root, 'backup.tar.gz');
    const r = await pgbbBackupToFile(['-d', cluster.connectionString(), '-D', '-', '-Ft', '-X', 'fetch', '-z', '-c', 'fast'], file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const head = readFileSync(file).subarray(0, 2);
    expect([...head]).toEqual([0x1f, 0x8b]);
    const ok = await pgbbVerify([file]);
    expect(ok).toMatchObject({ code: 0, stdout: 'backup successfully verified\n' });
    // Damage in the compressed stream.
    const buf = readFileSync(file);
    const mid = Math.floor(buf.length / 2);
    buf[mid] = buf[mid]! ^ 0xff;
    const bad = join(root, 'damaged.tar.gz');
    writeFileSync(bad, buf);
    // The manifest is the last member: reaching it reads the damage, and without it nothing can be verified.
    const err = await verifyBackupAll({ backupDir: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect(err).toMatchObject({
      code: 'ERR_PGBB_VERIFY',
      message: expect.stringMatching(/^could not read "backup_manifest" from archive "damaged.tar.gz": /),
    });
    const cli = await pgbbVerify([bad]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^pgbb verify: error: could not read "backup_manifest" from archive "damaged.tar.gz"/);
  }, 240_000);
});

describe('other backup shapes from pg_basebackup 15', () => {
  let cluster: Cluster;
  let root: string;
  beforeAll(async () => {
    cluster = await sharedCluster(15, 'debian');
    await cluster.sql('create table t as select generate_series(1, 10000) as n');
    root = await scratchDir('verify-shapes');
  }, 120_000);

  it('SHA-256 checksums with force-encoded paths verify, and match pg_verifybackup', async () => {
    const dir = join(root, 'sha');
    await debianBackup(cluster, dir, 'plain', ['--manifest-checksums=SHA256', '--manifest-force-encode']);
    const m = parseManifest(readFileSync(join(dir, 'backup_manifest')));
    expect([...m.files.values()].every((f) => f.checksumAlgorithm === 'SHA256' && f.encodedPath !== undefined)).toBe(true);
    expect(await findingsOf({ backupDir: dir })).toEqual([]);
    expect(oracle(dir).code).toBe(0);
  });

  it('-X fetch tar: WAL inside base.tar is found and checked', async () => {
    const dir = join(root, 'fetch');
    execFileSync(
      join(debian, 'pg_basebackup'),
      ['-d', cluster.connectionString(), '-D', dir, '-Ft', '-X', 'fetch', '-c', 'fast', '--no-sync'],
      { stdio: 'pipe' },
    );
    expect(readdirSync(dir).sort()).toEqual(['backup_manifest', 'base.tar']);
    const { summary, findings } = await verifyBackupAll({ backupDir: dir });
    expect(findings).toEqual([]);
    expect(summary.walRecords).toBeGreaterThan(0);
  });

  it('gzip tar backups verify through the default archive opener', async () => {
    const dir = join(root, 'gz');
    await debianBackup(cluster, dir, 'tar', ['-z']);
    expect(readdirSync(dir).sort()).toEqual(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz']);
    const { summary, findings } = await verifyBackupAll({ backupDir: dir });
    expect(findings).toEqual([]);
    expect(summary.walRecords).toBeGreaterThan(0);
  });

  it("lz4 tar backups verify through the compression layer's decompressor", async () => {
    const dir = join(root, 'lz4');
    await debianBackup(cluster, dir, 'tar', ['-Z', 'lz4']);
    // pg_basebackup compresses pg_wal.tar with gzip only.
    expect(readdirSync(dir).sort()).toEqual(['backup_manifest', 'base.tar.lz4', 'pg_wal.tar']);
    const { summary, findings } = await verifyBackupAll({ backupDir: dir });
    expect(findings).toEqual([]);
    expect(summary.walRecords).toBeGreaterThan(0);
    // A damaged compressed archive is unreadable, not silently short.
    const buf = readFileSync(join(dir, 'base.tar.lz4'));
    buf[Math.floor(buf.length / 2)] = buf[Math.floor(buf.length / 2)]! ^ 0xff;
    writeFileSync(join(dir, 'base.tar.lz4'), buf);
    const damaged = await verifyBackupAll({ backupDir: dir, noWal: true });
    expect(damaged.findings.length).toBeGreaterThan(0);
  });

  it('pg_waldump as an extra WAL check agrees on an intact backup', async () => {
    const dir = join(root, 'dump');
    await debianBackup(cluster, dir, 'plain');
    expect(await findingsOf({ backupDir: dir, pgWaldumpPath: join(debian, 'pg_waldump') })).toEqual([]);
  });

  it('speed: verify vs pg_verifybackup on the same backup', async () => {
    await cluster.sql('create table speed as select g, md5(g::text) as h from generate_series(1, 2000000) g');
    const dir = join(root, 'speed');
    await debianBackup(cluster, dir, 'plain');
    const best = async (f: () => Promise<void> | void) => {
      let min = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await f();
        min = Math.min(min, performance.now() - t);
      }
      return min;
    };
    const theirs = await best(() => {
      expect(oracle(dir).code).toBe(0);
    });
    let bytes = 0;
    const single = await best(async () => {
      const { summary } = await verifyBackupAll({ backupDir: dir, threads: 0 });
      expect(summary.ok).toBe(true);
      bytes = summary.bytesRead;
    });
    const threaded = await best(async () => {
      expect((await verifyBackupAll({ backupDir: dir, threads: 2 })).summary.ok).toBe(true);
    });
    const mb = bytes / 1e6;
    console.log(
      `verify speed on ${mb.toFixed(0)} MB (best of 3): pg_verifybackup ${theirs.toFixed(0)} ms; ` +
        `pgbb ${single.toFixed(0)} ms on one thread (ratio ${(single / theirs).toFixed(2)}), ` +
        `${threaded.toFixed(0)} ms with 2 worker threads (ratio ${(threaded / theirs).toFixed(2)})`,
    );
  }, 240_000);
});
