// Whole tar backups with client-side gzip: ours (backup session + parallel compressor) against
// pg_basebackup 15 (-Ft -z / -Z 1, which compresses on its one thread), both against the same
// PostgreSQL 15 server (Debian's build, started by the test harness) on this machine.
//
// Run: npx tsx bench/compress-backup.ts [pgbenchScale=20] [randomMB=200] [rounds=2]
// The database is pgbench data (very compressible) plus a table of random hex text, then CHECKPOINT.
// Both sides: WAL fetched into base.tar (-X fetch), fast checkpoint, no fsync (--no-sync), manifest on.
// The outputs are checked with `gzip -t`. Rounds interleave the cases; best and median wall times are
// shown, and CPU time (ours: this process with its workers; pg_basebackup: the child). pg_basebackup runs
// on one thread, so its wall time can never be below its CPU time, whatever else loads the machine. Needs Debian's postgresql-15 (installed by .ci/run).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackup } from '../src/backup/session.js';
import { compressArchive } from '../src/compress/archive.js';
import { compressedArchiveName, resolveCompression, type CompressionSpec } from '../src/compress/spec.js';
import { sharedCompressionPool } from '../src/compress/worker.js';
import { TarFilesSink } from '../src/sinks/tar-files.js';
import { oracleBin } from '../test/harness/binaries.js';
import { destroyAllClusters, startCluster } from '../test/harness/cluster.js';
import { ROLES } from '../test/harness/config.js';

const scale = Number(process.argv[2] ?? 20);
const randomMB = Number(process.argv[3] ?? 200);
const rounds = Number(process.argv[4] ?? 2);

const cluster = await startCluster({ major: 15, flavor: 'debian' });
try {
  const t0 = performance.now();
  const r = spawnSync(
    oracleBin('pgbench'),
    ['-i', '-q', '-s', String(scale), '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
  await cluster.sql(`CREATE TABLE random_text AS SELECT i, md5(random()::text) || md5(random()::text) || md5(random()::text) AS t
    FROM generate_series(1, ${Math.round((randomMB << 20) / 130)}) AS i`);
  await cluster.sql('CHECKPOINT');
  const size = (await cluster.sql<{ size: string }>('SELECT pg_size_pretty(sum(pg_database_size(datname))) AS size FROM pg_database'))[0]
    ?.size;
  console.log(`PostgreSQL ${cluster.version} (Debian), databases ${size}, prepared in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  const dirs: string[] = [];
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'pgbb-bench-backup-'));
    dirs.push(d);
    rmSync(d, { recursive: true });
    return d;
  };
  const sizeOf = (d: string) => readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);

  interface Run {
    ms: number;
    cpuMs: number;
    bytes: number;
    dir: string;
  }

  async function ours(spec: CompressionSpec): Promise<Run> {
    const dir = newDir();
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    const session = await startBackup({
      connection: { host: cluster.host, port: cluster.port, user: ROLES.trust, sslmode: 'disable', env: {} },
      wal: 'fetch',
      checkpoint: 'fast',
      tablespaceMap: true,
    });
    // The tar-format sink pgbb uses (batched writev), fed the compressed archive.
    const sink = new TarFilesSink({ directory: dir, noSync: true });
    for await (const archive of session.archives()) {
      const name = compressedArchiveName(archive.name, spec.algorithm);
      const bytes = spec.algorithm === 'none' ? archive.chunks() : compressArchive(archive.chunks(), spec);
      await sink.writeArchive({ name, tablespacePath: archive.tablespace?.location ?? '', terminated: true }, bytes);
    }
    const manifest = await session.manifest();
    if (manifest) await sink.writeManifest(manifest);
    await session.result();
    await sink.finish();
    const cpu = process.cpuUsage(cpu0);
    return { ms: performance.now() - start, cpuMs: (cpu.user + cpu.system) / 1000, bytes: sizeOf(dir), dir };
  }

  function theirs(args: string[]): Run {
    const dir = newDir();
    const start = performance.now();
    const cmd = [
      oracleBin('pg_basebackup'),
      '-h',
      cluster.host,
      '-p',
      String(cluster.port),
      '-U',
      ROLES.trust,
      '-D',
      dir,
      '-Ft',
      '-Xfetch',
      '-c',
      'fast',
      '--no-sync',
      ...args,
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    // bash's `time` gives the child's CPU: pg_basebackup is one thread, so its wall time is at least that.
    const res = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ${cmd}`], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`pg_basebackup failed: ${res.stderr}`);
    const [u, s] = res.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    return { ms: performance.now() - start, cpuMs: ((u ?? 0) + (s ?? 0)) * 1000, bytes: sizeOf(dir), dir };
  }

  sharedCompressionPool();
  // One unmeasured backup first: it pays the checkpoint after loading and warms the JIT.
  await ours(resolveCompression('gzip:1'));
  const cases: [string, () => Promise<Run> | Run][] = [
    ['pg_basebackup -Ft (no compression)', () => theirs([])],
    ['ours tar (no compression)', () => ours(resolveCompression('none'))],
    ['pg_basebackup -Ft -z (gzip default)', () => theirs(['-z'])],
    ['ours tar, gzip default, parallel', () => ours(resolveCompression('gzip'))],
    ['pg_basebackup -Ft -Z 1', () => theirs(['-Z', '1'])],
    ['ours tar, gzip level 1, parallel', () => ours(resolveCompression('gzip:1'))],
  ];
  // Rounds interleave the cases, so that load from elsewhere on the machine hits them alike.
  const times = new Map<string, { ms: number[]; cpuMs: number[]; bytes: number }>();
  for (let i = 0; i < rounds; i++) {
    for (const [name, run] of cases) {
      const res = await run();
      for (const f of readdirSync(res.dir).filter((f) => f.endsWith('.gz'))) {
        const t = spawnSync('gzip', ['-t', join(res.dir, f)]);
        if (t.status !== 0) throw new Error(`${name}: ${f} is not valid gzip`);
      }
      rmSync(res.dir, { recursive: true, force: true });
      const entry = times.get(name) ?? { ms: [], cpuMs: [], bytes: res.bytes };
      entry.ms.push(res.ms);
      entry.cpuMs.push(res.cpuMs);
      times.set(name, entry);
    }
  }
  console.log(`${''.padEnd(40)} ${'wall best'.padStart(9)} ${'median'.padStart(8)} ${'cpu min'.padStart(8)}  size (${rounds} rounds)`);
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  for (const [name, { ms, cpuMs, bytes }] of times) {
    const sorted = [...ms].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `${name.padEnd(40)} ${sec(sorted[0]!).padStart(9)} ${sec(median).padStart(8)} ${sec(Math.min(...cpuMs)).padStart(8)}  ${(bytes / (1 << 20)).toFixed(0).padStart(6)} MiB`,
    );
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
} finally {
  await sharedCompressionPool().close();
  await destroyAllClusters();
}
