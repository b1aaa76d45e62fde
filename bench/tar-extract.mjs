// Tar extraction throughput: our lock-step extractor (src/tar/extract.ts) against tar-stream 3.
// Builds a ~500 MB synthetic archive in memory shaped like a PostgreSQL base.tar (many 8 KiB relation
// files, some 1 GiB-segment-like large files cut to 1 MiB..16 MiB, directories), feeds it in 64 KiB
// chunks (the size of socket reads), and has both extractors deliver every body byte to a consumer
// that only counts them.
//
// Run: node --expose-gc bench/tar-extract.mjs [sizeMB=500] [rounds=7]
// Two shapes: 'mixed' (90% 8..64 KiB files, 10% 1..16 MiB) and 'small' (all 8 KiB: header-bound).
// It bundles src/tar/extract.ts with esbuild (from node_modules) into bench/results/tmp/ first,
// so it needs no build of the package.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import tarStream from 'tar-stream';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'bench/results/tmp');
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, 'tar.mjs');
await build({
  stdin: {
    contents:
      "export { extractTar } from './src/tar/extract.ts'; export { encodeHeader } from './src/tar/header.ts'; export { padding } from './src/tar/writer.ts';",
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile: outFile,
  logLevel: 'error',
});
const { extractTar, encodeHeader, padding } = await import(pathToFileURL(outFile).href);

const sizeMB = Number(process.argv[2] ?? 500);
const rounds = Number(process.argv[3] ?? 7);
const CHUNK = 64 * 1024;

function buildArchive(targetBytes, shape) {
  const parts = [];
  let total = 0;
  let n = 0;
  const big = Buffer.alloc(16 * 1024 * 1024, 0xab);
  const add = (name, size, type = 'file') => {
    const h = encodeHeader({
      name,
      size: type === 'file' ? size : 0,
      type,
      mode: type === 'directory' ? 0o700 : 0o600,
      mtime: 1_700_000_000,
    });
    parts.push(h);
    total += 512;
    if (type === 'file' && size > 0) {
      parts.push(big.subarray(0, size), padding(size));
      total += size + padding(size).length;
    }
  };
  add('base/', 0, 'directory');
  while (total < targetBytes) {
    if (n % 100 === 0) add(`base/${n}/`, 0, 'directory');
    // 90% small relation files (8 KiB..64 KiB), 10% large ones (1..16 MiB).
    const size = shape === 'small' ? 8192 : n % 10 === 9 ? (1 + (n % 16)) * 1024 * 1024 : 8192 * (1 + (n % 8));
    add(`base/${n - (n % 100)}/${16384 + n}`, size);
    n++;
  }
  parts.push(Buffer.alloc(1024));
  total += 1024;
  return { archive: Buffer.concat(parts, total), files: n };
}

function chunks(buf) {
  const out = [];
  for (let i = 0; i < buf.length; i += CHUNK) out.push(buf.subarray(i, i + CHUNK));
  return out;
}

async function* gen(list) {
  for (const c of list) yield c;
}

async function ours(list) {
  let bytes = 0;
  let entries = 0;
  for await (const entry of extractTar(gen(list))) {
    entries++;
    for await (const c of entry.body) bytes += c.length;
  }
  return { bytes, entries };
}

async function theirs(list) {
  let bytes = 0;
  let entries = 0;
  const extract = tarStream.extract();
  const feeding = pipeline(Readable.from(gen(list), { objectMode: false }), extract);
  for await (const entry of extract) {
    entries++;
    for await (const c of entry) bytes += c.length;
  }
  await feeding;
  return { bytes, entries };
}

for (const shape of ['mixed', 'small']) {
  const { archive, files } = buildArchive(sizeMB * 1024 * 1024, shape);
  const list = chunks(archive);
  const mb = archive.length / 1024 / 1024;
  console.log(`\n${shape}: ${mb.toFixed(0)} MiB, ${files} files, ${list.length} chunks of ${CHUNK / 1024} KiB; node ${process.version}`);
  const results = { ours: [], 'tar-stream': [] };
  // Round 0 warms up the JIT and is not counted.
  for (let r = 0; r <= rounds; r++) {
    for (const [name, fn] of [
      ['ours', ours],
      ['tar-stream', theirs],
    ]) {
      globalThis.gc?.();
      const t0 = process.hrtime.bigint();
      const res = await fn(list);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.bytes === 0) throw new Error('nothing extracted');
      if (r > 0) results[name].push(ms);
      if (process.env.VERBOSE)
        console.log(`round ${r} ${name.padEnd(10)} ${ms.toFixed(0).padStart(6)} ms entries=${res.entries} bodyBytes=${res.bytes}`);
    }
  }
  for (const [name, times] of Object.entries(results)) {
    const best = Math.min(...times);
    const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
    console.log(
      `  ${name.padEnd(10)} median ${median.toFixed(0).padStart(5)} ms (${(mb / (median / 1000)).toFixed(0).padStart(5)} MiB/s), best ${best.toFixed(0).padStart(5)} ms (${(mb / (best / 1000)).toFixed(0)} MiB/s)`,
    );
  }
}
