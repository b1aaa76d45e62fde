import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import {
  chooseMode,
  createReporter,
  describeError,
  formatProgressLine,
  makeScrubber,
  type ReporterOptions,
} from '../../../src/cli/output.js';
import { ConnectionError, parseLsn, ServerError } from '../../../src/index.js';

function streams(isTTY = false) {
  const o = { out: '', err: '' };
  return {
    o,
    stdout: {
      write: (s: string) => {
        o.out += s;
        return true;
      },
    },
    stderr: {
      write: (s: string) => {
        o.err += s;
        return true;
      },
      isTTY,
    },
  };
}

function reporter(mode: ReporterOptions['mode'], extra: Partial<ReporterOptions> = {}) {
  const s = streams(mode === 'tty');
  let t = 0;
  const clock = {
    advance: (ms: number) => {
      t += ms;
    },
  };
  const r = createReporter({ mode, stdout: s.stdout, stderr: s.stderr, progress: true, now: () => t, ...extra });
  return { r, o: s.o, clock };
}

const KB = 1024;

describe('formatProgressLine', () => {
  it('prints pg_basebackup -P lines', () => {
    expect(formatProgressLine({ bytesDone: 512 * KB, totalBytes: 2048 * KB, archivesDone: 0, archivesTotal: 1 })).toBe(
      ' 512/2048 kB (25%), 0/1 tablespace',
    );
    expect(formatProgressLine({ bytesDone: 2048 * KB, totalBytes: 2048 * KB, archivesDone: 2, archivesTotal: 2 })).toBe(
      '2048/2048 kB (100%), 2/2 tablespaces',
    );
  });
  it('never shows done beyond total nor more than 100%', () => {
    expect(formatProgressLine({ bytesDone: 3000 * KB, totalBytes: 2048 * KB, archivesDone: 1, archivesTotal: 1 })).toBe(
      '3000/3000 kB (100%), 1/1 tablespace',
    );
    expect(formatProgressLine({ bytesDone: 10 * KB, archivesDone: 0, archivesTotal: 1 })).toBe('10/10 kB (100%), 0/1 tablespace');
    expect(formatProgressLine({ bytesDone: 0, totalBytes: 0, archivesDone: 0, archivesTotal: 1 })).toBe('0/0 kB (0%), 0/1 tablespace');
  });
  it('adds the file name in verbose mode, truncated at the front', () => {
    const long = `base/16384/${'1'.repeat(40)}`;
    const line = formatProgressLine({ bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1, archive: { name: long } }, true);
    expect(line).toBe(`0/1 kB (0%), 0/1 tablespace (...${long.slice(long.length - 32)})`);
    expect(
      formatProgressLine({ bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1, archive: { name: 'PG_VERSION' } }, true),
    ).toBe(`0/1 kB (0%), 0/1 tablespace (${'PG_VERSION'.padEnd(35)})`);
  });
});

describe('chooseMode', () => {
  it('prefers json, then tty, then plain', () => {
    expect(chooseMode({ json: true, stderrIsTTY: true })).toBe('json');
    expect(chooseMode({ json: false, stderrIsTTY: true })).toBe('tty');
    expect(chooseMode({ json: false, stderrIsTTY: undefined })).toBe('plain');
  });
});

describe('tty reporter', () => {
  it('redraws with \\r, pads over longer lines and ends with a newline', () => {
    const { r, o, clock } = reporter('tty');
    r.progress({ bytesDone: 100 * KB, totalBytes: 20000 * KB, archivesDone: 0, archivesTotal: 1 });
    clock.advance(1000);
    r.progress({ bytesDone: 0, totalBytes: 2 * KB, archivesDone: 0, archivesTotal: 1 });
    r.finishProgress({ bytesDone: 2 * KB, totalBytes: 2 * KB, archivesDone: 1, archivesTotal: 1 });
    const first = '  100/20000 kB (0%), 0/1 tablespace';
    expect(o.err).toBe(
      `${first}\r${'0/2 kB (0%), 0/1 tablespace'.padEnd(first.length)}\r${'2/2 kB (100%), 1/1 tablespace'.padEnd('0/2 kB (0%), 0/1 tablespace'.length)}\n`,
    );
    expect(o.out).toBe('');
  });

  it('throttles to the interval unless forced', () => {
    const { r, o, clock } = reporter('tty');
    const p = { bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1 };
    r.progress(p);
    clock.advance(500);
    r.progress(p);
    expect(o.err.split('\r').length - 1).toBe(1);
    r.progress(p, true);
    expect(o.err.split('\r').length - 1).toBe(2);
    clock.advance(1000);
    r.progress(p);
    expect(o.err.split('\r').length - 1).toBe(3);
  });

  it('prints nothing without -P', () => {
    const { r, o } = reporter('tty', { progress: false });
    r.progress({ bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1 });
    r.finishProgress();
    expect(o.err).toBe('');
  });

  it('ends an open progress line before a message', () => {
    const { r, o } = reporter('tty', { verbose: 1 });
    r.progress({ bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1 });
    r.info('starting background WAL receiver');
    expect(o.err).toBe('0/1 kB (0%), 0/1 tablespace\r\npgbb: starting background WAL receiver\n');
  });
});

describe('plain reporter', () => {
  it('writes one line per throttled step', () => {
    const { r, o, clock } = reporter('plain');
    r.progress({ bytesDone: 0, totalBytes: 4 * KB, archivesDone: 0, archivesTotal: 1 });
    clock.advance(10);
    r.progress({ bytesDone: KB, totalBytes: 4 * KB, archivesDone: 0, archivesTotal: 1 });
    clock.advance(1000);
    r.progress({ bytesDone: 2 * KB, totalBytes: 4 * KB, archivesDone: 0, archivesTotal: 1 });
    r.finishProgress({ bytesDone: 4 * KB, totalBytes: 4 * KB, archivesDone: 1, archivesTotal: 1 });
    expect(o.err).toBe('0/4 kB (0%), 0/1 tablespace\n2/4 kB (50%), 0/1 tablespace\n4/4 kB (100%), 1/1 tablespace\n');
    expect(o.err).not.toContain('\r');
  });

  it('does not repeat the final line the library already reported (-P without a terminal)', () => {
    const { r, o } = reporter('plain');
    const last = { bytesDone: 4 * KB, totalBytes: 4 * KB, archivesDone: 1, archivesTotal: 1 };
    r.progress({ bytesDone: 0, totalBytes: 4 * KB, archivesDone: 0, archivesTotal: 1 });
    r.progress(last, true);
    r.finishProgress();
    expect(o.err).toBe('0/4 kB (0%), 0/1 tablespace\n4/4 kB (100%), 1/1 tablespace\n');
  });

  it('shows info only with -v, warnings always', () => {
    const quiet = reporter('plain');
    quiet.r.info('hidden');
    quiet.r.warning('shown');
    expect(quiet.o.err).toBe('pgbb: warning: shown\n');
    const loud = reporter('plain', { verbose: 1 });
    loud.r.info('initiating base backup');
    expect(loud.o.err).toBe('pgbb: initiating base backup\n');
  });

  it('prints the result text on stdout', () => {
    const { r, o } = reporter('plain');
    r.done({ a: 1 }, 'a: 1');
    expect(o.out).toBe('a: 1\n');
  });
});

describe('json reporter', () => {
  it('writes one object per line on stdout', () => {
    const { r, o, clock } = reporter('json', { progress: false });
    r.progress({ bytesDone: KB, totalBytes: 4 * KB, archivesDone: 0, archivesTotal: 1 });
    clock.advance(1000);
    r.progress({ bytesDone: 2 * KB, archivesDone: 1, archivesTotal: 1 });
    r.finishProgress();
    r.done({ startLsn: '0/2000028', timeline: 1 });
    const lines = o.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      // The library's names (BackupProgress), not ones of the CLI's own.
      { event: 'progress', bytesDone: 1024, totalBytes: 4096, percent: 25, archivesDone: 0, archivesTotal: 1 },
      { event: 'progress', bytesDone: 2048, totalBytes: null, percent: null, archivesDone: 1, archivesTotal: 1 },
      { event: 'progress', bytesDone: 2048, totalBytes: null, percent: null, archivesDone: 1, archivesTotal: 1, final: true },
      { event: 'done', startLsn: '0/2000028', timeline: 1 },
    ]);
    expect(o.err).toBe('');
  });

  it('reports errors with their code on stdout and the message on stderr', () => {
    const { r, o } = reporter('json');
    expect(r.error(new ConnectionError('could not connect to u@db:5432: connection refused', { syscallCode: 'ECONNREFUSED' }))).toBe(1);
    expect(JSON.parse(o.out)).toEqual({
      event: 'error',
      code: 'ERR_PGBB_CONNECTION',
      message: 'could not connect to u@db:5432: connection refused',
    });
    expect(o.err).toBe('pgbb: error: could not connect to u@db:5432: connection refused\n');
  });
});

describe('backup phases (onPhase)', () => {
  const checkpoint = { phase: 'checkpoint', checkpoint: 'spread' } as const;
  const data = { phase: 'data', checkpoint: 'spread', startLsn: parseLsn('0/2000028'), timeline: 1 } as const;
  const phases = (r: ReturnType<typeof reporter>['r']) => {
    r.phase(checkpoint);
    r.phase(data);
    for (const phase of ['wal', 'manifest', 'done'] as const) r.phase({ phase, checkpoint: 'spread' });
  };

  it("-v: pg_basebackup's checkpoint lines, then the start point once", () => {
    const { r, o } = reporter('plain', { verbose: 1, progress: false });
    phases(r);
    expect(o.err).toBe(
      'pgbb: initiating base backup, waiting for checkpoint to complete\n' +
        'pgbb: checkpoint completed\n' +
        'pgbb: write-ahead log start point: 0/2000028 on timeline 1\n',
    );
  });

  it('-P: the checkpoint lines, ending an open progress line first', () => {
    const { r, o } = reporter('tty');
    r.phase(checkpoint);
    r.progress({ bytesDone: 0, totalBytes: KB, archivesDone: 0, archivesTotal: 1 });
    r.phase(data);
    expect(o.err).toBe(
      'pgbb: initiating base backup, waiting for checkpoint to complete\n' + '0/1 kB (0%), 0/1 tablespace\r\npgbb: checkpoint completed\n',
    );
  });

  it('prints nothing without -v or -P', () => {
    const { r, o } = reporter('plain', { progress: false });
    phases(r);
    expect(o.err + o.out).toBe('');
  });

  it('--json: one phase event each, LSNs as text', () => {
    const { r, o } = reporter('json', { progress: false });
    phases(r);
    const lines = o.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { event: 'phase', phase: 'checkpoint', checkpoint: 'spread' },
      { event: 'phase', phase: 'data', checkpoint: 'spread', startLsn: '0/2000028', timeline: 1 },
      { event: 'phase', phase: 'wal', checkpoint: 'spread' },
      { event: 'phase', phase: 'manifest', checkpoint: 'spread' },
      { event: 'phase', phase: 'done', checkpoint: 'spread' },
    ]);
    expect(o.err).toBe('');
  });
});

describe('error output', () => {
  it('prints pgbb: error / detail / hint for server errors', () => {
    const { r, o } = reporter('plain');
    r.error(
      new ServerError(
        { severity: 'ERROR', sqlState: '42704', message: 'replication slot "x" does not exist', detail: 'd1', hint: 'h1' },
        'create it with --create-slot or drop --slot',
      ),
    );
    expect(o.err).toBe(
      'pgbb: error: replication slot "x" does not exist\npgbb: detail: d1\npgbb: hint: h1\n' +
        'pgbb: hint: create it with --create-slot or drop --slot\n',
    );
  });

  it('includes the SQLSTATE in JSON', () => {
    const { r, o } = reporter('json');
    r.error(new ServerError({ severity: 'FATAL', sqlState: '28P01', message: 'password authentication failed for user "u"' }));
    expect(JSON.parse(o.out)).toMatchObject({ code: 'ERR_PGBB_SERVER', sqlState: '28P01' });
  });

  it('prints getopt complaints like getopt, and option checks with the help hint', () => {
    const a = reporter('plain');
    a.r.error(new UsageError('pgbb backup', 'unrecognized option "--x"', { getopt: true }));
    expect(a.o.err).toBe('pgbb backup: unrecognized option "--x"\nTry "pgbb backup --help" for more information.\n');
    const b = reporter('plain');
    b.r.error(new UsageError('pgbb backup', '--create-slot needs a slot to be specified using --slot'));
    expect(b.o.err).toBe(
      'pgbb: error: --create-slot needs a slot to be specified using --slot\n' +
        'pgbb: hint: Try "pgbb backup --help" for more information.\n',
    );
  });

  it('gives non-library errors an internal code', () => {
    expect(describeError(new TypeError('boom'))).toEqual({ message: 'boom', detail: [], hint: [], code: 'ERR_PGBB_INTERNAL' });
    expect(describeError('text')).toMatchObject({ message: 'text' });
  });
});

describe('makeScrubber', () => {
  const redact = (s: string) => s.replace(/password=\S+/, 'password=********');
  it('replaces connection strings by their redacted form and passwords by a mask', () => {
    const scrub = makeScrubber({ connectionStrings: ['host=db password=s3cr3t!'], passwords: ['s3cr3t!', 'p@ss w/rd'], redact });
    expect(scrub('could not connect with "host=db password=s3cr3t!"')).toBe('could not connect with "host=db password=********"');
    expect(scrub('leaked s3cr3t! and p%40ss%20w%2Frd and p@ss w/rd')).toBe('leaked ******** and ******** and ********');
  });

  it('scrubs everything the reporter writes', () => {
    const scrub = makeScrubber({ passwords: ['hunter22'], redact });
    const { r, o } = reporter('json', { scrub });
    r.error(new Error('bad password hunter22'));
    r.done({ note: 'hunter22' });
    expect(o.out + o.err).not.toContain('hunter22');
  });
});
