// src/backup runs the protocol side of a backup and routes bytes; the file system belongs to
// the sinks and the WAL writers (the WAL spool is a sink of src/wal). STYLE.md practice 1.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../../src/backup/', import.meta.url).pathname;

describe('src/backup layering', () => {
  it('does no file I/O: no node:fs, node:fs/promises or node:os import', () => {
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => {
        const text = readFileSync(join(dir, f), 'utf8');
        return [...text.matchAll(/from\s+'(node:(?:fs|fs\/promises|os))'/g)].map((m) => `${f} imports ${m[1]}`);
      });
    expect(offenders).toEqual([]);
  });

  it('keeps its files small (at most ~500 lines)', () => {
    const long = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => [f, readFileSync(join(dir, f), 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > 520);
    expect(long).toEqual([]);
  });
});
