/**
 * The rehearsal's server: `postgres` started on the restored data directory with overrides that keep it
 * away from production (private Unix socket, no TCP listener, no archiving, no replication connection
 * out, its own pg_hba.conf), watched through its log on stderr, and stopped for sure.
 *
 * The log is how the rehearsal learns that recovery ended: "database system is ready to accept
 * connections" (without "read-only") is logged once the server is out of recovery, and a server that
 * cannot recover exits. Messages are forced to English (lc_messages = C) so that these lines can be read.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { RehearsalError } from '../errors.js';
import type { OsIdentity } from './run-as.js';
import type { ScratchDir } from './scratch.js';

/** How much of the server's log is kept for messages. */
const LOG_TAIL_BYTES = 64 * 1024;
/** How long a fast shutdown may take before the server is killed. */
const STOP_GRACE_MS = 30_000;

/** The settings that keep the rehearsal's server to itself; they override the backup's configuration. */
export function safeSettings(s: ScratchDir, port: number, major: number): Record<string, string> {
  return {
    // A configuration copied from elsewhere could name the production data directory, pid file or
    // statistics directory: everything the server writes stays in the scratch directory.
    data_directory: s.dataDir,
    external_pid_file: '',
    ...(major <= 14 ? { stats_temp_directory: 'pg_stat_tmp' } : {}),
    listen_addresses: '',
    port: String(port),
    unix_socket_directories: s.socketDir,
    unix_socket_permissions: '0700',
    hba_file: s.hbaFile,
    ident_file: s.identFile,
    archive_mode: 'off',
    primary_conninfo: '',
    primary_slot_name: '',
    // max_wal_senders and max_replication_slots stay as backed up: recovery checks them against the
    // primary's. No replication connection can come in anyway (pg_hba.conf has no replication line).
    shared_buffers: '32MB',
    logging_collector: 'off',
    log_destination: 'stderr',
    lc_messages: 'C',
    // Nothing connects before recovery ends, and without hot standby recovery does not pause on
    // settings lower than the primary's (max_connections and friends).
    hot_standby: 'off',
    ssl: 'off',
    // Do not wait for the disk: the directory is thrown away.
    fsync: 'off',
    synchronous_commit: 'off',
  };
}

/** A started server. */
export class ScratchServer {
  readonly #child: ChildProcess;
  #log = '';
  #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #readyWaiters: (() => void)[] = [];
  #ready = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#exitInfo = { code, signal };
        resolve({ code, signal });
      });
      child.on('error', () => {
        this.#exitInfo ??= { code: null, signal: null };
        resolve(this.#exitInfo);
      });
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.#onLog(d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.#onLog(d));
  }

  /**
   * Spawn `postgres` (as `runAs` when given). `extra` settings (e.g. the backed-up server's
   * max_connections) are passed too; the safe settings win.
   */
  static start(o: {
    postgres: string;
    scratch: ScratchDir;
    port: number;
    major: number;
    runAs: OsIdentity | undefined;
    extra?: Record<string, string>;
  }): ScratchServer {
    const settings = { ...(o.extra ?? {}), ...safeSettings(o.scratch, o.port, o.major) };
    const args = ['-D', o.scratch.dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
    env.LC_ALL = 'C';
    const child = spawn(o.postgres, args, {
      cwd: o.scratch.root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(o.runAs ? { uid: o.runAs.uid, gid: o.runAs.gid } : {}),
    });
    return new ScratchServer(child);
  }

  /** The server's process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the server process is still running. */
  get running(): boolean {
    return this.#exitInfo === undefined;
  }

  /** The end of the server's log. */
  get log(): string {
    return this.#log;
  }

  #onLog(text: string): void {
    this.#log = (this.#log + text).slice(-LOG_TAIL_BYTES);
    if (!this.#ready && /database system is ready to accept connections/.test(this.#log)) {
      this.#ready = true;
      for (const w of this.#readyWaiters.splice(0)) w();
    }
  }

  /**
   * Resolves once the server is out of recovery and accepts connections; rejects with a
   * {@link RehearsalError} (holding the log's end) when it exits first, or when `signal` aborts.
   */
  async outOfRecovery(signal: AbortSignal): Promise<void> {
    if (this.#ready) return;
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.#readyWaiters.push(resolve)),
        this.#exited.then((e) => {
          if (this.#ready) return;
          throw new RehearsalError(
            `the restored server stopped during recovery (${e.signal ?? `exit ${String(e.code)}`}): ${lastErrors(this.#log)}`,
          );
        }),
        new Promise<never>((_resolve, reject) => {
          onAbort = () => reject(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Stop the server: fast shutdown (SIGINT), then SIGKILL after a grace period. Resolves once the
   * process is gone. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#exitInfo !== undefined) return;
    this.#child.kill('SIGINT');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      await this.#exited;
    } finally {
      clearTimeout(timer);
    }
    // The postmaster waits for its children before it exits after a fast shutdown; after SIGKILL the
    // children notice its death and exit on their own.
  }
}

/** The log's ERROR/FATAL/PANIC lines (the last few), or its last lines. */
export function lastErrors(log: string): string {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => /\b(FATAL|PANIC|ERROR|LOG:\s+.*(?:invalid|missing|could not))\b/.test(l));
  return (errors.length > 0 ? errors : lines).slice(-5).join(' | ');
}
