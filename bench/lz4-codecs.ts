/**
 * lz4 block compressors on real WAL, in one process, on one thread: what client-side lz4 costs per byte
 * with each candidate, beside the `lz4` tool (liblz4, what pg_receivewal and pg_basebackup link) as the
 * reference. Each set of files (a directory of WAL segments, or files) is cut into chunks as the WAL
 * sink cuts a segment (256 KiB, one block each) and compressed by each candidate in turn, the
 * candidates alternating within every round; the figures are the median, minimum and maximum over the
 * rounds of this process's CPU time (user + system), or the `lz4` child's, as MB/s.
 *
 * Candidates: `direct` (DirectCompressor as the WAL sink drives it, fed 64 KiB pieces), `codec` (our chunk codec as the WAL sink calls it: WebAssembly blocks, frames, the probe
 * that stores blocks LZ4 barely shrinks), `wasm` and `wasm-noprobe` (the module alone, copies in and out
 * included), `wasm-64k` and `wasm-1m` (other block sizes), `copy` (only the copy into the module's
 * memory), `lz4_flex` (the package lz4-wasm-nodejs through its raw exports, the codec's blocks before; when it
 * is installed),
 * `js` (our JavaScript blocks), `lz4-napi` (lz4_flex built natively; only when LZ4_NAPI_NODE names its
 * `.node` file, since the package is not a dependency), and `lz4 -1` with pg_receivewal's frame settings
 * (64 KiB linked blocks, no checksum: `-B4 -BD --no-frame-crc`) and with ours (`-B5 -BI`), reading the
 * set's files concatenated from the page cache and writing to /dev/null.
 *
 * Run: npx tsx bench/lz4-codecs.ts [--rounds=N] [--only=a,b] SET...
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { compressedBound, createChunkCodec, type ChunkCodecConfig } from '../src/compress/codec.js';
import { DirectCompressor } from '../src/compress/direct.js';
import { LZ4_BLOCK_WASM_BASE64 } from '../src/compress/lz4-block-wasm.js';
import { DEFAULT_CHUNK_BYTES } from '../src/compress/parallel.js';

const require = createRequire(import.meta.url);
const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, only: { type: 'string' } },
  allowPositionals: true,
});
const rounds = Number(values.rounds);
const CHUNK = DEFAULT_CHUNK_BYTES.lz4;
const MB = 1e6;

/** The little of WebAssembly's API used here (the project's type libraries do not declare it). */
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
const { Module, Instance } = (
  globalThis as unknown as {
    WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports?: object) => { exports: unknown } };
  }
).WebAssembly;

/** A candidate compresses a whole set and returns its compressed size. */
type Candidate = (data: Buffer) => { bytes: number };

function eachChunk(data: Buffer, size: number, f: (chunk: Buffer) => number): number {
  let out = 0;
  for (let o = 0; o < data.length; o += size) out += f(data.subarray(o, Math.min(data.length, o + size)));
  return out;
}

/** DirectCompressor as the WAL sink drives it (one chunk at a time on this thread), fed 64 KiB reads. */
function directCandidate(): Candidate {
  const c = new DirectCompressor('lz4', { threads: 0, maxInFlight: 1, chunkBytes: CHUNK });
  return (data) => {
    c.reset();
    const emit = (): void => undefined;
    for (let o = 0; o < data.length; o += 65536) void c.write(data.subarray(o, o + 65536), emit);
    void c.end(emit);
    return { bytes: c.bytesOut };
  };
}

function codecCandidate(config: ChunkCodecConfig): Candidate {
  const codec = createChunkCodec(require, config);
  const output = new Uint8Array(compressedBound(CHUNK));
  return (data) => ({
    bytes: eachChunk(data, CHUNK, (c) => {
      const r = codec(c, output) as number | Uint8Array;
      return typeof r === 'number' ? r : r.length;
    }),
  });
}

/** Our module called directly; a block it declines is counted stored. */
function wasmCandidate(block: number, probe: number, copyOnly = false): Candidate {
  const x = new Instance(new Module(Buffer.from(LZ4_BLOCK_WASM_BASE64, 'base64'))).exports as {
    memory: WasmMemory;
    compress: (src: number, n: number, dst: number, cap: number, probe: number) => number;
  };
  const TABLE = 16384;
  x.memory.grow(Math.ceil((TABLE + 2 * block) / 65536));
  const mem = new Uint8Array(x.memory.buffer);
  const out = new Uint8Array(block);
  return (data) => ({
    bytes: eachChunk(data, block, (c) => {
      mem.set(c, TABLE);
      if (copyOnly) return c.length;
      const r = x.compress(TABLE, c.length, TABLE + c.length, c.length - 1, probe);
      if (r < 0) return c.length;
      out.set(mem.subarray(TABLE + c.length, TABLE + c.length + r));
      return r;
    }),
  });
}

/** lz4-wasm-nodejs's .wasm through its raw exports (wasm-bindgen's ABI), as the codec called it. */
function lz4FlexCandidate(): Candidate {
  const file = join(dirname(require.resolve('lz4-wasm-nodejs')), 'lz4_wasm_nodejs_bg.wasm');
  const x = new Instance(new Module(readFileSync(file)), {
    __wbindgen_placeholder__: { __wbindgen_string_new: () => 0 },
  }).exports as Record<string, (...a: number[]) => number> & { memory: WasmMemory };
  const out = new Uint8Array(CHUNK + 1024);
  return (data) => ({
    bytes: eachChunk(data, CHUNK, (c) => {
      const retptr = x.__wbindgen_add_to_stack_pointer!(-16);
      const ptr = x.__wbindgen_malloc!(c.length);
      new Uint8Array(x.memory.buffer).set(c, ptr);
      x.compress!(retptr, ptr, c.length);
      const i32 = new Int32Array(x.memory.buffer);
      const r = i32[retptr >> 2]!;
      const rn = i32[(retptr >> 2) + 1]!;
      if (rn - 4 < c.length) out.set(new Uint8Array(x.memory.buffer, r + 4, rn - 4));
      x.__wbindgen_free!(r, rn);
      x.__wbindgen_add_to_stack_pointer!(16);
      return Math.min(rn - 4, c.length);
    }),
  });
}

function napiCandidate(nodeFile: string): Candidate {
  const napi = require(nodeFile) as { compressSync: (b: Buffer) => Buffer };
  return (data) => ({ bytes: eachChunk(data, CHUNK, (c) => Math.min(c.length, napi.compressSync(c).length)) });
}

/** The lz4 tool on the set's concatenation, its CPU from GNU time (the `wc` counting its output is not included). */
function timedCli(flags: string[], file: string): { bytes: number; cpuMs: number } {
  const script = `out=$( { /usr/bin/time -f '%U %S' lz4 -q ${flags.join(' ')} -c "$0" | wc -c; } 2>&1 ); echo "$out"`;
  const lines = execFileSync('bash', ['-c', script, file], { encoding: 'utf8' }).trim().split('\n');
  const [user, sys] = lines
    .find((l) => /^\d+\.\d+ \d+\.\d+$/.test(l))!
    .split(' ')
    .map(Number);
  const bytes = Number(lines.find((l) => /^\d+$/.test(l)));
  return { bytes, cpuMs: (user! + sys!) * 1000 };
}

const base: ChunkCodecConfig = { algorithm: 'lz4', level: 1, longDistance: false, zstdBuiltin: false };
const candidates: Record<string, Candidate | { cli: string[] }> = {
  direct: directCandidate(),
  codec: codecCandidate(base),
  wasm: wasmCandidate(CHUNK, 32768),
  'wasm-noprobe': wasmCandidate(CHUNK, 0),
  'wasm-64k': wasmCandidate(64 * 1024, 32768),
  'wasm-1m': wasmCandidate(1 << 20, 32768),
  copy: wasmCandidate(CHUNK, 0, true),
  js: codecCandidate({ ...base, lz4Blocks: 'js' }),
  'lz4 -1 -B4 -BD': { cli: ['-1', '-B4', '-BD', '--no-frame-crc'] },
  'lz4 -1 -B5 -BI': { cli: ['-1', '-B5', '-BI', '--no-frame-crc'] },
};
try {
  candidates.lz4_flex = lz4FlexCandidate();
} catch {
  // lz4-wasm-nodejs is not installed: no lz4_flex figures.
}
if (process.env.LZ4_NAPI_NODE) candidates['lz4-napi'] = napiCandidate(process.env.LZ4_NAPI_NODE);
const only = values.only?.split(',');
const names = Object.keys(candidates).filter((n) => !only || only.includes(n));

const scratch = mkdtempSync(join(tmpdir(), 'pgbb-lz4-codecs-'));
try {
  const sets = positionals.map((p) => {
    const files = statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => /^[0-9A-F]{24}$/.test(f))
          .sort()
          .map((f) => join(p, f))
      : [p];
    const data = Buffer.concat(files.map((f) => readFileSync(f)));
    const file = join(scratch, `${basename(p)}.bin`);
    writeFileSync(file, data);
    return { name: basename(p), data, file };
  });
  const cpu = new Map<string, number[]>();
  const ratio = new Map<string, number>();
  for (let r = 0; r < rounds; r++) {
    for (const set of sets) {
      for (const name of names) {
        const c = candidates[name]!;
        let ms: number;
        let bytes: number;
        if ('cli' in c) {
          ({ bytes, cpuMs: ms } = timedCli(c.cli, set.file));
        } else {
          const t = process.cpuUsage();
          bytes = c(set.data).bytes;
          const u = process.cpuUsage(t);
          ms = (u.user + u.system) / 1000;
        }
        const key = `${set.name}\t${name}`;
        cpu.set(key, [...(cpu.get(key) ?? []), ms]);
        ratio.set(key, bytes / set.data.length);
      }
    }
  }
  console.log(`${rounds} rounds, CPU of one thread (lz4: the child's), MB/s from the median (min-max of CPU ms)`);
  console.log(['set', 'MB', 'candidate', 'MB/s', 'CPU ms median', 'min-max', 'size ratio'].join('\t'));
  for (const set of sets) {
    for (const name of names) {
      const key = `${set.name}\t${name}`;
      const v = [...cpu.get(key)!].sort((a, b) => a - b);
      const med = v[Math.floor(v.length / 2)]!;
      console.log(
        [
          set.name,
          (set.data.length / MB).toFixed(0),
          name,
          (set.data.length / MB / (med / 1000)).toFixed(0),
          med.toFixed(0),
          `${v[0]!.toFixed(0)}-${v.at(-1)!.toFixed(0)}`,
          ratio.get(key)!.toFixed(3),
        ].join('\t'),
      );
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
