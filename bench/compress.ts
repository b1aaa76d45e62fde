// Client-side compression throughput: our parallel compressor (src/compress/parallel.ts) against
// single-threaded zlib (what pg_basebackup does: one deflate stream on its main thread) and the gzip
// tool, on mixed data shaped like a base backup: half random bytes (already-compressed or TOASTed data),
// half pgbench_accounts-like text rows, alternating in 8 MiB stretches.
//
// Run: npx tsx bench/compress.ts [sizeMB=500] [threads=os.availableParallelism()] [rounds=2]
// Every result is checked by decompressing it. Wall time is the best of `rounds`; CPU is that round's
// user+system time of this process (workers included), or of the gzip child.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { ParallelCompressor } from '../src/compress/parallel.js';
import { sharedCompressionPool } from '../src/compress/worker.js';

const sizeMB = Number(process.argv[2] ?? 500);
const threads = Number(process.argv[3] ?? availableParallelism());
const rounds = Number(process.argv[4] ?? 2);
const STRETCH = 8 << 20;
const FEED = 64 * 1024; // socket-read-sized pieces, as the session hands them on

function makeText(bytes: number, start: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes + 256);
  let at = 0;
  let aid = start;
  while (at < bytes) {
    at += buf.write(`${aid}\t${1 + (aid % 10)}\t${((aid * 7919) % 10007) - 5003}\t${' '.repeat(84)}\n`, at, 'latin1');
    aid++;
  }
  return buf.subarray(0, bytes);
}

function makeData(total: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < total; at += STRETCH, i++) {
    const n = Math.min(STRETCH, total - at);
    parts.push(i % 2 === 0 ? makeText(n, 1 + i * 100_000) : randomBytes(n));
  }
  return Buffer.concat(parts);
}

function* pieces(data: Buffer): Generator<Buffer> {
  for (let i = 0; i < data.length; i += FEED) yield data.subarray(i, i + FEED);
}

async function run(make: () => NodeJS.ReadWriteStream): Promise<{ ms: number; cpuMs: number; out: Buffer[] }> {
  const out: Buffer[] = [];
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await pipeline(
    Readable.from(pieces(data)),
    make() as unknown as Writable,
    new Writable({
      write(b: Buffer, _e, cb) {
        out.push(b);
        cb();
      },
    }),
  );
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, out };
}

const data = makeData(sizeMB << 20);
const dir = mkdtempSync(join(tmpdir(), 'pgbb-bench-'));
const file = join(dir, 'data.bin');
writeFileSync(file, data);
// Warm the pool so thread start-up is not counted (a backup starts it once).
sharedCompressionPool(threads);

interface Row {
  name: string;
  ms: number;
  cpuMs: number;
  outBytes: number;
}
const rows: Row[] = [];
const mbps = (ms: number) => (data.length / (1 << 20) / (ms / 1000)).toFixed(0);

async function measure(name: string, make: () => NodeJS.ReadWriteStream): Promise<void> {
  let best: Row | undefined;
  for (let r = 0; r < rounds; r++) {
    const res = await run(make);
    const compressed = Buffer.concat(res.out);
    if (r === 0 && !zlib.gunzipSync(compressed).equals(data)) throw new Error(`${name}: output does not decompress to the input`);
    if (!best || res.ms < best.ms) best = { name, ms: res.ms, cpuMs: res.cpuMs, outBytes: compressed.length };
  }
  rows.push(best!);
  console.log(
    `${name.padEnd(38)} ${best!.ms.toFixed(0).padStart(7)} ms  ${mbps(best!.ms).padStart(5)} MB/s  cpu ${best!.cpuMs.toFixed(0).padStart(7)} ms  ratio ${(best!.outBytes / data.length).toFixed(3)}`,
  );
}

function measureTool(name: string, args: string[]): void {
  let best: Row | undefined;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const res = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time (gzip ${args.join(' ')} -c '${file}' | wc -c)`], { encoding: 'utf8' });
    const ms = performance.now() - t0;
    const [u, s] = res.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    const outBytes = Number(res.stdout.trim());
    if (!best || ms < best.ms) best = { name, ms, cpuMs: ((u ?? 0) + (s ?? 0)) * 1000, outBytes };
  }
  rows.push(best!);
  console.log(
    `${name.padEnd(38)} ${best!.ms.toFixed(0).padStart(7)} ms  ${mbps(best!.ms).padStart(5)} MB/s  cpu ${best!.cpuMs.toFixed(0).padStart(7)} ms  ratio ${(best!.outBytes / data.length).toFixed(3)}`,
  );
}

console.log(
  `${(data.length / (1 << 20)).toFixed(0)} MiB mixed data, ${threads} threads, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, best of ${rounds}`,
);
for (const level of [1, 6]) {
  await measure(
    `ours, parallel gzip -${level} (${threads} threads)`,
    () => new ParallelCompressor({ algorithm: 'gzip', level }, { threads }),
  );
  await measure(`zlib gzip -${level}, one thread`, () => zlib.createGzip({ level }));
  measureTool(`gzip tool -${level}`, [`-${level}`]);
}
rmSync(dir, { recursive: true, force: true });
await sharedCompressionPool().close();
for (const level of [1, 6]) {
  const ours = rows.find((r) => r.name.startsWith(`ours, parallel gzip -${level}`))!;
  const single = rows.find((r) => r.name.startsWith(`zlib gzip -${level}`))!;
  const cli = rows.find((r) => r.name.startsWith(`gzip tool -${level}`))!;
  console.log(
    `level ${level}: ours is ${(single.ms / ours.ms).toFixed(2)}x single-threaded zlib, ${(cli.ms / ours.ms).toFixed(2)}x the gzip tool`,
  );
}
