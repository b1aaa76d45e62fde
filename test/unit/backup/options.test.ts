import { describe, expect, it } from 'vitest';
import { resolveBaseBackupOptions, type BaseBackupOptions } from '../../../src/backup/options.js';

function configError(o: BaseBackupOptions, pattern: RegExp): void {
  let caught: unknown;
  try {
    resolveBaseBackupOptions(o);
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: 'ERR_PGBB_CONFIG' });
  expect((caught as Error).message).toMatch(pattern);
}

describe('resolveBaseBackupOptions', () => {
  it('applies pg_basebackup defaults', () => {
    const r = resolveBaseBackupOptions();
    expect(r).toMatchObject({
      label: 'pg_basebackup base backup',
      checkpoint: 'spread',
      wal: 'stream',
      maxRateKBps: undefined,
      tablespaceMap: false,
      manifest: true,
      manifestChecksums: undefined,
      manifestForceEncode: false,
      verifyChecksums: true,
      estimateSize: true,
      slot: { kind: 'temporary' },
      statusIntervalMs: 10_000,
      waitForWalArchive: false,
      progressIntervalMs: 1000,
      connection: {},
    });
  });

  it('waits for WAL archiving by default only when no WAL is included', () => {
    expect(resolveBaseBackupOptions({ wal: 'none' }).waitForWalArchive).toBe(true);
    expect(resolveBaseBackupOptions({ wal: 'fetch' }).waitForWalArchive).toBe(false);
    expect(resolveBaseBackupOptions({ wal: 'stream' }).waitForWalArchive).toBe(false);
    expect(resolveBaseBackupOptions({ wal: 'stream', waitForWalArchive: true }).waitForWalArchive).toBe(true);
  });

  it('turns a connection string into connection options and shares the signal', () => {
    const ac = new AbortController();
    const r = resolveBaseBackupOptions({ connection: 'host=/tmp port=5433', signal: ac.signal });
    expect(r.connection).toEqual({ connectionString: 'host=/tmp port=5433', signal: ac.signal });
    expect(r.signal).toBe(ac.signal);
  });

  it('slot plans', () => {
    expect(resolveBaseBackupOptions({ slot: 'a' }).slot).toEqual({ kind: 'existing', name: 'a' });
    expect(resolveBaseBackupOptions({ slot: 'a', createSlot: true }).slot).toEqual({ kind: 'create', name: 'a' });
    expect(resolveBaseBackupOptions({ useSlot: false }).slot).toEqual({ kind: 'none' });
    expect(resolveBaseBackupOptions({ wal: 'fetch' }).slot).toEqual({ kind: 'none' });
  });

  it('rejects bad combinations with advice', () => {
    configError({ createSlot: true }, /createSlot needs a slot name/);
    configError({ slot: 'a', wal: 'fetch' }, /only used with wal 'stream'/);
    configError({ slot: 'a', createSlot: true, wal: 'none' }, /only used with wal 'stream'/);
    configError({ slot: 'a', useSlot: false }, /contradict/);
    configError({ slot: 'Bad-Name' }, /invalid slot name/);
    configError({ maxRateKBps: 31 }, /32 to 1048576/);
    configError({ maxRateKBps: 1_048_577 }, /32 to 1048576/);
    configError({ maxRateKBps: 100.5 }, /whole number/);
    configError({ manifest: false, manifestChecksums: 'SHA256' }, /needs a manifest/);
    configError({ manifest: false, manifestForceEncode: true }, /needs a manifest/);
    configError({ wal: 'bogus' as never }, /invalid wal "bogus"/);
    configError({ checkpoint: 'slow' as never }, /invalid checkpoint/);
    configError({ manifestChecksums: 'MD5' as never }, /invalid manifestChecksums/);
    configError({ label: 'a\0b' }, /NUL/);
    configError({ label: 'x'.repeat(1024) }, /too long/);
    configError({ statusIntervalMs: -1 }, /statusIntervalMs/);
    configError({ walSink: {} as never, wal: 'fetch' }, /walSink is only used/);
    configError({ verifyChecksums: 'no' as never }, /verifyChecksums/);
  });

  it('accepts the range limits', () => {
    expect(resolveBaseBackupOptions({ maxRateKBps: 32 }).maxRateKBps).toBe(32);
    expect(resolveBaseBackupOptions({ maxRateKBps: 1_048_576 }).maxRateKBps).toBe(1_048_576);
    expect(resolveBaseBackupOptions({ label: 'x'.repeat(1023) }).label).toHaveLength(1023);
  });

  it('keeps the onNotice callback and refuses a non-function', () => {
    const onNotice = (): void => undefined;
    expect(resolveBaseBackupOptions({ onNotice }).onNotice).toBe(onNotice);
    expect(resolveBaseBackupOptions().onNotice).toBeUndefined();
    configError({ onNotice: 'log' as never }, /onNotice: expected a function/);
  });
});
