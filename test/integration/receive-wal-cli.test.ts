// The built `pgbb receive-wal` against real servers (1 MB segments): option conflicts exit 1
// before connecting, --create-slot / --drop-slot (and --if-not-exists), a run to --endpos with
// --json events, and SIGINT/SIGTERM ending a run with status 0 and a durable .partial.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, ROLES, testMajors, type Cluster } from '../harness/index.js';
import { expectSameAsServer, makeWal, modeOf, SEG, walCluster } from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');
const majors =
  testMajors().filter((m) => m === 15 || m === 17).length > 0 ? testMajors().filter((m) => m === 15 || m === 17) : testMajors();

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
        expect(await slotExists('cli_slot')).toBe(true);
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
        await makeWal(c, 2);
        await c.sql(`insert into t select g, 'e' from generate_series(1, 100) g`);
        const [cur] = await c.sql<{ l: string }>('select pg_current_wal_lsn()::text l');
        const r = await pgbb(['-D', dir, '-S', 'cli_arch', '-E', cur!.l, '--json', '-Z', 'zstd', ...conn(c)]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const events = jsonLines(r.stdout);
        expect(events[0]).toMatchObject({ event: 'connected', startFrom: 'slot' });
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
