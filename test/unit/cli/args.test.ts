import { describe, expect, it } from 'vitest';
import { formatHelp, parseArgs, rejectOperands, UsageError, type CommandSpec } from '../../../src/cli/args.js';

const spec: CommandSpec = {
  prog: 'pgbb test',
  summary: 'pgbb test does tests.',
  options: [
    { key: 'pgdata', short: 'D', long: 'pgdata', arg: 'required', metavar: 'DIRECTORY', help: 'target' },
    { key: 'format', short: 'F', long: 'format', arg: 'required', metavar: 'p|t', help: 'format' },
    { key: 'walMethod', short: 'X', long: 'wal-method', arg: 'required', help: 'wal' },
    { key: 'verbose', short: 'v', long: 'verbose', help: 'more' },
    { key: 'progress', short: 'P', long: 'progress', help: 'progress' },
    { key: 'recovery', short: 'R', long: 'write-recovery-conf', help: 'recovery' },
    { key: 'mapping', short: 'T', long: 'tablespace-mapping', arg: 'required', help: 'map' },
    { key: 'checksums', long: 'manifest-checksums', arg: 'optional', metavar: 'ALG', help: 'alg' },
    { key: 'opt', short: 'o', long: 'opt', arg: 'optional', help: 'optional short' },
    { key: 'noSlot', long: 'no-slot', help: 'no slot', group: 'General' },
    { key: 'noSync', long: 'no-sync', help: 'no sync', group: 'General' },
    { key: 'help', short: '?', long: 'help', help: 'help', group: 'General' },
  ],
};

const parse = (...argv: string[]) => parseArgs(spec, argv);

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseArgs', () => {
  it('takes short option values attached or separate', () => {
    expect(parse('-Ft').last('format')).toBe('t');
    expect(parse('-F', 't').last('format')).toBe('t');
    expect(parse('-Xstream').last('walMethod')).toBe('stream');
    expect(parse('-X', 'stream').last('walMethod')).toBe('stream');
    expect(parse('-D', 'dir').last('pgdata')).toBe('dir');
  });

  it('takes the next word as a value whatever it looks like, like getopt (-D -)', () => {
    expect(parse('-D', '-').last('pgdata')).toBe('-');
    expect(parse('-D', '-v').last('pgdata')).toBe('-v');
    expect(parse('-D', '-v').has('verbose')).toBe(false);
  });

  it('clusters flags, with a valued option ending the cluster', () => {
    const a = parse('-vP');
    expect(a.has('verbose') && a.has('progress')).toBe(true);
    const b = parse('-RP');
    expect(b.has('recovery') && b.has('progress')).toBe(true);
    const c = parse('-vFt');
    expect(c.count('verbose')).toBe(1);
    expect(c.last('format')).toBe('t');
    const d = parse('-vD', 'out');
    expect(d.last('pgdata')).toBe('out');
  });

  it('takes long option values with = or as the next word', () => {
    expect(parse('--format=tar').last('format')).toBe('tar');
    expect(parse('--format', 'tar').last('format')).toBe('tar');
    expect(parse('--format=').last('format')).toBe('');
    expect(parse('--pgdata=a=b').last('pgdata')).toBe('a=b');
  });

  it('takes an optional long value only after =', () => {
    expect(parse('--manifest-checksums=SHA256').last('checksums')).toBe('SHA256');
    const a = parse('--manifest-checksums', 'SHA256');
    expect(a.has('checksums')).toBe(true);
    expect(a.last('checksums')).toBeUndefined();
    expect(a.operands).toEqual(['SHA256']);
    expect(parse('-ofoo').last('opt')).toBe('foo');
    expect(parse('-o', 'foo').last('opt')).toBeUndefined();
  });

  it('accepts unambiguous long prefixes and rejects ambiguous ones', () => {
    expect(parse('--pgd', 'x').last('pgdata')).toBe('x');
    expect(parse('--verb').count('verbose')).toBe(1);
    const e = usageError(() => parse('--no-s'));
    expect(e.message).toBe('option "--no-s" is ambiguous; possibilities: --no-slot --no-sync');
  });

  it('ends options at --', () => {
    const a = parse('-v', '--', '-P', '--format=t');
    expect(a.count('verbose')).toBe(1);
    expect(a.has('progress')).toBe(false);
    expect(a.operands).toEqual(['-P', '--format=t']);
  });

  it('keeps operands found between options, and a lone - as an operand', () => {
    const a = parse('x', '-v', '-', 'y');
    expect(a.operands).toEqual(['x', '-', 'y']);
    expect(a.count('verbose')).toBe(1);
  });

  it('keeps repeated options in order', () => {
    const a = parse('-T', '/a=/b', '-v', '--tablespace-mapping=/c=/d', '-v', '-vv');
    expect(a.all('mapping')).toEqual(['/a=/b', '/c=/d']);
    expect(a.count('verbose')).toBe(4);
    expect(parse('-Fp', '-Ft').last('format')).toBe('t');
    expect(a.lastOccurrence('mapping')?.spelling).toBe('--tablespace-mapping');
  });

  it('reports unknown options as getopt-level usage errors with the help hint', () => {
    const e = usageError(() => parse('--x'));
    expect(e.message).toBe('unrecognized option "--x"');
    expect(e.hint).toBe('Try "pgbb test --help" for more information.');
    expect(e.getopt).toBe(true);
    expect(e).toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    expect(e.code).toBe('ERR_PGBB_CONFIG');
    expect(usageError(() => parse('-vk')).message).toBe('invalid option -- "k"');
  });

  it('reports missing and unexpected values', () => {
    expect(usageError(() => parse('-D')).message).toBe('option requires an argument -- "D"');
    expect(usageError(() => parse('--pgdata')).message).toBe('option "--pgdata" requires an argument');
    expect(usageError(() => parse('--verbose=2')).message).toBe('option "--verbose" doesn\'t allow an argument');
  });

  it('parses -? as help', () => {
    expect(parse('-?').has('help')).toBe(true);
  });

  it('rejects operands like PostgreSQL tools', () => {
    const e = usageError(() => rejectOperands(spec, parse('-v', 'extra', 'more')));
    expect(e.message).toBe('too many command-line arguments (first is "extra")');
    expect(e.getopt).toBe(false);
  });
});

describe('formatHelp', () => {
  it('lists options by group with aligned descriptions', () => {
    const text = formatHelp(spec);
    expect(text.startsWith('pgbb test does tests.\n\nUsage:\n  pgbb test [OPTION]...\n\nOptions:\n')).toBe(true);
    expect(text).toContain('\n  -D, --pgdata=DIRECTORY target\n');
    expect(text).toContain('\n  -v, --verbose          more\n');
    expect(text).toContain('\n      --manifest-checksums[=ALG]\n                         alg\n');
    expect(text).toContain('\nGeneral:\n      --no-slot          no slot\n');
    expect(text).toContain('  -?, --help             help\n');
    expect(text.endsWith('\n')).toBe(true);
  });
});
