// The benchmark cases. A case is two commands given the same arguments on the same cluster: ours and
// the reference tool (pg_basebackup, pg_verifybackup; later pg_receivewal). Each one says what it needs
// (a CLI feature, a server feature) so that a missing one is reported as 'not available', not as a failure.
//
// Output is taken the way users take it, with nothing of ours in between: standard output goes to
// /dev/null, or into a pipe read by cat (a C program, as ssh, gpg or `aws s3 cp -` would read it);
// files go to a directory, once with --no-sync (CPU and page cache) and once with fsync (what a
// durable backup costs). A Node reader in the benchmark process would slow both tools to its speed,
// and an fsync alone hides CPU behind the disk flush.

/** Every case, in report order. */
export const CASE_IDS = [
  'tar-devnull', 'tar-pipe', 'tar-files', 'plain', 'client-gzip', 'client-lz4', 'client-zstd', 'server-zstd', 'verify',
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
}

/** Features a case may need. */
export interface Features {
  /** `pgbb backup --help` mentions --compress. */
  oursCompress: boolean;
  /** `pgbb verify` exists. */
  oursVerify: boolean;
  /** The server build can compress with zstd (BASE_BACKUP COMPRESSION 'zstd'). */
  serverZstd: boolean;
  /** A reference tool of the server's major (or older that still accepts it) is available. */
  reference: boolean;
}

export interface CaseDef {
  id: CaseId;
  /** One line for the report. */
  title: string;
  /** Which tool pair: `backup` (pgbb backup / pg_basebackup) or `verify` (pgbb verify / pg_verifybackup). */
  tool: 'backup' | 'verify';
  /** Whether the case runs in this setting, and why not. */
  available(f: Features): true | string;
  /** Same arguments for both tools (their flags are the same). */
  command(ctx: CaseContext): CommandSpec;
  /** Whether the case writes files (then it runs with and without fsync, into an emptied target). */
  writesTarget: boolean;
  /** Whether the case compresses on the client (its CPU target differs from the uncompressed cases'). */
  compressed: boolean;
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

export const CASES: readonly CaseDef[] = [
  stdoutCase('tar-devnull', 'tar to stdout > /dev/null (-D - -Ft -X none --no-manifest)', 'devnull'),
  stdoutCase('tar-pipe', 'tar to stdout piped to cat > /dev/null (-D - -Ft -X none --no-manifest)', 'pipe'),
  backupCase('tar-files', 'tar files, WAL streamed (-Ft -X stream)', ['-Ft', '-X', 'stream']),
  backupCase('plain', 'plain, WAL streamed (-Fp -X stream)', ['-Fp', '-X', 'stream']),
  backupCase('client-gzip', 'client gzip:1 (-Ft -X fetch -Z client-gzip:1)', ['-Ft', '-X', 'fetch', '--compress=client-gzip:1'], compress),
  backupCase('client-lz4', 'client lz4 (-Ft -X fetch -Z client-lz4)', ['-Ft', '-X', 'fetch', '--compress=client-lz4'], compress),
  backupCase('client-zstd', 'client zstd (-Ft -X fetch -Z client-zstd)', ['-Ft', '-X', 'fetch', '--compress=client-zstd'], compress),
  backupCase('server-zstd', 'server zstd (-Ft -X stream -Z server-zstd)', ['-Ft', '-X', 'stream', '--compress=server-zstd'],
    (f) => (!f.oursCompress ? 'pgbb backup has no --compress' : !f.serverZstd ? 'the server build has no zstd' : true)),
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
