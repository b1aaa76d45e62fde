// SIGINT/SIGTERM as a state machine: one burst is one interrupt; a later one exits at once after
// the synchronous cleanup.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createInterruptHandler, EmergencyCleanups, INTERRUPT_BURST_MS } from '../../../src/cli/interrupt.js';
import { emergencyCleanupFor, snapshotTargets } from '../../../src/cli/targets.js';

function handler() {
  let t = 1000;
  const calls: string[] = [];
  const on = createInterruptHandler({
    abort: (s) => calls.push(`abort ${s}`),
    exitNow: (s) => calls.push(`exit ${s}`),
    now: () => t,
  });
  return {
    on,
    calls,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('createInterruptHandler', () => {
  it('takes two signals of one burst (timeout signalling the child and its group) as one interrupt', () => {
    const h = handler();
    h.on('SIGINT');
    h.on('SIGINT');
    h.advance(INTERRUPT_BURST_MS - 1);
    h.on('SIGTERM');
    expect(h.calls).toEqual(['abort SIGINT']);
  });

  it('exits at once on a later, deliberate interrupt, once', () => {
    const h = handler();
    h.on('SIGINT');
    h.advance(INTERRUPT_BURST_MS);
    h.on('SIGINT');
    h.advance(5000);
    h.on('SIGINT');
    expect(h.calls).toEqual(['abort SIGINT', 'exit SIGINT']);
  });
});

describe('emergency cleanup', () => {
  it('removes what was absent, empties what was empty, leaves the rest, and says so', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pgbb-interrupt-'));
    const data = join(root, 'data');
    const wal = join(root, 'wal');
    mkdirSync(wal);
    const ts = join(root, 'ts');
    mkdirSync(ts);
    writeFileSync(join(ts, 'keep'), 'x');
    const targets = await snapshotTargets({ toStdout: false, pgdata: data, walDir: wal, tablespaceMapping: new Map([['/srv/ts', ts]]) });
    // A non-empty target is refused by the library before anything is written: never touched.
    expect(targets).toEqual([
      { path: data, before: 'absent' },
      { path: wal, before: 'empty' },
    ]);
    // What a backup writes before it is interrupted.
    mkdirSync(join(data, 'base'), { recursive: true });
    writeFileSync(join(data, 'backup_label'), 'START WAL LOCATION');
    writeFileSync(join(wal, '000000010000000000000002.partial'), 'w');

    const cleanups = new EmergencyCleanups();
    const unregister = cleanups.add(() => emergencyCleanupFor(targets));
    const lines = cleanups.run('pgbb', 'SIGINT');
    expect(lines).toEqual(['pgbb: SIGINT again: stopping at once', `pgbb: removed "${data}"`, `pgbb: removed "${wal}"`]);
    expect(existsSync(data)).toBe(false);
    expect(readdirSync(wal)).toEqual([]);
    expect(readdirSync(ts)).toEqual(['keep']);
    unregister();
    expect(cleanups.run('pgbb', 'SIGINT')).toEqual(['pgbb: SIGINT again: stopping at once']);
    cleanups.add(() => ({ removed: [], failed: ['/x'], notes: ['slot "s" may remain'] }));
    expect(cleanups.run('pgbb', 'SIGTERM')).toEqual([
      'pgbb: SIGTERM again: stopping at once',
      'pgbb: warning: could not remove "/x": remove it yourself',
      'pgbb: warning: slot "s" may remain',
    ]);
  });

  it('has nothing to remove for -D -', async () => {
    expect(await snapshotTargets({ toStdout: true, pgdata: '-', tablespaceMapping: new Map() })).toEqual([]);
  });
});
