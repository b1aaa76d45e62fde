// Architectural rules (STYLE.md practice 1), checked on every lint run:
// the CLI goes through the public surface only, library code never prints,
// and only the layers that own I/O touch sockets or the file system.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const sources = files(root).map((p) => ({ path: relative(root, p), text: readFileSync(p, 'utf8') }));
const importsOf = (text: string) => [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1] ?? '');

describe('layering', () => {
  it('the CLI imports only public entry points', () => {
    // The root (src/index.ts) and the subpath entries (src/entries/<name>.ts, `pg-basebackup/<name>`).
    const publicEntry = /^\.\.\/(index|entries\/[a-z-]+)\.js$/;
    const offenders = sources
      .filter((s) => s.path.startsWith('cli/'))
      .flatMap((s) => importsOf(s.text)
        .filter((i) => i.startsWith('../') && !publicEntry.test(i))
        .map((i) => `${s.path} imports ${i}`));
    expect(offenders).toEqual([]);
  });

  it('entry points hold re-exports only', () => {
    const entries = sources.filter((s) => s.path === 'index.ts' || s.path.startsWith('entries/'));
    expect(entries.length).toBeGreaterThan(1);
    for (const e of entries) {
      // Drop comments, then every `export ... from '...';` statement: nothing may be left.
      const code = e.text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
        .replace(/export\s+(type\s+)?(\*|\{[^}]*\})\s+from\s+'[^']+';/g, '');
      expect(code.trim(), e.path).toBe('');
    }
  });

  it('library code never writes to the console', () => {
    const offenders = sources
      .filter((s) => !s.path.startsWith('cli/'))
      // Code lines only: TSDoc examples may show console output.
      .filter((s) => s.text.split('\n').some((l) => !/^\s*(\*|\/\/)/.test(l) && /\bconsole\.(log|error|warn|info|debug)\(/.test(l)))
      .map((s) => s.path);
    expect(offenders).toEqual([]);
  });

  it('pure layers (protocol, tar codec, manifest parsing, lsn) do no I/O', () => {
    const pure = sources.filter((s) => /^(protocol\/|lsn\.ts|tar\/(header|pax)\.ts)/.test(s.path));
    const offenders = pure.flatMap((s) => importsOf(s.text)
      .filter((i) => /^node:(fs|net|tls|child_process|fs\/promises)$/.test(i))
      .map((i) => `${s.path} imports ${i}`));
    expect(offenders).toEqual([]);
  });
});
