// pgbb combine: pg_combinebackup's flags, messages and exit status, over synthetic backups.
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCombineCommandLine } from '../../../src/cli/combine.js';
import type { CliContext } from '../../../src/cli/context.js';
import { runCli } from '../../../src/cli/run.js';
import { UsageError } from '../../../src/cli/args.js';
import { encodeIncrementalFile } from '../../../src/combine/incremental-file.js';
import { label, writeBackup } from '../combine/fixtures.js';

function context() {
  const out = { stdout: '', stderr: '' };
  const ctx: CliContext = {
    stdout: {
      write: (s: string | Uint8Array) => {
        out.stdout += String(s);
      },
    },
    stderr: {
      write: (s: string) => {
        out.stderr += s;
      },
    },
    stdin: {} as CliContext['stdin'],
    env: {},
    signal: new AbortController().signal,
    version: '0.0.0-test',
    lib: {} as CliContext['lib'],
  };
  return { ctx, out };
}

async function chain(): Promise<{ root: string; full: string; inc: string }> {
  const root = await mkdtemp(join(tmpdir(), 'pgbb-cli-combine-'));
  const full = join(root, 'full');
  const inc = join(root, 'inc');
  await writeBackup(full, { backup_label: label('0/4000028'), 'base/5/100': Buffer.alloc(16384, 'a') }, { start: '0/4000028' });
  await writeBackup(
    inc,
    {
      backup_label: label('0/6000028', '0/4000028'),
      'base/5/INCREMENTAL.100': encodeIncrementalFile([1], 2, [Buffer.alloc(8192, 'b')]),
    },
    { start: '0/6000028' },
  );
  return { root, full, inc };
}

describe('pgbb combine command line', () => {
  it('maps flags to options', () => {
    const r = parseCombineCommandLine(['f', 'i1', 'i2', '-o', 'out', '-n', '-N', '--no-manifest', '-T', '/a=/b', '--copy']);
    expect(r).toEqual({
      kind: 'run',
      options: {
        debug: false,
        json: false,
        combine: {
          backups: ['f', 'i1', 'i2'],
          output: 'out',
          dryRun: true,
          noSync: true,
          manifest: false,
          tablespaceMapping: new Map([['/a', '/b']]),
        },
      },
    });
    const c = parseCombineCommandLine(['f', '--output=o', '--manifest-checksums=sha256', '-d', '--copy-file-range']);
    expect(c.kind === 'run' && c.options.combine.manifestChecksums).toBe('SHA256');
    expect(c.kind === 'run' && c.options.debug).toBe(true);
  });
  it('rejects what pg_combinebackup rejects, and what we do not do', () => {
    expect(() => parseCombineCommandLine(['-o', 'x'])).toThrow(/no input directories specified/);
    expect(() => parseCombineCommandLine(['f'])).toThrow(/no output directory specified/);
    expect(() => parseCombineCommandLine(['f', '-o', 'x', '--manifest-checksums=md5'])).toThrow(/unrecognized checksum algorithm/);
    expect(() => parseCombineCommandLine(['f', '-o', 'x', '--clone'])).toThrow(/--clone is not supported/);
    expect(() => parseCombineCommandLine(['f', '-o', 'x', '-k'])).toThrow(/--link is not supported/);
    expect(() => parseCombineCommandLine(['f', '-o', 'x', '-T', 'rel=/b'])).toThrow(/absolute/);
    expect(() => parseCombineCommandLine(['f', '-o', 'x', '--bogus'])).toThrow(UsageError);
  });
});

describe('pgbb combine', () => {
  it('combines silently and exits 0; the result holds the newest blocks', async () => {
    const { root, full, inc } = await chain();
    const t = context();
    const out = join(root, 'out');
    expect(await runCli(['combine', full, inc, '-o', out], t.ctx)).toBe(0);
    expect(t.out.stdout).toBe('');
    expect(t.out.stderr).toBe('');
    expect(await readFile(join(out, 'base/5/100'))).toEqual(Buffer.concat([Buffer.alloc(8192, 'a'), Buffer.alloc(8192, 'b')]));
  });

  it('-d prints the plan; --json ends with a done event', async () => {
    const { root, full, inc } = await chain();
    const t = context();
    expect(await runCli(['combine', '-d', '-n', full, inc, '-o', join(root, 'o')], t.ctx)).toBe(0);
    expect(t.out.stderr).toMatch(/pgbb combine: would reconstruct .*base\/5\/100" \(2 blocks, checksum CRC32C\)/);
    await expect(stat(join(root, 'o'))).rejects.toThrow();
    const j = context();
    expect(await runCli(['combine', '--json', full, inc, '-o', join(root, 'j')], j.ctx)).toBe(0);
    const last = JSON.parse(j.out.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({ event: 'done', filesReconstructed: 1, manifestWritten: true });
  });

  it('a broken chain exits 1 with the reason', async () => {
    const { root, full, inc } = await chain();
    const t = context();
    expect(await runCli(['combine', inc, full, '-o', join(root, 'bad')], t.ctx)).toBe(1);
    expect(t.out.stderr).toMatch(/^pgbb combine: error: backup at ".*" is (an incremental backup|a full backup)/);
  });

  it('--help lists the flags and the command is in pgbb --help', async () => {
    const t = context();
    expect(await runCli(['combine', '--help'], t.ctx)).toBe(0);
    expect(t.out.stdout).toContain('-o, --output=DIRECTORY');
    expect(t.out.stdout).toContain('--manifest-checksums=');
    const m = context();
    await runCli(['--help'], m.ctx);
    expect(m.out.stdout).toMatch(/combine\s+combine a full backup/);
  });
});
