// `pgbb restore-wal` exit statuses for what needs no server: not in the archive is 1; bad arguments, a
// name that is not a WAL file and an unreadable archive are 126 (PostgreSQL stops recovery above 125).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultLibrary } from '../../../src/cli/library.js';
import { runCli } from '../../../src/cli/run.js';
import { parseRestoreWalCommandLine } from '../../../src/cli/restore-wal.js';

function ctx() {
  let out = '';
  let err = '';
  const c = {
    stdout: {
      write: (s: string | Uint8Array) => {
        out += String(s);
      },
    },
    stderr: {
      write: (s: string) => {
        err += s;
      },
    },
    stdin: process.stdin,
    env: {},
    signal: new AbortController().signal,
    version: 'test',
    lib: defaultLibrary,
  };
  return { c, out: () => out, err: () => err };
}

describe('pgbb restore-wal', () => {
  it('parses FILE DEST --wal-archive DIR', () => {
    expect(parseRestoreWalCommandLine(['A', 'B', '--wal-archive', '/x', '--no-sync'])).toEqual({
      kind: 'run',
      options: { fileName: 'A', destination: 'B', archive: { kind: 'directory', dir: '/x' }, noSync: true, json: false },
    });
  });

  it('parses FILE DEST --repo REPO, and refuses --repo with --wal-archive', () => {
    expect(parseRestoreWalCommandLine(['A', 'B', '--repo', 's3://b/p?endpoint=http://127.0.0.1:1'])).toEqual({
      kind: 'run',
      options: {
        fileName: 'A',
        destination: 'B',
        archive: { kind: 'repository', address: 's3://b/p?endpoint=http://127.0.0.1:1' },
        noSync: false,
        json: false,
      },
    });
    expect(() => parseRestoreWalCommandLine(['A', 'B', '--repo', '/r', '--wal-archive', '/x'])).toThrow(/cannot be used together/);
  });

  it('exits 1 for a file the archive lacks, 126 for bad arguments, a bad name or an unreadable archive', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgbb-rw-'));
    const dest = join(dir, 'out');
    let t = ctx();
    expect(await runCli(['restore-wal', '000000010000000000000003', dest, '--wal-archive', dir], t.c)).toBe(1);
    expect(t.err()).toMatch(/000000010000000000000003 is not in the WAL archive/);
    t = ctx();
    expect(await runCli(['restore-wal', '000000010000000000000003', dest], t.c)).toBe(126);
    expect(t.err()).toMatch(/--wal-archive/);
    t = ctx();
    expect(await runCli(['restore-wal', '../../etc/passwd', dest, '--wal-archive', dir], t.c)).toBe(126);
    expect(t.err()).toMatch(/not a WAL file name/);
    t = ctx();
    expect(await runCli(['restore-wal', '000000010000000000000003', dest, '--wal-archive', join(dir, 'none')], t.c)).toBe(126);
    expect(t.err()).toMatch(/cannot read the WAL archive/);
    await writeFile(join(dir, '000000010000000000000004'), Buffer.alloc(100));
    t = ctx();
    expect(await runCli(['restore-wal', '000000010000000000000004', dest, '--wal-archive', dir], t.c)).toBe(126);
    expect(t.err()).toMatch(/first page is empty/);
  });
});
