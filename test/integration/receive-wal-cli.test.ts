// The built `pgbb receive-wal` against real servers (1 MB segments): option conflicts exit 1
// before connecting, --create-slot / --drop-slot (and --if-not-exists), a run to --endpos with
// --json events, and SIGINT/SIGTERM ending a run with status 0 and a durable .partial.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatLsn, runBackup } from '../../src/index.js';
import { ReplicationConnection } from '../../src/entries/connection.js';
import { createReplicationSlot } from '../../src/entries/replication.js';
import { makeTempDir, ROLES, startCluster, type Cluster } from '../harness/index.js';
import { trustTcp } from '../harness/suite.js';
import {
  expectContiguous,
  expectSameAsServer,
  modeOf,
  runOverWal,
  SEG,
  serverSegment,
  slotStartSupported,
  sha256,
  walCluster,
  WAL_MAJORS_15_17,
  walTestMajors,
} from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');
const majors = walTestMajors(WAL_MAJORS_15_17);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pgbb(args: string[], o: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  const child = spawn(process.execPath, [cliPath, 'receive-wal', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    o.onStdout?.(stdout, child);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const conn = (c: Cluster) => ['-h', c.host, '-p', String(c.port), '-U', ROLES.trust, '-w'];
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(() => {
  if (!existsSync(cliPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
}, 180_000);

describe('pgbb receive-wal option conflicts', () => {
  for (const [args, message] of [
    [[], 'no target directory specified'],
    [['--create-slot'], '--create-slot needs a slot to be specified using --slot'],
    [['--drop-slot'], '--drop-slot needs a slot to be specified using --slot'],
    [['--create-slot', '--drop-slot', '-S', 's'], 'cannot use --create-slot together with --drop-slot'],
    [['-D', '/nonexistent/x', '--synchronous', '--no-sync'], 'cannot use --synchronous together with --no-sync'],
    [['-D', '/nonexistent/x', '-Z', 'none:1'], 'compression algorithm "none" does not accept a compression level'],
  ] as const) {
    it(`exits 1 for ${args.join(' ') || 'no options'}`, async () => {
      const r = await pgbb([...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
    });
  }
});

describe('pgbb receive-wal --help, --version, an unknown option', () => {
  it('prints help and version with status 0 and refuses an unknown option with status 1', async () => {
    const help = await pgbb(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage:/m);
    expect(help.stdout).toContain('--create-slot');
    const version = await pgbb(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^pgbb \(pg-basebackup\) \d+\.\d+\.\d+/);
    const bogus = await pgbb(['--bogus']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain('unrecognized option "--bogus"');
    expect(bogus.stdout).toBe('');
  });
});

describe.concurrent('pgbb receive-wal', () => {
  for (const major of majors) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let c: Cluster;
      let tmp: string;
      beforeAll(async () => {
        c = await walCluster(major);
        tmp = await makeTempDir(`receive-wal-cli-${major}`);
      }, 300_000);
      afterAll(async () => {
        await c?.destroy();
      });

      const slotExists = async (name: string) =>
        (await c.sql<{ n: number }>('select count(*)::int n from pg_replication_slots where slot_name = $1', [name]))[0]!.n === 1;

      it('creates and drops a slot (--if-not-exists tolerates an existing one)', async () => {
        expect((await pgbb(['--create-slot', '-S', 'cli_slot', ...conn(c)])).code).toBe(0);
        // Physical, and (unlike pg_receivewal's, whose restart position stays null) reserving WAL at once.
        const [slot] = await c.sql<{ t: string; r: string | null }>(
          `select slot_type t, restart_lsn::text r from pg_replication_slots where slot_name = 'cli_slot'`,
        );
        expect(slot).toMatchObject({ t: 'physical' });
        expect(slot!.r).not.toBeNull();
        const again = await pgbb(['--create-slot', '-S', 'cli_slot', ...conn(c)]);
        expect(again.code).toBe(1);
        expect(again.stderr).toMatch(/already exists/);
        expect((await pgbb(['--create-slot', '--if-not-exists', '-S', 'cli_slot', ...conn(c)])).code).toBe(0);
        expect((await pgbb(['--drop-slot', '-S', 'cli_slot', ...conn(c)])).code).toBe(0);
        expect(await slotExists('cli_slot')).toBe(false);
      });

      it('archives through a slot up to --endpos with --json events and zstd', async () => {
        const dir = join(tmp, 'endpos');
        expect((await pgbb(['--create-slot', '-S', 'cli_arch', ...conn(c)])).code).toBe(0);
        const r = await runOverWal(c, 2, slotStartSupported(major), (endLsn) => {
          let connected: () => void = () => undefined;
          const seen = new Promise<void>((resolve) => {
            connected = resolve;
          });
          const done = pgbb(['-D', dir, '-S', 'cli_arch', '-E', formatLsn(endLsn), '--json', '-Z', 'zstd', ...conn(c)], {
            onStdout: (text) => {
              if (jsonLines(text).some((e) => e.event === 'connected')) connected();
            },
          });
          return { connected: seen, done };
        });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const events = jsonLines(r.stdout);
        expect(events[0]).toMatchObject({ event: 'connected', startFrom: slotStartSupported(major) ? 'slot' : 'server' });
        const done = events.filter((e) => e.event === 'segment-completed');
        expect(done.length).toBeGreaterThanOrEqual(2);
        expect(expectSameAsServer(c, done as { segment: string; sha256: string }[])).toBe(done.length);
        expect(events.at(-1)).toMatchObject({ event: 'done', reason: 'end-lsn' });
        const files = readdirSync(dir);
        expect(files.filter((f) => f.endsWith('.zst.partial'))).toHaveLength(1);
        for (const f of files.filter((x) => x.endsWith('.zst'))) {
          execFileSync('zstd', ['-t', '-q', join(dir, f)]);
          expect(execFileSync('zstd', ['-dc', join(dir, f)], { maxBuffer: 4 * SEG }).length).toBe(SEG);
        }
        for (const f of files) expect(modeOf(join(dir, f)), f).toBe(0o600);
        expect(modeOf(dir)).toBe(0o700);
        expect((await pgbb(['--drop-slot', '-S', 'cli_arch', ...conn(c)])).code).toBe(0);
      });

      // pg_receivewal's own test (020_pg_receivewal.pl), step by step: each run ends at --endpos just past a
      // WAL switch, so that it completes the previous run's .partial and leaves one .partial of its own.
      it('one .partial with --synchronous -n; gzip:1, lz4, then none complete the previous .partial under their own name', async () => {
        const dir = join(tmp, 'sequence');
        const step = async (args: string[]) => {
          await c.sql('select pg_switch_wal()');
          const [next] = await c.sql<{ l: string }>('select pg_current_wal_insert_lsn()::text l');
          await c.sql(`insert into t values (1, 'step')`);
          const r = await pgbb(['-D', dir, '-v', '--endpos', next!.l, '--no-loop', ...args, ...conn(c)]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stderr).toContain('end position reached');
          const files = readdirSync(dir);
          const partials = files.filter((f) => f.endsWith('.partial'));
          expect(partials, files.join(' ')).toHaveLength(1);
          return { files, partial: partials[0]! };
        };
        const first = await step(['--synchronous']);
        expect(first.partial).toMatch(/^[0-9A-F]{24}\.partial$/);

        const gz = await step(['--compress', 'gzip:1']);
        expect(gz.files.filter((f) => f.endsWith('.gz'))).toEqual([`${first.partial.slice(0, 24)}.gz`]);
        expect(gz.partial).toMatch(/^[0-9A-F]{24}\.gz\.partial$/);
        execFileSync('gzip', ['--test', join(dir, `${first.partial.slice(0, 24)}.gz`)]);

        const lz4 = await step(['--compress', 'lz4']);
        expect(lz4.files.filter((f) => f.endsWith('.lz4'))).toEqual([`${gz.partial.slice(0, 24)}.lz4`]);
        expect(lz4.partial).toMatch(/^[0-9A-F]{24}\.lz4\.partial$/);
        execFileSync('lz4', ['-t', join(dir, `${gz.partial.slice(0, 24)}.lz4`)]);

        const none = await step([]);
        expect(none.files).toContain(lz4.partial.slice(0, 24));
        expect(none.partial).toMatch(/^[0-9A-F]{24}\.partial$/);
        // Four consecutive segments, each complete segment decompressing to the server's bytes.
        const names = [first, gz, lz4, none].map((x) => x.partial.slice(0, 24));
        expectContiguous(names);
        for (const [name, file, tool] of [
          [names[0]!, `${names[0]}.gz`, 'gzip'],
          [names[1]!, `${names[1]}.lz4`, 'lz4'],
          [names[2]!, names[2]!, 'cat'],
        ] as const) {
          const bytes = execFileSync(tool, tool === 'cat' ? [join(dir, file)] : ['-dc', join(dir, file)], { maxBuffer: 4 * SEG });
          const server = serverSegment(c, name);
          if (server) expect(sha256(bytes), name).toBe(sha256(server));
          else expect(bytes.length).toBe(SEG);
        }
        expect(modeOf(dir)).toBe(0o700);
        for (const f of readdirSync(dir)) expect(modeOf(join(dir, f)), f).toBe(0o600);
      });

      it("starts at a slot's restart position (15+); a slot that does not exist is refused", async () => {
        const dir = join(tmp, 'slot-start');
        await c.sql('checkpoint');
        await c.sql(`select pg_create_physical_replication_slot('archive_slot', true)`);
        try {
          const [slot] = await c.sql<{ f: string }>(
            `select pg_walfile_name(restart_lsn) f from pg_replication_slots where slot_name = 'archive_slot'`,
          );
          await c.sql(`insert into t values (5, 'slot')`);
          await c.sql('select pg_switch_wal()');
          const [next] = await c.sql<{ l: string }>('select pg_current_wal_insert_lsn()::text l');
          await c.sql(`insert into t values (6, 'slot')`);
          const common = ['-D', dir, '-n', '--no-sync', '--endpos', next!.l, '--json', ...conn(c)];
          const missing = await pgbb(['--slot', 'nonexistentslot', ...common]);
          expect(missing.code).toBe(1);
          // 15+: READ_REPLICATION_SLOT finds no slot; 13/14: START_REPLICATION fails with the server's message.
          expect(missing.stderr).toContain(
            slotStartSupported(major)
              ? 'the server has no replication slot "nonexistentslot"'
              : 'replication slot "nonexistentslot" does not exist',
          );
          const r = await pgbb(['--slot', 'archive_slot', ...common]);
          expect(r.code, r.stderr).toBe(0);
          const connected = jsonLines(r.stdout).find((e) => e.event === 'connected');
          if (slotStartSupported(major)) {
            // READ_REPLICATION_SLOT (15+) gives the slot's restart position.
            expect(connected).toMatchObject({ startFrom: 'slot' });
            expect(existsSync(join(dir, slot!.f)), readdirSync(dir).join(' ')).toBe(true);
          } else {
            // 13 and 14 have no READ_REPLICATION_SLOT: pg_receivewal too starts at the server's position.
            expect(connected).toMatchObject({ startFrom: 'server' });
          }
        } finally {
          await c.sql(`select pg_drop_replication_slot('archive_slot')`);
        }
      });

      it("resumes from a promoted standby's slot: timeline 1's segment before the promotion, timeline 2's after, 00000002.history", async () => {
        const standbyDir = join(await makeTempDir(`receive-wal-cli-standby-${major}`), 'data');
        await runBackup({
          connection: trustTcp(c),
          checkpoint: 'fast',
          noSync: true,
          writeRecoveryConf: true,
          output: { format: 'plain', directory: standbyDir },
        });
        const standby = await startCluster({ major, dataDir: standbyDir, ssl: false });
        try {
          const repl = await ReplicationConnection.connect(trustTcp(standby));
          try {
            await createReplicationSlot(repl, { name: 'archive_slot', reserveWal: true });
          } finally {
            await repl.close();
          }
          await c.sql(`insert into t values (7, 'standby')`);
          const [p] = await c.sql<{ l: string }>('select pg_current_wal_lsn()::text l');
          await vi.waitFor(
            async () => {
              const [r] = await standby.sql<{ ok: boolean }>(`select pg_last_wal_replay_lsn() >= '${p!.l}'::pg_lsn ok`);
              expect(r!.ok).toBe(true);
            },
            { timeout: 30_000, interval: 100 },
          );
          const [slot] = await standby.sql<{ r: string }>(
            `select restart_lsn::text r from pg_replication_slots where slot_name = 'archive_slot'`,
          );
          // pg_walfile_name() is refused during recovery: the primary names the (shared) timeline 1 segment.
          const [before] = await c.sql<{ f: string }>(`select pg_walfile_name('${slot!.r}') f`);
          await standby.sql('select pg_promote()');
          const [after] = await standby.sql<{ f: string }>('select pg_walfile_name(pg_current_wal_insert_lsn()) f');
          await standby.sql(`insert into t values (8, 'promoted')`);
          await standby.sql('select pg_switch_wal()');
          const [next] = await standby.sql<{ l: string }>('select pg_current_wal_insert_lsn()::text l');
          await standby.sql(`insert into t values (9, 'promoted')`);
          const dir = join(tmp, 'timeline');
          const r = await pgbb([
            '-D',
            dir,
            '-v',
            '--endpos',
            next!.l,
            '--slot',
            'archive_slot',
            '--no-sync',
            '-n',
            '-h',
            standby.host,
            '-p',
            String(standby.port),
            '-U',
            ROLES.trust,
            '-w',
          ]);
          expect(r.code, r.stderr).toBe(0);
          const files = readdirSync(dir);
          expect(files).toContain('00000002.history');
          expect(after!.f.startsWith('00000002')).toBe(true);
          if (slotStartSupported(major)) {
            expect(files, `${before!.f} in ${files.join(' ')}`).toContain(before!.f);
            expect(files).toContain(after!.f);
            expect(r.stderr).toMatch(/switched to timeline 2 at/);
          } else {
            // 13/14 start at the server's position, already on timeline 2: its history file, then its WAL.
            expect(r.stderr).toMatch(/starting log streaming at [0-9A-F]+\/[0-9A-F]+ \(timeline 2\)/);
            expect(files.filter((f) => f.startsWith('00000002') && f.endsWith('.partial'))).toHaveLength(1);
          }
        } finally {
          await standby.destroy();
        }
      });

      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        it(`stops on ${signal} with status 0, keeping the current segment as a durable .partial`, async () => {
          const dir = join(tmp, `signal-${signal}`);
          // The server's position must be inside a segment, so that streaming from its start sends WAL at once.
          await c.sql(`insert into t select g, 's' from generate_series(1, 100) g`);
          let sent = false;
          const r = await pgbb(['-D', dir, '--json', '-s', '1', ...conn(c)], {
            onStdout: (text, child) => {
              if (!sent && jsonLines(text).some((e) => e.event === 'segment-started')) {
                sent = true;
                child.kill(signal);
              }
            },
          });
          expect(r.code, r.stderr).toBe(0);
          const events = jsonLines(r.stdout);
          expect(events.at(-1)).toMatchObject({ event: 'done', reason: 'aborted' });
          expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toHaveLength(1);
        });
      }
    });
  }
});
