import { describe, expect, it } from 'vitest';
import { formatHelp, type CommandSpec } from '../../../src/cli/args.js';
import { BACKUP_COMMAND } from '../../../src/cli/backup-flags.js';
import { COMBINE_COMMAND } from '../../../src/cli/combine.js';
import type { CliContext } from '../../../src/cli/context.js';
import { IDENTIFY_COMMAND } from '../../../src/cli/identify.js';
import { COMMANDS as ALL, runCli } from '../../../src/cli/run.js';
import { VERIFY_COMMAND } from '../../../src/cli/verify.js';

function context() {
  const out = { stdout: '', stderr: '' };
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
      isTTY: false,
    },
    stdin: { isTTY: false, on: () => undefined, removeListener: () => undefined } as unknown as CliContext['stdin'],
    env: {},
    signal: new AbortController().signal,
    version: '9.9.9',
    lib: {
      identify: async () => {
        throw new Error('not called');
      },
      backup: async () => {
        throw new Error('not called');
      },
    },
    now: () => 0,
  };
  return { ctx, out };
}

const COMMANDS: [string, CommandSpec][] = [
  ['identify', IDENTIFY_COMMAND],
  ['backup', BACKUP_COMMAND],
  ['verify', VERIFY_COMMAND],
  ['combine', COMBINE_COMMAND],
];

describe('every command: --help, --version and usage errors', () => {
  for (const [name, spec] of COMMANDS) {
    it(`pgbb ${name}`, async () => {
      const help = context();
      expect(await runCli([name, '--help'], help.ctx)).toBe(0);
      expect(help.out).toEqual({ stdout: formatHelp(spec), stderr: '' });

      const version = context();
      expect(await runCli([name, '-V'], version.ctx)).toBe(0);
      expect(version.out).toEqual({ stdout: 'pgbb (pg-basebackup) 9.9.9\n', stderr: '' });

      const bad = context();
      expect(await runCli([name, '--no-such-option'], bad.ctx)).toBe(1);
      expect(bad.out).toEqual({
        stdout: '',
        stderr: `pgbb ${name}: unrecognized option "--no-such-option"\nTry "pgbb ${name} --help" for more information.\n`,
      });

      const json = context();
      expect(await runCli([name, '--json', '--no-such-option'], json.ctx)).toBe(1);
      const event = JSON.parse(json.out.stdout.trim().split('\n').at(-1)!) as { event: string; code: string };
      expect(event.event).toBe('error');
      expect(event.code).toBe('ERR_PGBB_CONFIG');
    });
  }

  it('option checks: verify and combine report them under their own names, the others as pgbb', async () => {
    const verify = context();
    expect(await runCli(['verify'], verify.ctx)).toBe(1);
    expect(verify.out.stderr).toBe(
      'pgbb verify: error: no backup directory specified\n' + 'pgbb verify: hint: Try "pgbb verify --help" for more information.\n',
    );
    const combine = context();
    expect(await runCli(['combine', 'full'], combine.ctx)).toBe(1);
    expect(combine.out.stderr).toBe(
      'pgbb combine: error: no output directory specified\n' + 'pgbb combine: hint: Try "pgbb combine --help" for more information.\n',
    );
    const identify = context();
    expect(await runCli(['identify', 'x'], identify.ctx)).toBe(1);
    expect(identify.out.stderr).toBe(
      'pgbb: error: too many command-line arguments (first is "x")\n' + 'pgbb: hint: Try "pgbb identify --help" for more information.\n',
    );
  });
});

describe('--help', () => {
  it('ends with examples for every command', async () => {
    for (const [name, spec] of COMMANDS) {
      const { ctx, out } = context();
      expect(await runCli([name, '--help'], ctx)).toBe(0);
      expect(out.stdout).toMatch(/\nExamples:\n {2}# .+\n {2}pgbb /);
      expect(spec.examples?.length).toBeGreaterThan(0);
      // Every example is a command line its own parser accepts (shell words, up to a pipe).
      const command = await ALL.find((c) => c.name === name)!.load();
      for (const e of spec.examples ?? []) {
        const words = [...e.command.split('|')[0]!.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
        expect(words.slice(0, 2)).toEqual(['pgbb', name]);
        expect(command.parse(words.slice(2)).kind, e.command).toBe('run');
      }
    }
  });
});
