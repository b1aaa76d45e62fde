// The benchmark cases. A case is two commands given the same arguments on the same cluster: ours and
// the reference tool (pg_basebackup, pg_verifybackup; later pg_receivewal). Each one says what it needs
// (a CLI feature, a server feature) so that a missing one is reported as 'not available', not as a failure.
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
//
// Output is taken the way users take it, with nothing of ours in between: standard output goes to
// /dev/null, or into a pipe read by cat (a C program, as ssh, gpg or `aws s3 cp -` would read it);
// files go to a directory, once with --no-sync (CPU and page cache) and once with fsync (what a
// durable backup costs). A Node reader in the benchmark process would slow both tools to its speed,
// and an fsync alone hides CPU behind the disk flush.

/** Every case, in report order. */
export const CASE_IDS = [
  'tar-devnull',
  'tar-pipe',
  'tar-files',
  'plain',
  'client-gzip',
  'client-lz4',
  'client-zstd',
  'server-zstd',
  'verify',
  'receive-wal',
  'receive-wal-lz4',
  'archive-lag',
  'restore',
  'repo-backup',
  'repo-restore',
  'rehearse',
] as const;
export type CaseId = (typeof CASE_IDS)[number];

/** How the tools' durability is set for a case that writes files. */
export type SyncMode = 'nosync' | 'fsync';
export const SYNC_MODES: readonly SyncMode[] = ['nosync', 'fsync'];

/** What a case runs against. */
export interface CaseContext {
  /** libpq connection string for both tools. */
  conn: string;
  /** An empty (absent) target path for this run. */
  target: string;
  /** `nosync` passes -N to both. */
  sync: SyncMode;
  /** A plain backup with WAL (made once by the reference tool, or ours when there is none), for verify. */
  verifyDir: string | undefined;
  /**
   * A WAL backlog on the server for the receive-wal cases: a replication slot holds every segment from
   * the one after `seedName`; each run starts in a directory holding only a complete-sized `seedName`
   * (so both tools start at the next segment, as pg_receivewal's FindStreamingStart does) and stops at
   * `endLsn` (-E). `bytes` is the WAL between the two.
   */
  walBacklog?: { seedName: string; segmentSize: number; endLsn: string; bytes: number } | undefined;
  /** A tar backup (-Ft -X fetch, made once by the reference tool) for the restore case. */
  restoreSource?: string | undefined;
  /** How pgbb is run (`node dist/cli/main.js`), for cases whose reference is pgbb with other arguments. */
  ours: readonly string[];
  /** The S3 repository of the repository cases. */
  repository?: { address(prefix: string): string; clear(prefix: string): Promise<void> } | undefined;
  /** One backup, made once by pgbb, both in the S3 repository and as local tar files, for repo-restore. */
  repoRestoreSource?: { address: string; local: string } | undefined;
}

/**
 * Where standard output goes: `devnull` (the OS discards it), `pipe` (a pipe read by `cat > /dev/null`).
 */
export type StdoutMode = 'devnull' | 'pipe';

/** How a command is run. */
export interface CommandSpec {
  /** Arguments after the program (ours: after `node dist/cli/main.js`). */
  args: string[];
  stdout: StdoutMode;
  /** The reference side when it is another program with other arguments (restore: `tar -x`). */
  reference?: { program: string; args: string[] } | undefined;
}

/** Features a case may need. */
export interface Features {
  /** `pgbb backup --help` mentions --compress. */
  oursCompress: boolean;
  /** `pgbb verify` exists. */
  oursVerify: boolean;
  /** `pgbb receive-wal` exists. */
  oursReceiveWal: boolean;
  /** `pgbb restore` exists. */
  oursRestore: boolean;
  /** `pgbb backup --repo` exists. */
  oursRepo: boolean;
  /** `pgbb restore --repo` exists. */
  oursRepoRestore: boolean;
  /** The bench started the cluster (not --conn), so its hold slot keeps the dataset's WAL. */
  startedCluster: boolean;
  /** The server build can compress with zstd (BASE_BACKUP COMPRESSION 'zstd'). */
  serverZstd: boolean;
  /** A reference tool of the server's major (or older that still accepts it) is available. */
  reference: boolean;
}

export interface CaseDef {
  id: CaseId;
  /** One line for the report. */
  title: string;
  /**
   * Which tool pair: `backup` (pgbb backup / pg_basebackup), `verify` (pgbb verify / pg_verifybackup),
   * `receive-wal` (pgbb receive-wal / pg_receivewal), `restore` (pgbb restore / tar -x).
   */
  tool: 'backup' | 'verify' | 'receive-wal' | 'restore';
  /** Whether the case runs in this setting, and why not. */
  available(f: Features): true | string;
  /** Same arguments for both tools (their flags are the same). */
  command(ctx: CaseContext): CommandSpec;
  /** Whether the case writes files (then it runs with and without fsync, into an emptied target). */
  writesTarget: boolean;
  /** Whether the case compresses on the client (its CPU target differs from the uncompressed cases'). */
  compressed: boolean;
  /** The durability modes it runs with when it writes files. @default both */
  syncModes?: readonly SyncMode[];
  /** Lay out what a run starts from, after the target was emptied (receive-wal: the seed segment). */
  prepare?(ctx: CaseContext): Promise<void>;
  /** The bytes a run moves, for MB/s, when not the database size (receive-wal: the WAL backlog). */
  bytes?(ctx: CaseContext): number | undefined;
}

/** The repository prefix the repo-backup runs upload into (emptied before each run). */
export const REPO_BACKUP_PREFIX = 'backup-runs';
/** The repository prefix holding the backup the repo-restore runs restore. */
export const REPO_RESTORE_PREFIX = 'restore-source';

function repository(ctx: CaseContext): NonNullable<CaseContext['repository']> {
  if (ctx.repository === undefined) throw new Error('no S3 repository was started');
  return ctx.repository;
}

function common(ctx: CaseContext): string[] {
  return ['-d', ctx.conn, '-c', 'fast', ...(ctx.sync === 'nosync' ? ['-N'] : [])];
}

function backupCase(id: CaseId, title: string, extra: string[], need: (f: Features) => true | string = () => true): CaseDef {
  return {
    id,
    title,
    tool: 'backup',
    available: need,
    writesTarget: true,
    compressed: extra.some((a) => a.startsWith('--compress=client')),
    command: (ctx) => ({ args: [...common(ctx), '-D', ctx.target, ...extra], stdout: 'devnull' }),
  };
}

function stdoutCase(id: CaseId, title: string, stdout: StdoutMode): CaseDef {
  return {
    id,
    title,
    tool: 'backup',
    available: () => true,
    writesTarget: false,
    compressed: false,
    // No manifest and no WAL: the bytes of the tablespace archive, as the reference table.
    command: (ctx) => ({ args: ['-d', ctx.conn, '-c', 'fast', '-D', '-', '-Ft', '-X', 'none', '--no-manifest'], stdout }),
  };
}

const compress = (f: Features): true | string => (f.oursCompress ? true : 'pgbb backup has no --compress');

function receiveWalCase(id: CaseId, title: string, extra: string[]): CaseDef {
  const backlog = (ctx: CaseContext) => {
    if (!ctx.walBacklog) throw new Error(`${id}: no WAL backlog was prepared`);
    return ctx.walBacklog;
  };
  return {
    id,
    title,
    tool: 'receive-wal',
    available: (f) =>
      !f.oursReceiveWal
        ? 'pgbb has no receive-wal command'
        : f.startedCluster
          ? true
          : 'needs a cluster the bench started (its slot holds the dataset WAL), not --conn',
    writesTarget: true,
    compressed: extra.length > 0,
    command: (ctx) => ({
      args: ['-d', ctx.conn, '-D', ctx.target, '-E', backlog(ctx).endLsn, '-n', ...(ctx.sync === 'nosync' ? ['--no-sync'] : []), ...extra],
      stdout: 'devnull',
    }),
    async prepare(ctx) {
      const { seedName, segmentSize } = backlog(ctx);
      await mkdir(ctx.target, { recursive: true, mode: 0o700 });
      // A complete-sized (sparse) segment: both tools resume after the newest complete segment.
      const h = await open(join(ctx.target, seedName), 'w', 0o600);
      await h.truncate(segmentSize);
      await h.close();
    },
    bytes: (ctx) => backlog(ctx).bytes,
  };
}

export const CASES: readonly CaseDef[] = [
  stdoutCase('tar-devnull', 'tar to stdout > /dev/null (-D - -Ft -X none --no-manifest)', 'devnull'),
  stdoutCase('tar-pipe', 'tar to stdout piped to cat > /dev/null (-D - -Ft -X none --no-manifest)', 'pipe'),
  backupCase('tar-files', 'tar files, WAL streamed (-Ft -X stream)', ['-Ft', '-X', 'stream']),
  backupCase('plain', 'plain, WAL streamed (-Fp -X stream)', ['-Fp', '-X', 'stream']),
  backupCase('client-gzip', 'client gzip:1 (-Ft -X fetch -Z client-gzip:1)', ['-Ft', '-X', 'fetch', '--compress=client-gzip:1'], compress),
  backupCase('client-lz4', 'client lz4 (-Ft -X fetch -Z client-lz4)', ['-Ft', '-X', 'fetch', '--compress=client-lz4'], compress),
  backupCase('client-zstd', 'client zstd (-Ft -X fetch -Z client-zstd)', ['-Ft', '-X', 'fetch', '--compress=client-zstd'], compress),
  backupCase('server-zstd', 'server zstd (-Ft -X stream -Z server-zstd)', ['-Ft', '-X', 'stream', '--compress=server-zstd'], (f) =>
    !f.oursCompress ? 'pgbb backup has no --compress' : !f.serverZstd ? 'the server build has no zstd' : true,
  ),
  receiveWalCase('receive-wal', 'receive-wal catch-up over a WAL backlog (-E END -n)', []),
  receiveWalCase('receive-wal-lz4', 'receive-wal catch-up, lz4 (-E END -n --compress=lz4)', ['--compress=lz4']),
  {
    id: 'restore',
    title: 'restore a tar backup (pgbb restore --no-verify / tar -x)',
    tool: 'restore',
    available: (f) => (f.oursRestore ? true : 'pgbb has no restore command'),
    writesTarget: true,
    // -N only: tar -x does not fsync (the fsync mode would compare unlike work).
    syncModes: ['nosync'],
    compressed: false,
    command: (ctx) => {
      if (ctx.restoreSource === undefined) throw new Error('restore: no tar backup to restore');
      return {
        args: [ctx.restoreSource, '-D', ctx.target, '--no-verify', '--no-sync'],
        stdout: 'devnull',
        reference: { program: 'tar', args: ['-x', '-f', join(ctx.restoreSource, 'base.tar'), '-C', ctx.target] },
      };
    },
    async prepare(ctx) {
      // tar -x needs the directory; pgbb restore accepts an empty one.
      await mkdir(ctx.target, { recursive: true, mode: 0o700 });
    },
  },
  {
    id: 'repo-backup',
    title: 'backup into an S3 repository on loopback (pgbb backup --repo / pgbb backup -Ft into local files, fsync)',
    tool: 'backup',
    available: (f) => (f.oursRepo ? true : 'pgbb backup has no --repo'),
    // Emptied by prepare: the repository run has no target directory, and its uploads are durable in Swift
    // as the local files are after fsync.
    writesTarget: false,
    compressed: false,
    command: (ctx) => ({
      args: ['-d', ctx.conn, '-c', 'fast', '--repo', repository(ctx).address(REPO_BACKUP_PREFIX), '-X', 'stream'],
      stdout: 'devnull',
      reference: {
        program: ctx.ours[0]!,
        args: [...ctx.ours.slice(1), 'backup', '-d', ctx.conn, '-c', 'fast', '-D', ctx.target, '-Ft', '-X', 'stream'],
      },
    }),
    async prepare(ctx) {
      await rm(ctx.target, { recursive: true, force: true });
      await repository(ctx).clear(REPO_BACKUP_PREFIX);
    },
  },
  {
    id: 'repo-restore',
    title: 'restore from the S3 repository (pgbb restore --repo / pgbb restore of the same backup in local tar files)',
    tool: 'restore',
    available: (f) => (f.oursRepoRestore ? true : 'pgbb restore has no --repo'),
    writesTarget: true,
    syncModes: ['nosync'],
    compressed: false,
    command: (ctx) => {
      const source = ctx.repoRestoreSource;
      if (source === undefined) throw new Error('repo-restore: no backup to restore');
      return {
        args: ['--repo', source.address, '-D', ctx.target, '--no-verify', '--no-sync'],
        stdout: 'devnull',
        reference: {
          program: ctx.ours[0]!,
          args: [...ctx.ours.slice(1), 'restore', source.local, '-D', ctx.target, '--no-verify', '--no-sync'],
        },
      };
    },
  },
  {
    id: 'verify',
    title: 'verify a plain backup (pgbb verify / pg_verifybackup)',
    tool: 'verify',
    available: (f) => (f.oursVerify ? true : 'pgbb has no verify command'),
    writesTarget: false,
    compressed: false,
    command: (ctx) => {
      if (ctx.verifyDir === undefined) throw new Error('verify: no backup to verify');
      return { args: [ctx.verifyDir], stdout: 'devnull' };
    },
  },
];
