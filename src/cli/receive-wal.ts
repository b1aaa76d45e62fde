/**
 * `pgbb receive-wal`: pg_receivewal's command line (and zstd, and `--json`) over the library's
 * `receiveWal`. `--create-slot` and `--drop-slot` manage the slot and exit, as pg_receivewal's do.
 * `--repo REPO` (or `PGBB_REPO`, when no `-D` is given) archives into a repository instead of a
 * directory, through `RepositoryWalStore`, with the segment in progress in a local spool (`--spool`).
 * @module
 */
import { COMPRESSION_SUFFIX } from '../entries/compress.js';
import { parseConnectionString, ReplicationConnection, type ConnectionOptions } from '../entries/connection.js';
import { ServerError } from '../entries/errors.js';
import { createReplicationSlot, dropReplicationSlot } from '../entries/replication.js';
import { formatLsn, parseLsn, type Lsn } from '../entries/lsn.js';
import { receiveWal, type ReceiveWalEvent, type ReceiveWalOptions } from '../entries/wal.js';
import { parseArgs, parseIntOption, rejectOperands, UsageError, type CommandSpec, type OptionSpec } from './args.js';
import { parseCompressOption, type CompressionSpec } from './compress-spec.js';
import { connectionOptionSpecs, parseConnectionFlags, type CliConnectionFlags } from './connection-flags.js';
import { connectionOptionsFromFlags, defineCommand, maybePromptPassword, type CliContext, type CommandLine } from './context.js';
import type { Reporter } from './output.js';
import { REPO_OPTION } from './repo-flags.js';

const PROG = 'pgbb receive-wal';
const GEN = 'Options';
const ACT = 'Optional actions';

const options: OptionSpec[] = [
  {
    key: 'directory',
    short: 'D',
    long: 'directory',
    arg: 'required',
    metavar: 'DIR',
    group: GEN,
    help: 'receive write-ahead log files into this directory',
  },
  {
    key: 'endpos',
    short: 'E',
    long: 'endpos',
    arg: 'required',
    metavar: 'LSN',
    group: GEN,
    help: 'exit after receiving the specified LSN',
  },
  { key: 'ifNotExists', long: 'if-not-exists', group: GEN, help: 'do not error if slot already exists when creating a slot' },
  { key: 'noLoop', short: 'n', long: 'no-loop', group: GEN, help: 'do not loop on connection lost' },
  { key: 'noSync', long: 'no-sync', group: GEN, help: 'do not wait for changes to be written safely to disk' },
  { key: 'slot', short: 'S', long: 'slot', arg: 'required', metavar: 'SLOTNAME', group: GEN, help: 'replication slot to use' },
  { key: 'synchronous', long: 'synchronous', group: GEN, help: 'flush write-ahead log immediately after writing' },
  { key: 'verbose', short: 'v', long: 'verbose', group: GEN, help: 'output verbose messages' },
  {
    key: 'compress',
    short: 'Z',
    long: 'compress',
    arg: 'required',
    metavar: 'METHOD[:DETAIL]',
    group: GEN,
    help: 'compress as specified (METHOD: gzip, lz4, zstd or none)',
  },
  {
    ...REPO_OPTION,
    group: GEN,
    help: 'archive into this repository instead of a directory:\na path or s3://BUCKET/PREFIX (default without -D: $PGBB_REPO)',
  },
  {
    key: 'spool',
    long: 'spool',
    arg: 'required',
    metavar: 'DIR',
    group: GEN,
    help: 'with --repo: keep the segment in progress here\n(default: ~/.local/state/pgbb/receive-wal/<key>)',
  },
  { key: 'json', long: 'json', group: GEN, help: 'print events as JSON lines on stdout\n(status updates too with -v)' },
  { key: 'version', short: 'V', long: 'version', group: GEN, help: 'print the version and exit' },
  { key: 'help', short: '?', long: 'help', group: GEN, help: 'print this help and exit' },
  ...connectionOptionSpecs({ statusInterval: true }),
  { key: 'createSlot', long: 'create-slot', group: ACT, help: "create a new replication slot (for the slot's name see --slot)" },
  { key: 'dropSlot', long: 'drop-slot', group: ACT, help: "drop the replication slot (for the slot's name see --slot)" },
];

/** The option table of `pgbb receive-wal`. */
export const RECEIVE_WAL_COMMAND: CommandSpec = {
  prog: PROG,
  summary: 'pgbb receive-wal receives PostgreSQL streaming write-ahead logs into an archive directory or a repository.',
  options,
  epilog: 'Connection settings not given here come from the PG* environment variables\nand ~/.pgpass, as with libpq.',
};

/** What the `pgbb receive-wal` command line asks for. */
export interface ReceiveWalCliOptions {
  /** `-D`; absent with `--create-slot` / `--drop-slot`, and when archiving into a repository. */
  directory?: string;
  /** `--repo`; without `-D`, `PGBB_REPO` stands in for it (see {@link receiveWalTarget}). */
  repo?: string;
  /** `--spool`. */
  spool?: string;
  /** `-E`. */
  endLsn?: Lsn;
  /** `-S`. */
  slot?: string;
  /** `--create-slot` / `--drop-slot`: do that and exit; `stream` otherwise. */
  action: 'stream' | 'create-slot' | 'drop-slot';
  ifNotExists: boolean;
  /** `-n` clears it. */
  loop: boolean;
  /** `--no-sync` clears it. */
  sync: boolean;
  synchronous: boolean;
  /** `-s` in milliseconds (0: only when the server asks). */
  statusIntervalMs: number;
  compression: CompressionSpec | undefined;
  verbose: number;
  json: boolean;
  connection: CliConnectionFlags;
}

/** Map and check `pgbb receive-wal` arguments with pg_receivewal's rules. Pure; throws `UsageError`. */
export function parseReceiveWalCommandLine(argv: readonly string[]): CommandLine<ReceiveWalCliOptions> {
  const args = parseArgs(RECEIVE_WAL_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  rejectOperands(RECEIVE_WAL_COMMAND, args);
  const usage = (message: string) => new UsageError(PROG, message);

  const createSlot = args.has('createSlot');
  const dropSlot = args.has('dropSlot');
  const slot = args.last('slot');
  const directory = args.last('directory');
  const noSync = args.has('noSync');
  const synchronous = args.has('synchronous');
  if (slot === undefined && dropSlot) throw usage('--drop-slot needs a slot to be specified using --slot');
  if (slot === undefined && createSlot) throw usage('--create-slot needs a slot to be specified using --slot');
  if (createSlot && dropSlot) throw usage('cannot use --create-slot together with --drop-slot');
  if (synchronous && noSync) throw usage('cannot use --synchronous together with --no-sync');

  let endLsn: Lsn | undefined;
  const endpos = args.last('endpos');
  if (endpos !== undefined) {
    try {
      endLsn = parseLsn(endpos);
    } catch {
      throw usage(`could not parse end position "${endpos}"`);
    }
  }
  const statusInterval = args.last('statusInterval');
  const statusIntervalMs =
    statusInterval === undefined
      ? 10_000
      : parseIntOption(PROG, statusInterval, '-s/--status-interval', 0, Math.trunc(2147483647 / 1000)) * 1000;

  let compression: CompressionSpec | undefined;
  const compress = args.last('compress');
  if (compress !== undefined) {
    const r = parseCompressOption(compress);
    if (!r.ok) throw usage(`invalid compression specification: ${r.message}`);
    if (r.spec.location === 'server') throw usage('receive-wal compresses on the client: drop the "server-" prefix');
    compression = r.spec.algorithm === 'none' ? undefined : r.spec;
  }

  const connection = parseConnectionFlags(PROG, args);
  if (connection.connectionString !== undefined) {
    let replication: string | undefined;
    try {
      replication = parseConnectionString(connection.connectionString)['replication'];
    } catch {
      // Reported with the connection's own message when connecting.
    }
    if (replication !== undefined && replication.toLowerCase() === 'database') {
      throw usage(
        'the connection string asks for a database-specific replication connection (replication=database): ' +
          'receive-wal needs a physical one; remove the replication keyword',
      );
    }
  }

  const out: ReceiveWalCliOptions = {
    action: createSlot ? 'create-slot' : dropSlot ? 'drop-slot' : 'stream',
    ifNotExists: args.has('ifNotExists'),
    loop: !args.has('noLoop'),
    sync: !noSync,
    synchronous,
    statusIntervalMs,
    compression,
    verbose: args.count('verbose'),
    json: args.has('json'),
    connection,
  };
  if (directory !== undefined) out.directory = directory;
  const repo = args.last('repo');
  if (repo !== undefined) out.repo = repo;
  const spool = args.last('spool');
  if (spool !== undefined) out.spool = spool;
  if (endLsn !== undefined) out.endLsn = endLsn;
  if (slot !== undefined) out.slot = slot;
  return { kind: 'run', options: out };
}

/** Where `pgbb receive-wal` archives. */
export type ReceiveWalTarget = { kind: 'directory'; directory: string } | { kind: 'repository'; address: string };

/**
 * The target of a streaming command line: `-D`, else `--repo`, else `PGBB_REPO`; and the rules of a
 * repository target (a slot, so that the server keeps WAL until it is stored; no `--no-sync`). Throws
 * {@link UsageError}.
 */
export function receiveWalTarget(cli: ReceiveWalCliOptions, env: Readonly<Record<string, string | undefined>>): ReceiveWalTarget {
  const usage = (message: string) => new UsageError(PROG, message);
  if (cli.directory !== undefined) {
    if (cli.repo !== undefined) throw usage('cannot use -D/--directory together with --repo');
    if (cli.spool !== undefined) throw usage('--spool needs a repository (--repo)');
    return { kind: 'directory', directory: cli.directory };
  }
  const address = cli.repo ?? (env['PGBB_REPO'] || undefined);
  if (address === undefined || address === '') throw usage('no target directory specified');
  if (cli.slot === undefined) {
    throw usage('--repo needs a replication slot (-S): the slot keeps WAL on the server until it is stored in the repository');
  }
  if (!cli.sync) throw usage('cannot use --no-sync with a repository: a segment counts as received once it is stored');
  return { kind: 'repository', address };
}

/** LSNs as `X/X` and errors as messages: an event as one JSON object. */
export function eventToJson(ev: ReceiveWalEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { event: ev.type };
  for (const [k, v] of Object.entries(ev)) {
    if (k === 'type') continue;
    out[k] = typeof v === 'bigint' ? formatLsn(v) : v instanceof Error ? v.message : v;
  }
  return out;
}

/** The `-v` line pg_receivewal prints for an event (or a warning for reconnections), if any. */
function describeEvent(ev: ReceiveWalEvent, reporter: Reporter, compression: CompressionSpec | undefined): void {
  switch (ev.type) {
    case 'connected':
      reporter.info(`starting log streaming at ${formatLsn(ev.startLsn)} (timeline ${ev.startTimeline})`);
      break;
    case 'segment-completed':
      reporter.info(`finished segment at ${formatLsn(ev.endLsn)} (timeline ${ev.timeline})`);
      break;
    case 'segment-partial':
      reporter.info(`not renaming "${ev.segment}${COMPRESSION_SUFFIX[compression?.algorithm ?? 'none']}.partial", segment is not complete`);
      break;
    case 'timeline-switch':
      reporter.info(`switched to timeline ${ev.to} at ${formatLsn(ev.switchLsn)}`);
      break;
    case 'reconnecting':
      reporter.warning(`${ev.error.message}`);
      reporter.warning(`disconnected; waiting ${(ev.delayMs / 1000).toFixed(ev.delayMs % 1000 === 0 ? 0 : 1)} seconds to try again`);
      break;
    case 'warning':
      reporter.warning(ev.message);
      break;
    case 'stopped':
      if (ev.reason === 'aborted') reporter.info('received interrupt signal, exiting');
      else if (ev.reason === 'end-lsn') reporter.info('end position reached');
      break;
    default:
      break;
  }
}

async function manageSlot(cli: ReceiveWalCliOptions, connection: ConnectionOptions, reporter: Reporter): Promise<void> {
  const slot = cli.slot!;
  const conn = await ReplicationConnection.connect(connection);
  try {
    const signal = connection.signal;
    const opts = signal ? { signal } : {};
    if (cli.action === 'drop-slot') {
      reporter.info(`dropping replication slot "${slot}"`);
      await dropReplicationSlot(conn, slot, opts);
      return;
    }
    reporter.info(`creating replication slot "${slot}"`);
    try {
      // Reserving WAL at once (pg_receivewal does not) keeps what is written before the first run.
      await createReplicationSlot(conn, { name: slot, reserveWal: true, ...opts });
    } catch (err) {
      if (cli.ifNotExists && err instanceof ServerError && err.sqlState === '42710') {
        reporter.info(`replication slot "${slot}" already exists`);
        return;
      }
      throw err;
    }
  } finally {
    await conn.close();
  }
}

async function stream(
  cli: ReceiveWalCliOptions,
  target: ReceiveWalTarget,
  connection: ConnectionOptions,
  ctx: CliContext,
  reporter: Reporter,
): Promise<Record<string, unknown>> {
  if (target.kind === 'directory') {
    return receive(
      cli,
      {
        connection,
        directory: target.directory,
        ...(cli.compression !== undefined ? { compression: cli.compression } : {}),
        fsync: cli.sync,
      },
      ctx,
      reporter,
    );
  }
  // The repository code (and the storage clients behind it) is loaded only for --repo.
  const { defaultWalSpoolDirectory, openRepository, RepositoryWalStore } = await import('../entries/repository.js');
  await using repository = await openRepository(target.address);
  const spoolDirectory = cli.spool ?? defaultWalSpoolDirectory(repository.location, cli.slot, ctx.env);
  if (cli.verbose > 0 && !cli.json) reporter.info(`archiving into ${repository.location}, spool "${spoolDirectory}"`);
  const store = new RepositoryWalStore(repository, { spoolDirectory, compression: cli.compression });
  return receive(cli, { connection, store }, ctx, reporter);
}

async function receive(
  cli: ReceiveWalCliOptions,
  where: Pick<ReceiveWalOptions, 'connection' | 'directory' | 'store' | 'compression' | 'fsync'>,
  ctx: CliContext,
  reporter: Reporter,
): Promise<Record<string, unknown>> {
  const receiver = receiveWal({
    ...where,
    ...(cli.slot !== undefined ? { slotName: cli.slot } : {}),
    ...(cli.endLsn !== undefined ? { endLsn: cli.endLsn } : {}),
    statusIntervalMs: cli.statusIntervalMs,
    synchronous: cli.synchronous,
    reconnect: cli.loop,
    // Only --json prints the checksums: without it, hashing would be work nobody reads.
    segmentChecksums: cli.json,
    signal: ctx.signal,
  });
  let segments = 0;
  let last: ReceiveWalEvent | undefined;
  for await (const ev of receiver) {
    last = ev;
    if (ev.type === 'segment-completed') segments++;
    // Status updates go out every few seconds, and after every message with --synchronous: only with -v.
    const quiet = ev.type === 'stopped' || (ev.type === 'status-reported' && cli.verbose === 0);
    if (cli.json && !quiet) ctx.stdout.write(`${JSON.stringify(eventToJson(ev))}\n`);
    else if (!cli.json) describeEvent(ev, reporter, where.directory !== undefined ? cli.compression : undefined);
  }
  const stopped = last?.type === 'stopped' ? last : undefined;
  return {
    reason: stopped?.reason ?? 'stopped',
    position: stopped?.position !== undefined ? formatLsn(stopped.position) : null,
    timeline: stopped?.timeline ?? null,
    segmentsCompleted: segments,
  };
}

/** `pgbb receive-wal`. */
export const receiveWalCommand = defineCommand<ReceiveWalCliOptions>({
  name: 'receive-wal',
  spec: RECEIVE_WAL_COMMAND,
  parse: parseReceiveWalCommandLine,
  reporting: (cli) => ({ json: cli.json, verbose: cli.verbose, connectionString: cli.connection.connectionString }),
  async execute(cli, { ctx, reporter, addSecret }) {
    const target = cli.action === 'stream' ? receiveWalTarget(cli, ctx.env) : undefined;
    const password = await maybePromptPassword(cli.connection, ctx);
    addSecret(password);
    const connection = connectionOptionsFromFlags(cli.connection, ctx, { password });
    if (target === undefined) {
      await manageSlot(cli, connection, reporter);
      reporter.done({ action: cli.action, slot: cli.slot });
      return 0;
    }
    reporter.done(await stream(cli, target, connection, ctx, reporter));
    return 0;
  },
});
