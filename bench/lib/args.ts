// Command-line options of `npm run bench` (bench/run.ts). Kept apart so the defaults are in one place.
import { parseArgs } from 'node:util';
import { CASE_IDS, SYNC_MODES, type CaseId, type SyncMode } from './cases.js';
import type { DatasetShape } from './dataset.js';

/** What one `npm run bench` invocation does. */
export interface BenchArgs {
  /** Dataset sizes in bytes, ascending; the dataset grows from one to the next (memory flatness). */
  sizes: number[];
  /** Timed runs per side and case. */
  runs: number;
  /** Untimed runs per side and case before the timed ones (page cache, JIT, checkpoint state). */
  warmup: number;
  /** Cases to run, in this order. */
  cases: CaseId[];
  /** Clusters to start: 15 (Debian: ours and pg_basebackup) and/or 17 (embedded: ours alone). */
  clusters: number[];
  /** An existing cluster instead (libpq connection string of a replication-capable role); no dataset is built. */
  conn: string | undefined;
  /** Durability settings to run each file-writing case with: `nosync` passes -N to both tools, `fsync` does not. */
  syncModes: SyncMode[];
  /** Where targets go (an empty directory is made under it). */
  workDir: string | undefined;
  /** Where results go. */
  resultsDir: string;
  /** Also write `<timestamp>.json`; `latest.*` are always written. */
  keepTimestamped: boolean;
  /** A word for the results file name, e.g. `memory`. */
  tag: string | undefined;
  /** Start the cluster(s), load the dataset, print the connection strings and wait (for profiling with --conn). */
  serve: boolean;
  /** The Node executable that runs pgbb (default: the one running the bench). */
  node: string | undefined;
  /** The pgbb CLI script to run (default: this checkout's dist/cli/main.js), e.g. an older build for a before/after. */
  cli: string | undefined;
  /** Seconds of pgbench load per tool in the archive-lag case. */
  lagSeconds: number;
  /** The dataset's shape (`--shape`): `mixed` by size, or `issue11` (the cluster issue 11 was measured on). */
  shape: DatasetShape;
}

export const HELP = `npm run bench -- [options]

  --size=SIZE[,SIZE...]  dataset size(s), e.g. 300MB, 1GB, 4GB (default 1GB, the least for a ratio
                         claim); with several, the dataset grows from one to the next and every case
                         runs at each
  --quick                300MB instead of 1GB (a quick look; start-up weighs more at that size)
  --runs=N               timed runs per tool and case (default 5), alternating ours / pg_basebackup
  --warmup=N             untimed runs per tool and case first (default 1)
  --cases=A,B            subset of: ${CASE_IDS.join(', ')}
  --clusters=15,17       which clusters to start (default both): 15 is Debian's build (ratios against
                         pg_basebackup 15), 17 is an embedded build (ours alone: pg_basebackup 15 refuses it)
  --conn=CONNSTR         use this running server instead (replication role; nothing is loaded into it)
  --sync=MODE            nosync, fsync or both (default both): cases that write files run with -N
                         (CPU and page cache) and/or with fsync (what a durable backup costs)
  --no-sync              same as --sync=nosync
  --work-dir=DIR         where backups are written (default: the harness's temporary root)
  --results=DIR          where results go (default bench/results)
  --tag=WORD             add WORD to the timestamped result file name
  --no-keep              do not write the timestamped JSON (latest.* only)
  --serve                start the cluster(s) with the dataset, print their connection strings and
                         wait until interrupted (then profile or bench them with --conn)
  --node=PATH            run pgbb with this Node executable (default: the one running the bench),
                         e.g. Node 24 where the default is 20
  --cli=PATH             run this pgbb CLI script instead of this checkout's dist/cli/main.js, e.g. the
                         build of an older commit for a before/after in the same run of the clusters
  --lag-seconds=N        archive-lag: seconds of pgbench load per tool (default 30)
  --shape=SHAPE          mixed (default: half pgbench, half 1 MB random rows, to --size) or issue11 (the
                         cluster issue 11 was measured on: pgbench scale 50 + 200,000 rows of 1 KB random bytes)
`;

/** Parse `3GB`, `300MB`, `512` (MB) into bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|kb|m|mb|g|gb|t|tb)?\s*$/i.exec(text);
  if (!m) throw new Error(`invalid size ${JSON.stringify(text)}: write e.g. 300MB or 4GB`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'mb').toLowerCase()[0];
  const mult = unit === 'k' ? 2 ** 10 : unit === 'm' ? 2 ** 20 : unit === 'g' ? 2 ** 30 : 2 ** 40;
  return Math.round(n * mult);
}

export function parseBenchArgs(argv: string[]): BenchArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' },
      quick: { type: 'boolean', default: false },
      sync: { type: 'string', default: 'both' },
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      cases: { type: 'string' },
      clusters: { type: 'string', default: '15,17' },
      conn: { type: 'string' },
      'no-sync': { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
      results: { type: 'string', default: 'bench/results' },
      tag: { type: 'string' },
      'no-keep': { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      node: { type: 'string' },
      cli: { type: 'string' },
      'lag-seconds': { type: 'string', default: '30' },
      shape: { type: 'string', default: 'mixed' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  if (values.quick && values.size !== undefined) throw new Error('--quick and --size: give one');
  const sizes = (values.size ?? (values.quick ? '300MB' : '1GB'))
    .split(',')
    .map(parseSize)
    .sort((a, b) => a - b);
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs=${values.runs}: expected a whole number >= 1`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup=${values.warmup}: expected a whole number >= 0`);
  const cases = (values.cases ?? CASE_IDS.join(','))
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  for (const c of cases) {
    if (!(CASE_IDS as readonly string[]).includes(c)) throw new Error(`unknown case ${c}: expected one of ${CASE_IDS.join(', ')}`);
  }
  const sync = values['no-sync'] ? 'nosync' : values.sync;
  if (sync !== 'both' && !(SYNC_MODES as readonly string[]).includes(sync))
    throw new Error(`--sync=${sync}: expected nosync, fsync or both`);
  const syncModes = sync === 'both' ? [...SYNC_MODES] : [sync as SyncMode];
  const lagSeconds = Number(values['lag-seconds']);
  if (!Number.isInteger(lagSeconds) || lagSeconds < 1)
    throw new Error(`--lag-seconds=${values['lag-seconds']}: expected a whole number >= 1`);
  const shape = values.shape;
  if (shape !== 'mixed' && shape !== 'issue11') throw new Error(`--shape=${shape}: expected mixed or issue11`);
  const clusters = values.clusters.split(',').map(Number);
  for (const c of clusters) if (c !== 15 && c !== 17) throw new Error(`--clusters: ${c} is not 15 or 17`);
  return {
    sizes,
    runs,
    warmup,
    cases: cases as CaseId[],
    clusters,
    conn: values.conn,
    syncModes,
    workDir: values['work-dir'],
    resultsDir: values.results,
    keepTimestamped: !values['no-keep'],
    tag: values.tag,
    serve: values.serve,
    node: values.node,
    cli: values.cli,
    lagSeconds,
    shape,
  };
}
