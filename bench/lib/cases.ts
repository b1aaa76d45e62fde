// The benchmark cases. A case is two commands given the same arguments on the same cluster: ours and
// the reference tool (pg_basebackup, pg_verifybackup; later pg_receivewal). Each one says what it needs
// (a CLI feature, a server feature) so that a missing one is reported as 'not available', not as a failure.

/** Every case, in report order. */
export const CASE_IDS = [
  'tar-stdout', 'tar-files', 'plain', 'client-gzip', 'client-lz4', 'client-zstd', 'server-zstd', 'verify',
] as const;
export type CaseId = (typeof CASE_IDS)[number];

/** What a case runs against. */
export interface CaseContext {
  /** libpq connection string for both tools. */
  conn: string;
  /** An empty (absent) target path for this run. */
  target: string;
  /** Pass -N to both. */
  noSync: boolean;
  /** A plain backup with WAL (made once by the reference tool, or ours when there is none), for verify. */
  verifyDir: string | undefined;
}

/** How a command is run. */
export interface CommandSpec {
  /** Arguments after the program (ours: after `node dist/cli/main.js`). */
  args: string[];
  /** `count`: standard output is read and counted (tar to stdout); `ignore`: discarded by the OS. */
  stdout: 'count' | 'ignore';
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
  /** Whether the target is a directory to measure (sizes) and empty before each run. */
  writesTarget: boolean;
}

function common(ctx: CaseContext): string[] {
  return ['-d', ctx.conn, '-c', 'fast', ...(ctx.noSync ? ['-N'] : [])];
}

function backupCase(id: CaseId, title: string, extra: string[], need: (f: Features) => true | string = () => true): CaseDef {
  return {
    id,
    title,
    tool: 'backup',
    available: need,
    writesTarget: true,
    command: (ctx) => ({ args: [...common(ctx), '-D', ctx.target, ...extra], stdout: 'ignore' }),
  };
}

const compress = (f: Features): true | string => (f.oursCompress ? true : 'pgbb backup has no --compress');

export const CASES: readonly CaseDef[] = [
  {
    id: 'tar-stdout',
    title: 'tar to stdout, no WAL (-D - -Ft -X none)',
    tool: 'backup',
    available: () => true,
    writesTarget: false,
    command: (ctx) => ({ args: [...common(ctx), '-D', '-', '-Ft', '-X', 'none'], stdout: 'count' }),
  },
  backupCase('tar-files', 'tar files, WAL streamed (-Ft -X stream)', ['-Ft', '-X', 'stream']),
  backupCase('plain', 'plain, WAL streamed (-Fp -X stream)', ['-Fp', '-X', 'stream']),
  backupCase('client-gzip', 'client gzip level 1 (-Ft -X stream -Z client-gzip:1)', ['-Ft', '-X', 'stream', '--compress=client-gzip:1'], compress),
  backupCase('client-lz4', 'client lz4 (-Ft -X stream -Z client-lz4)', ['-Ft', '-X', 'stream', '--compress=client-lz4'], compress),
  backupCase('client-zstd', 'client zstd (-Ft -X stream -Z client-zstd)', ['-Ft', '-X', 'stream', '--compress=client-zstd'], compress),
  backupCase('server-zstd', 'server zstd (-Ft -X stream -Z server-zstd)', ['-Ft', '-X', 'stream', '--compress=server-zstd'],
    (f) => (!f.oursCompress ? 'pgbb backup has no --compress' : !f.serverZstd ? 'the server build has no zstd' : true)),
  {
    id: 'verify',
    title: 'verify a plain backup (pgbb verify / pg_verifybackup)',
    tool: 'verify',
    available: (f) => (f.oursVerify ? true : 'pgbb has no verify command'),
    writesTarget: false,
    command: (ctx) => {
      if (ctx.verifyDir === undefined) throw new Error('verify: no backup to verify');
      return { args: [ctx.verifyDir], stdout: 'ignore' };
    },
  },
];
