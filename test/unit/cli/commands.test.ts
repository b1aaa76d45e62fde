import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { parseBackupCommandLine, type BackupCliOptions } from '../../../src/cli/backup-flags.js';
import { mapBackupOptions } from '../../../src/cli/backup.js';
import type { CliContext } from '../../../src/cli/context.js';
import { formatIdentify } from '../../../src/cli/identify.js';
import type { CliLibrary, IdentifyInfo } from '../../../src/cli/library.js';
import { promptPassword } from '../../../src/cli/password.js';
import { COMMANDS, runCli } from '../../../src/cli/run.js';
import {
  AbortError,
  ConfigError,
  ConnectionError,
  parseLsn,
  type BackupProgress,
  type ConnectionOptions,
  type RunBackupOptions,
  type RunBackupResult,
} from '../../../src/index.js';
import { resolveBaseBackupOptions } from '../../../src/backup/options.js';

const RESULT: RunBackupResult = {
  startLsn: parseLsn('0/2000028'),
  startTimeline: 1,
  endLsn: parseLsn('0/2000100'),
  endTimeline: 1,
  manifest: undefined,
  stats: {
    archives: [{ name: 'base.tar', bytes: 2048 }],
    totalBytes: 2048,
    walBytes: undefined,
    durationMs: 5,
    phases: { checkpointMs: 0, dataMs: 5, walMs: 0, manifestMs: 0 },
  },
  checksumFailures: [],
  outputs: ['/tmp/b'],
};

function progress(bytesDone: number, archivesDone: number, finished = false): BackupProgress {
  return {
    bytesDone,
    walBytesDone: 0,
    totalBytes: 2048,
    archive: undefined,
    archivesDone,
    archivesTotal: 1,
    serverBytesDone: undefined,
    phase: finished ? 'done' : 'data',
    finished,
  };
}

const INFO: IdentifyInfo = {
  systemId: '7301234567890123456',
  timeline: 1,
  xlogPos: '0/3000148',
  dbName: null,
  serverVersion: '17.2',
  serverVersionNum: 170002,
};

class FakeStdin extends EventEmitter {
  isTTY: boolean;
  raw: boolean[] = [];
  constructor(isTTY: boolean) {
    super();
    this.isTTY = isTTY;
  }
  setRawMode(mode: boolean) {
    this.raw.push(mode);
    return this;
  }
  resume() {
    return this;
  }
  pause() {
    return this;
  }
}

function context(lib: Partial<CliLibrary> = {}, o: { env?: Record<string, string>; stdinTTY?: boolean; stderrTTY?: boolean } = {}) {
  const out = { stdout: '', stderr: '' };
  const controller = new AbortController();
  const stdin = new FakeStdin(o.stdinTTY ?? false);
  const calls: { identify: ConnectionOptions[]; backup: RunBackupOptions[] } = { identify: [], backup: [] };
  const ctx: CliContext = {
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
      isTTY: o.stderrTTY ?? false,
    },
    stdin,
    env: o.env ?? {},
    signal: controller.signal,
    version: '9.9.9',
    lib: {
      identify:
        lib.identify ??
        (async (opts) => {
          calls.identify.push(opts);
          return INFO;
        }),
      backup:
        lib.backup ??
        (async (options) => {
          calls.backup.push(options);
          // What the library reports, in its order.
          options.onPhase?.({ phase: 'checkpoint', checkpoint: options.checkpoint ?? 'spread' });
          options.onPhase?.({ phase: 'data', checkpoint: options.checkpoint ?? 'spread', startLsn: RESULT.startLsn, timeline: 1 });
          options.onProgress?.(progress(1024, 0));
          options.onProgress?.(progress(2048, 1, true));
          options.onPhase?.({ phase: 'done', checkpoint: options.checkpoint ?? 'spread' });
          return RESULT;
        }),
    },
    now: () => 0,
  };
  return { ctx, out, controller, stdin, calls };
}

describe('pgbb dispatch', () => {
  it('prints help and version', async () => {
    const a = context();
    expect(await runCli(['--help'], a.ctx)).toBe(0);
    expect(a.out.stdout).toContain('  identify  ');
    expect(a.out.stdout).toContain('  backup    ');
    const b = context();
    expect(await runCli(['--version'], b.ctx)).toBe(0);
    expect(b.out.stdout).toBe('pgbb (pg-basebackup) 9.9.9\n');
    const c = context();
    expect(await runCli(['help', 'backup'], c.ctx)).toBe(0);
    expect(c.out.stdout).toContain('pgbb backup takes a base backup');
    const d = context();
    expect(await runCli(['backup', '-V'], d.ctx)).toBe(0);
    expect(d.out.stdout).toBe('pgbb (pg-basebackup) 9.9.9\n');
  });

  it('lists every command with its summary without loading it, and each entry loads the command it names', async () => {
    const a = context();
    expect(await runCli(['--help'], a.ctx)).toBe(0);
    for (const entry of COMMANDS) {
      expect(a.out.stdout).toContain(`  ${entry.name.padEnd(13)}${entry.summary}\n`);
      expect((await entry.load()).name).toBe(entry.name);
    }
  });

  it('refuses no command and unknown commands with exit 1', async () => {
    const a = context();
    expect(await runCli([], a.ctx)).toBe(1);
    expect(a.out.stderr).toBe('pgbb: no command given\nTry "pgbb --help" for more information.\n');
    const b = context();
    expect(await runCli(['bakup'], b.ctx)).toBe(1);
    expect(b.out.stderr).toBe('pgbb: unknown command "bakup"\nTry "pgbb --help" for more information.\n');
  });
});

describe('pgbb identify', () => {
  it('prints the identity', async () => {
    const { ctx, out, calls } = context({}, { env: { PGHOST: 'h' } });
    expect(await runCli(['identify', '-d', 'host=db', '-p', '5433', '-U', 'rep'], ctx)).toBe(0);
    expect(out.stdout).toBe(formatIdentify(INFO));
    expect(out.stdout).toContain('system identifier: 7301234567890123456\n');
    expect(out.stdout).toContain('xlogpos:           0/3000148\n');
    expect(out.stdout).toContain('server version:    17.2 (170002)\n');
    expect(calls.identify[0]).toMatchObject({ connectionString: 'host=db', port: 5433, user: 'rep', env: { PGHOST: 'h' } });
    expect(calls.identify[0]?.signal).toBe(ctx.signal);
    expect(calls.identify[0]?.password).toBeUndefined();
  });

  it('prints JSON', async () => {
    const { ctx, out } = context();
    expect(await runCli(['identify', '--json'], ctx)).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ event: 'done', ...INFO });
  });

  it('reports a failure with exit 1 and without the password', async () => {
    const { ctx, out } = context(
      {
        identify: async (o) => {
          throw new ConnectionError(`could not connect: ${o.connectionString ?? ''} refused`);
        },
      },
      { env: { PGPASSWORD: 'envsecret' } },
    );
    const status = await runCli(['identify', '-d', "host=db password='top secret'", '--json'], ctx);
    expect(status).toBe(1);
    expect(out.stderr).toMatch(/^pgbb: error: could not connect: host=db password=\*+ refused\n$/);
    expect(JSON.parse(out.stdout)).toMatchObject({ event: 'error', code: 'ERR_PGBB_CONNECTION' });
    expect(out.stdout + out.stderr).not.toContain('top secret');
  });

  it('scrubs the connection string from usage errors', async () => {
    const { ctx, out } = context();
    expect(await runCli(['identify', '-d', 'postgresql://u:pw123@db/x', 'extra'], ctx)).toBe(1);
    expect(out.stderr).toBe(
      'pgbb: error: too many command-line arguments (first is "extra")\n' +
        'pgbb: hint: Try "pgbb identify --help" for more information.\n',
    );
  });

  it('-W prompts on a terminal and passes the password', async () => {
    const t = context({}, { stdinTTY: true });
    const run = runCli(['identify', '-W'], t.ctx);
    await vi.waitFor(() => expect(t.out.stderr).toBe('Password: '), { timeout: 5000, interval: 1 });
    t.stdin.emit('data', Buffer.from('pw\u007fW!\r'));
    expect(await run).toBe(0);
    expect(t.calls.identify[0]?.password).toBe('pW!');
    expect(t.out.stderr).toBe('Password: \n');
    expect(t.stdin.raw).toEqual([true, false]);
  });

  it('-W refuses when stdin is not a terminal', async () => {
    const t = context({}, { stdinTTY: false });
    expect(await runCli(['identify', '-W'], t.ctx)).toBe(1);
    expect(t.out.stderr).toMatch(/^pgbb: error: cannot prompt for a password \(-W\): standard input is not a terminal/);
    expect(t.calls.identify).toEqual([]);
  });
});

describe('pgbb backup', () => {
  it('calls the library once with mapped options and reports progress', async () => {
    const { ctx, out, calls } = context();
    expect(await runCli(['backup', '-D', '/tmp/b', '-Ft', '-P', '-v', '-c', 'fast'], ctx)).toBe(0);
    expect(calls.backup).toHaveLength(1);
    expect(calls.backup[0]?.output).toEqual({ format: 'tar', directory: '/tmp/b' });
    expect(calls.backup[0]).toMatchObject({ checkpoint: 'fast', wal: 'stream', tablespaceMap: true, signal: ctx.signal });
    // The start point once (when it arrives), the final progress line once.
    expect(out.stderr).toBe(
      'pgbb: initiating base backup, waiting for checkpoint to complete\n' +
        'pgbb: checkpoint completed\npgbb: write-ahead log start point: 0/2000028 on timeline 1\n' +
        '1/2 kB (50%), 0/1 tablespace\n2/2 kB (100%), 1/1 tablespace\n' +
        'pgbb: write-ahead log end point: 0/2000100\npgbb: base backup completed\n',
    );
    expect(out.stdout).toBe('');
  });

  it('refuses a bad --if-older-than as a usage error before the repository is opened', async () => {
    const { ctx, out, calls } = context();
    const repo = join(tmpdir(), `pgbb-never-created-${process.pid}`);
    expect(await runCli(['backup', '--repo', repo, '--if-older-than', '1x'], ctx)).toBe(1);
    expect(out.stderr).toMatch(/invalid duration "1x"/);
    expect(existsSync(repo)).toBe(false);
    expect(calls.backup).toEqual([]);
  });

  it('is silent on success without -P and -v', async () => {
    const { ctx, out } = context();
    expect(await runCli(['backup', '-D', '/tmp/b'], ctx)).toBe(0);
    expect(out.stderr + out.stdout).toBe('');
  });

  it('writes JSON events', async () => {
    const { ctx, out } = context();
    expect(await runCli(['backup', '-D', '/tmp/b', '--json'], ctx)).toBe(0);
    const events = out.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toEqual(['phase', 'phase', 'progress', 'progress', 'phase', 'progress', 'done']);
    expect(events[2]).toMatchObject({ event: 'progress', bytesDone: 1024, totalBytes: 2048, archivesDone: 0, archivesTotal: 1 });
    expect(events.at(-1)).toEqual({
      event: 'done',
      startLsn: '0/2000028',
      startTimeline: 1,
      endLsn: '0/2000100',
      endTimeline: 1,
      totalBytes: 2048,
      outputs: ['/tmp/b'],
    });
  });

  it('exits 1 on usage errors without calling the library', async () => {
    const { ctx, out, calls } = context();
    expect(await runCli(['backup', '--x'], ctx)).toBe(1);
    expect(out.stderr).toBe('pgbb backup: unrecognized option "--x"\nTry "pgbb backup --help" for more information.\n');
    expect(calls.backup).toEqual([]);
  });

  it('reports an abort as an error with exit 1', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const t = context(
      {
        backup: (options) =>
          new Promise((_resolve, reject) => {
            options.onProgress?.({ ...progress(0, 0), totalBytes: 1024 });
            t.ctx.signal.addEventListener('abort', () => reject(t.ctx.signal.reason));
            started();
          }),
      },
      { stderrTTY: true },
    );
    const run = runCli(['backup', '-D', '/tmp/b', '-P'], t.ctx);
    await running;
    t.controller.abort(new AbortError('interrupted by SIGINT'));
    expect(await run).toBe(1);
    expect(t.out.stderr).toBe('0/1 kB (0%), 0/1 tablespace\r\npgbb: error: interrupted by SIGINT\n');
  });
});

describe('pgbb backup and a forced exit', () => {
  it('registers what a forced exit removes while the library runs, and unregisters it after', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pgbb-cmd-'));
    const dir = join(root, 'data');
    const registered: (() => { removed: string[]; failed: string[]; notes?: string[] })[] = [];
    let seen: ReturnType<(typeof registered)[number]> | undefined;
    const t = context({
      backup: async () => {
        mkdirSync(dir);
        writeFileSync(join(dir, 'backup_label'), 'x');
        // What process.ts runs on a deliberate second interrupt.
        seen = registered[0]?.();
        return RESULT;
      },
    });
    t.ctx.onEmergencyExit = (cleanup) => {
      registered.push(cleanup);
      return () => registered.splice(registered.indexOf(cleanup), 1);
    };
    expect(await runCli(['backup', '-D', dir, '-C', '-S', 'keep_me'], t.ctx)).toBe(0);
    expect(seen?.removed).toEqual([dir]);
    expect(seen?.notes?.[0]).toMatch(/^replication slot "keep_me" created by this run may remain/);
    expect(existsSync(dir)).toBe(false);
    expect(registered).toEqual([]);
  });
});

describe('mapBackupOptions', () => {
  const cli = (...argv: string[]): BackupCliOptions => {
    const r = parseBackupCommandLine(argv);
    if (r.kind !== 'run') throw new Error('not run');
    return r.options;
  };
  const stdout = new PassThrough();
  const map = (...argv: string[]) => mapBackupOptions(cli(...argv), { connection: { host: 'h' }, stdout });

  it('maps the defaults to options the library accepts', () => {
    const options = map('-D', 'out');
    expect(options).toEqual({
      connection: { host: 'h' },
      output: { format: 'plain', directory: 'out' },
      checkpoint: 'spread',
      wal: 'stream',
      tablespaceMap: false,
      manifest: true,
      manifestForceEncode: false,
      verifyChecksums: true,
      estimateSize: true,
      statusIntervalMs: 10_000,
      writeRecoveryConf: false,
      noClean: false,
      noSync: false,
    });
    expect(() => resolveBaseBackupOptions(options)).not.toThrow();
  });

  it('maps every protocol option', () => {
    const options = map(
      '-D',
      'out',
      '-Ft',
      '-r',
      '1M',
      '-l',
      'L',
      '--manifest-checksums=sha512',
      '--manifest-force-encode',
      '--no-verify-checksums',
      '-S',
      'slot_a',
      '-C',
      '-s',
      '3',
      '-c',
      'fast',
    );
    expect(options).toMatchObject({
      label: 'L',
      maxRateKBps: 1024,
      manifestChecksums: 'SHA512',
      manifestForceEncode: true,
      verifyChecksums: false,
      slot: 'slot_a',
      createSlot: true,
      statusIntervalMs: 3000,
      checkpoint: 'fast',
      tablespaceMap: true,
    });
    expect(resolveBaseBackupOptions(options).slot).toEqual({ kind: 'create', name: 'slot_a' });
  });

  it('maps slot choices as pg_basebackup makes them', () => {
    expect(resolveBaseBackupOptions(map('-D', 'o')).slot).toEqual({ kind: 'temporary' });
    expect(resolveBaseBackupOptions(map('-D', 'o', '--no-slot')).slot).toEqual({ kind: 'none' });
    expect(resolveBaseBackupOptions(map('-D', 'o', '-S', 'keep')).slot).toEqual({ kind: 'existing', name: 'keep' });
    expect(resolveBaseBackupOptions(map('-D', 'o', '-Xfetch')).slot).toEqual({ kind: 'none' });
    expect(map('-D', 'o', '-Xnone', '--no-slot').useSlot).toBeUndefined();
  });

  it('maps the output', () => {
    expect(map('-D', '-', '-Ft', '-Xfetch').output).toEqual({ format: 'tar-stream', stream: stdout });
    const options = map('-D', '/d', '-R', '-N', '-n', '-T', '/a=/b', '--waldir', '/w', '-Z', 'server-lz4', '-i', '/m');
    expect(options).toMatchObject({ writeRecoveryConf: true, noSync: true, noClean: true, incrementalManifest: '/m' });
    expect(options.output).toEqual({ format: 'plain', directory: '/d', tablespaceMapping: new Map([['/a', '/b']]), waldir: '/w' });
    expect(options.compression).toMatchObject({ algorithm: 'lz4', location: 'server' });
  });
});

describe('library ConfigErrors are usage errors', () => {
  it('reports one thrown by the library as a usage error of the command', async () => {
    const t = context({
      backup: async () => {
        throw new ConfigError('WAL cannot be streamed into a single tar');
      },
    });
    expect(await runCli(['backup', '-D', '/tmp/b'], t.ctx)).toBe(1);
    expect(t.out.stderr).toBe(
      'pgbb: error: WAL cannot be streamed into a single tar\n' + 'pgbb: hint: Try "pgbb backup --help" for more information.\n',
    );
  });

  it("reports the library's -T parser errors the same way for backup and combine", async () => {
    for (const command of ['backup', 'combine']) {
      const t = context();
      const argv = command === 'backup' ? ['backup', '-D', '/tmp/b', '-T', 'rel=/x'] : ['combine', '/f', '-o', '/o', '-T', 'rel=/x'];
      expect(await runCli(argv, t.ctx)).toBe(1);
      const prog = command === 'backup' ? 'pgbb' : 'pgbb combine';
      expect(t.out.stderr).toBe(
        `${prog}: error: old directory is not an absolute path in tablespace mapping: rel\n` +
          `${prog}: hint: Try "pgbb ${command} --help" for more information.\n`,
      );
    }
  });
});

describe('promptPassword', () => {
  it('handles Ctrl-U and multibyte input, and aborts on Ctrl-C', async () => {
    const stdin = new FakeStdin(true);
    let written = '';
    const p = promptPassword({
      input: stdin,
      output: {
        write: (s: string) => {
          written += s;
        },
      },
      prompt: 'PW: ',
    });
    stdin.emit('data', 'wrong\u0015pässwörd\n');
    expect(await p).toBe('pässwörd');
    expect(written).toBe('PW: \n');
    const q = promptPassword({ input: stdin, output: { write: () => undefined } });
    stdin.emit('data', 'ab\u0003');
    await expect(q).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
  });

  it('aborts on the signal', async () => {
    const stdin = new FakeStdin(true);
    const c = new AbortController();
    const p = promptPassword({ input: stdin, output: { write: () => undefined }, signal: c.signal });
    c.abort();
    await expect(p).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(stdin.listenerCount('data')).toBe(0);
  });
});
