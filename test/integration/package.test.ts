// STYLE practice 14: the package is tested through its built output. `npm pack` makes the
// tarball users get from the registry; it is installed into a scratch project with npm, offline,
// and used the way a user would: `import ... from 'pg-basebackup'` from an ES module, the
// declarations through TypeScript's NodeNext resolution, and `pgbb` from node_modules/.bin.
// The tarball's contents are checked against package.json: `exports` (the root and every subpath
// entry point), `types`, `bin` and the `files` whitelist (dist/, README and the example programs: no
// src/, test/, bench/). The build is not minified: a caught error prints its own class name.
//
// The pack runs with --ignore-scripts: `npm test` has just built dist/ (prepack would rebuild it
// with tsup's clean while other test files in this run import it), so this tests that build.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  files?: string[];
  exports?: Record<string, unknown>;
  repository?: unknown;
  homepage?: string;
  dependencies?: Record<string, string>;
};

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment for child npm/node processes: without the npm_* variables `npm test` exports
 * (npm_config_prefix and friends would point a child npm at this repository), and with the
 * running node's directory first on PATH, so `#!/usr/bin/env node` finds the Node under test.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && k.toLowerCase() !== 'npm_config_cache') continue;
    env[k] = v;
  }
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  env.NO_UPDATE_NOTIFIER = '1';
  env.npm_config_update_notifier = 'false';
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function expectSuccess(what: string, r: RunResult): void {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/** The npm that goes with the running node (Node 24's npm on the Node 24 run). */
const npm = existsSync(join(dirname(process.execPath), 'npm')) ? join(dirname(process.execPath), 'npm') : 'npm';

/** The subpath entry points (`./wal`, ...), from package.json's `exports`. */
const subpaths = Object.keys(pkg.exports ?? {}).filter((k) => k !== '.' && k !== './package.json');

/** A local TCP port nothing listens on (bound, then released), for a connection that is refused. */
function portWithNoListener(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

let work: string;
let tarball: string;
let packedFiles: string[];
let project: string;

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/index.js')) || !existsSync(join(root, 'dist/index.d.ts'))) {
    throw new Error('dist/ is missing: this test packs the built package; run `npm run build` (npm test does) first');
  }
  work = await mkdtemp(join(tmpdir(), 'pgbb-package-'));
  const packDir = join(work, 'pack');
  await mkdir(packDir);
  const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], root);
  expectSuccess('npm pack', packed);
  const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  expect(info).toHaveLength(1);
  tarball = join(packDir, info[0]!.filename);
  packedFiles = info[0]!.files.map((f) => f.path).sort();

  // A scratch project, as a user's would be, installing only the tarball. Offline: the package
  // has no dependencies (the compression packages are optional and loaded lazily, so they are
  // omitted); should it get some, `npm ci` has put them in npm's cache.
  project = join(work, 'project');
  await mkdir(project);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'pgbb-scratch', version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  const installed = await run(
    npm,
    ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=optional', '--no-package-lock', tarball],
    project,
  );
  expectSuccess('npm install <tarball>', installed);
}, 240_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds dist/, the README and the examples only (no src/, test/, bench/)', () => {
    for (const f of packedFiles) {
      expect(
        f === 'package.json' || f === 'README.md' || /^LICEN[CS]E/i.test(f) || f.startsWith('dist/') || /^examples\/[\w-]+\.ts$/.test(f),
        f,
      ).toBe(true);
      expect(f).not.toMatch(/^(src|test|bench|docs-site|\.ci|node_modules)\//);
      expect(f).not.toMatch(/\.tsbuildinfo$|\.test\.[cm]?[jt]s$/);
    }
    expect(pkg.files).toEqual(expect.arrayContaining(['dist']));
    expect(pkg.files?.some((f) => /^(src|test)\b/.test(f))).toBe(false);
    // Source maps ship beside the code, so stack traces can be mapped back to the sources.
    for (const f of packedFiles.filter((p) => p.endsWith('.js'))) expect(packedFiles, f).toContain(`${f}.map`);
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli/main.js',
      'README.md',
      'package.json',
      'examples/backup-to-directory.ts',
    ]) {
      expect(packedFiles, f).toContain(f);
    }
  });

  it('points exports, main, types and bin at files in the tarball', () => {
    const has = (target: string): boolean => packedFiles.includes(target.replace(/^\.\//, ''));
    const dot = pkg.exports?.['.'] as Record<string, string> | undefined;
    expect(dot).toBeDefined();
    expect(subpaths.length).toBeGreaterThan(1);
    for (const subpath of ['.', ...subpaths]) {
      const target = pkg.exports?.[subpath] as Record<string, string>;
      // TypeScript takes the first condition that matches: `types` must come before `import`.
      expect(Object.keys(target)[0], subpath).toBe('types');
      expect(has(target.types!), target.types).toBe(true);
      expect(has(target.import!), target.import).toBe(true);
    }
    expect(pkg.exports?.['./package.json']).toBe('./package.json');
    expect(pkg.types && has(pkg.types)).toBe(true);
    expect(pkg.types).toBe(dot!.types);
    expect(pkg.main && has(pkg.main)).toBe(true);
    expect(pkg.repository).toBeDefined();
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bin?.pgbb && has(pkg.bin.pgbb)).toBe(true);
  });

  it('has declarations that only reference files it contains', async () => {
    const dir = join(project, 'node_modules', pkg.name);
    const declarations = packedFiles.filter((f) => f.startsWith('dist/') && f.endsWith('.d.ts'));
    expect(declarations.length).toBeGreaterThan(subpaths.length);
    for (const file of declarations) {
      const dts = await readFile(join(dir, file), 'utf8');
      for (const m of dts.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const rel = m[1]!.replace(/\.js$/, '.d.ts');
        expect(existsSync(join(dir, dirname(file), rel)), `${file} imports ${m[1]!}`).toBe(true);
      }
    }
  });

  it('imports from an ES module by its name, and refuses deep imports', async () => {
    const closedPort = await portWithNoListener();
    const script = join(project, 'check.mjs');
    await writeFile(
      script,
      `
import * as pgbb from 'pg-basebackup';
import * as errors from 'pg-basebackup/errors';
import { parseConnectionString, ReplicationConnection } from 'pg-basebackup/connection';
import { identifySystem } from 'pg-basebackup/replication';
import { DirectoryWalSink, segmentFileNameForLsn, startWalStream } from 'pg-basebackup/wal';
import { parseManifest } from 'pg-basebackup/manifest';
import meta from 'pg-basebackup/package.json' with { type: 'json' };
const subpaths = ${JSON.stringify(subpaths)};
const entries = {};
for (const s of subpaths) entries[s] = Object.keys(await import('pg-basebackup' + s.slice(1))).length;
let caught;
try {
  await ReplicationConnection.connect({ host: '127.0.0.1', port: ${closedPort}, user: 'u', password: 'p' });
} catch (err) {
  caught = err;
  console.error(err); // the test reads stderr: the class name must be the real one
}
const out = {
  version: meta.version,
  rootValues: Object.keys(pgbb),
  entries,
  functions: Object.fromEntries(Object.entries({ runBackup: pgbb.runBackup, startBackup: pgbb.startBackup, startWalStream,
    identifySystem, parseManifest, parseConnectionString, formatLsn: pgbb.formatLsn, parseLsn: pgbb.parseLsn,
    isPgBackupError: pgbb.isPgBackupError }).map(([n, f]) => [n, typeof f])),
  classes: Object.fromEntries(Object.entries({ ReplicationConnection, BackupSession: pgbb.BackupSession,
    PgBackupError: pgbb.PgBackupError, ServerError: pgbb.ServerError, DirectoryWalSink }).map(([n, c]) => [n, typeof c])),
  sameClasses: pgbb.ConnectionError === errors.ConnectionError && pgbb.PgBackupError === errors.PgBackupError,
  lsn: pgbb.formatLsn(pgbb.parseLsn('16/B374D848')),
  segment: segmentFileNameForLsn(1, pgbb.parseLsn('0/3000028'), 16 * 1024 * 1024),
  conninfo: parseConnectionString('postgresql://rep@db.example.com:5433/?sslmode=require'),
  configError: (() => { const e = new pgbb.ConfigError('x'); return { code: e.code, base: e instanceof pgbb.PgBackupError }; })(),
  caught: {
    constructorName: caught?.constructor?.name, name: caught?.name, code: caught?.code,
    isPgBackupError: pgbb.isPgBackupError(caught, 'ERR_PGBB_CONNECTION'), advice: caught?.advice,
    json: JSON.parse(JSON.stringify(caught)),
  },
};
try {
  await import('pg-basebackup/dist/index.js');
  out.deepImport = 'allowed';
} catch (err) {
  out.deepImport = err.code;
}
console.log(JSON.stringify(out));
`,
    );
    const r = await run(process.execPath, [script], project);
    expectSuccess('node check.mjs', r);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.version).toBe(pkg.version);
    expect(
      Object.values(out.functions as object).every((t) => t === 'function'),
      JSON.stringify(out.functions),
    ).toBe(true);
    expect(
      Object.values(out.classes as object).every((t) => t === 'function'),
      JSON.stringify(out.classes),
    ).toBe(true);
    expect(out.lsn).toBe('16/B374D848');
    expect(out.segment).toBe('000000010000000000000003');
    expect(out.conninfo).toMatchObject({ host: 'db.example.com', port: '5433', user: 'rep', sslmode: 'require' });
    expect(out.configError).toEqual({ code: 'ERR_PGBB_CONFIG', base: true });
    expect(out.deepImport).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');

    // A small front door: what `import * as pgbb from 'pg-basebackup'` holds at run time.
    expect((out.rootValues as string[]).length, (out.rootValues as string[]).join(' ')).toBeLessThanOrEqual(26);
    expect(out.rootValues).toEqual(
      expect.arrayContaining(['runBackup', 'startBackup', 'verifyBackup', 'combineBackups', 'PgBackupError', 'isPgBackupError']),
    );
    expect(out.rootValues).not.toContain('ReplicationConnection');
    // Every subpath entry point imports and exports something; error classes are shared with the root.
    const entries = out.entries as Record<string, number>;
    expect(Object.keys(entries).sort()).toEqual([...subpaths].sort());
    for (const [subpath, count] of Object.entries(entries)) expect(count, subpath).toBeGreaterThan(0);
    expect(out.sameClasses).toBe(true);

    // Not minified: the error a user catches names its class, in console.error's output too.
    const caught = out.caught as {
      constructorName: string;
      name: string;
      code: string;
      isPgBackupError: boolean;
      advice?: string;
      json: Record<string, unknown>;
    };
    expect(caught).toMatchObject({
      constructorName: 'ConnectionError',
      name: 'ConnectionError',
      code: 'ERR_PGBB_CONNECTION',
      isPgBackupError: true,
    });
    expect(caught.advice).toMatch(/listen_addresses/);
    expect(caught.json).toMatchObject({
      name: 'ConnectionError',
      code: 'ERR_PGBB_CONNECTION',
      advice: caught.advice,
      syscallCode: 'ECONNREFUSED',
    });
    expect(r.stderr).toMatch(/^ConnectionError: could not connect to the server at /);
    expect(r.stderr).not.toMatch(/\[ConnectionError\]/);
    expect(r.stderr).not.toContain('password');
  });

  it('type-checks a TypeScript consumer (NodeNext) against the installed declarations', async () => {
    await writeFile(
      join(project, 'check.ts'),
      `
import { parseLsn, formatLsn, isPgBackupError, PgBackupError, type RunBackupOptions, type Lsn } from 'pg-basebackup';
${subpaths.map((s, i) => `import * as entry${i} from 'pg-basebackup${s.slice(1)}';`).join('\n')}
import { TlsError, type PgBackupErrorCode, type ServerError } from 'pg-basebackup/errors';
import type { ConnectionOptions } from 'pg-basebackup/connection';
import type { WalStreamOptions } from 'pg-basebackup/wal';
import type { TarEntry } from 'pg-basebackup/tar';
import type { BackupManifest } from 'pg-basebackup/manifest';
import type { CompressionSpec } from 'pg-basebackup/compress';
const at: Lsn = parseLsn('0/16B3748');
const text: string = formatLsn(at);
const options: Partial<RunBackupOptions> = {};
// @ts-expect-error an LSN is a branded bigint, not a string
const wrong: Lsn = '0/1';
function sqlState(err: unknown): string | undefined {
  // Narrowing by code gives the class: only a ServerError has sqlState.
  if (isPgBackupError(err) && err.code === 'ERR_PGBB_SERVER') { const s: ServerError = err; return s.sqlState; }
  return undefined;
}
const code: PgBackupErrorCode = new TlsError('x').code;
type Used = [ConnectionOptions, WalStreamOptions, TarEntry, BackupManifest, CompressionSpec];
export type { Used };
export { text, options, wrong, PgBackupError, sqlState, code, ${subpaths.map((_, i) => `entry${i}`).join(', ')} };
`,
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          // Our declarations are checked when tsup emits them; checking all of @types/node again here took
          // over a minute on a loaded 2-core machine. Resolution through `exports`/`types` is what this tests.
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['check.ts'],
      }),
    );
    const r = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
    expectSuccess('tsc', r);
  }, 180_000);

  it('runs pgbb --version and pgbb --help from node_modules/.bin', async () => {
    const bin = join(project, 'node_modules/.bin/pgbb');
    expect(existsSync(bin)).toBe(true);
    const version = await run(bin, ['--version'], project);
    expectSuccess('pgbb --version', version);
    expect(version.stdout.trim()).toBe(`pgbb (${pkg.name}) ${pkg.version}`);
    const help = await run(bin, ['--help'], project);
    expectSuccess('pgbb --help', help);
    expect(help.stdout).toMatch(/^Usage:/m);
    for (const command of ['identify', 'backup', 'verify', 'combine']) expect(help.stdout).toMatch(new RegExp(`^\\s+${command}\\s`, 'm'));
    const bad = await run(bin, ['--no-such-option'], project);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).not.toBe('');
  });
});
