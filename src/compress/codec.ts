/**
 * One-chunk compressors: each call turns a chunk into one complete, independent gzip member, lz4 frame
 * or zstd frame. Concatenations of these are valid streams for `gzip -d`, `lz4 -d` and `zstd -d` (RFC
 * 1952 §2.2 allows several members; the lz4 and zstd formats allow several frames), which is what lets
 * chunks be compressed on several threads at once.
 *
 * The compressor is written once, as JavaScript source text ({@link CHUNK_CODEC_SOURCE}): worker threads
 * run it with `eval`, and this thread compiles the same text. Source text, rather than a function's
 * `toString()`, because bundlers rewrite functions (esbuild's `keepNames` inserts calls to a helper the
 * worker would not have), and the package then needs no separate worker file in its build.
 * @module
 */
import { LZ4_BLOCK_WASM_BASE64 } from './lz4-block-wasm.js';

/** What a chunk compressor needs to know; plain data, posted to workers as is. */
export interface ChunkCodecConfig {
  /** The method. */
  algorithm: 'gzip' | 'lz4' | 'zstd';
  /** The level the library takes (see `effectiveLevel`). Our lz4 compressor has one level (LZ4's fast one) and ignores it. */
  level: number;
  /** zstd: long-distance matching (built-in zstd only; the package has no parameter for it). */
  longDistance: boolean;
  /** zstd: use Node's built-in zstd (22.15+) rather than the package. */
  zstdBuiltin: boolean;
  /** Resolved path of the zstd package's entry (@mongodb-js/zstd), when the built-in is missing. */
  zstdModule?: string;
  /**
   * lz4: which block compressor to use; `js` forces the JavaScript one, which otherwise runs only where
   * WebAssembly cannot (node --jitless). For tests and benchmarks.
   * @default 'wasm'
   * @internal
   */
  lz4Blocks?: 'wasm' | 'js';
}

/**
 * A chunk compressor: compresses `input` into `output` and returns the length written, or returns the
 * result in memory of its own when `output` is too small. Synchronous for gzip, lz4 and built-in zstd,
 * asynchronous for the zstd package.
 */
export type ChunkCodec = ((input: Uint8Array, output: Uint8Array) => number | Uint8Array | Promise<number | Uint8Array>) & {
  /**
   * lz4 with WebAssembly blocks: a buffer of `bytes` in the compressor's own memory, for the caller to
   * fill with its chunks; compressing a view of it that starts at its start reads the chunk in place
   * instead of copying it in. One per codec (later calls, and a size of 0, return null). While it is in
   * use, give the codec only views of it: another input may grow the memory, which detaches the buffer.
   */
  inputBuffer?: (bytes: number) => Uint8Array<ArrayBuffer> | null;
};

/**
 * Room for one chunk's compressed form: deflate's, lz4's and zstd's worst cases for incompressible
 * input all stay well below 1/128 of the input plus a fixed kilobyte.
 */
export function compressedBound(inputBytes: number): number {
  return inputBytes + (inputBytes >> 7) + 1024;
}

/**
 * `function (req, config, collect?, pool?) → (input, output) → length or bytes`: the compressor for one
 * {@link ChunkCodecConfig} ({@link ChunkCodec}); `req` is a `require` that resolves packages from this
 * library's location (the zstd package), `collect` an optional function
 * that runs a (minor) garbage collection, `pool` true to compress gzip on libuv's thread pool
 * (asynchronously) rather than on the calling thread. zstd frames carry a checksum, as `zstd` writes by default, so
 * that `zstd -d` and our decoder detect corruption. lz4 frames carry none, like pg_basebackup's client
 * lz4 (FLG 0x40): XXH32 over every byte was 40% of our lz4 time, and the backup manifest's per-file
 * checksums, which `pgbb verify` checks, cover the content.
 */
export const CHUNK_CODEC_SOURCE = `function (req, config, collect, pool) {
  var zlib = req('node:zlib');
  // lz4: the block compressor's module, and how far into a block it judges whether the block is worth
  // compressing (far enough for LZ4's window to be warm: shorter prefixes understate the saving).
  var LZ4_WASM = '${LZ4_BLOCK_WASM_BASE64}', LZ4_PROBE = 32768, LZ4_PROBE_AFTER_STORED = 8192;
  var copyOut = function (result, output) {
    if (result.length > output.length) return result;
    output.set(result);
    return result.length;
  };
  // zlib's one-shot functions allocate their result, and a worker's heap frees that memory only at its
  // next garbage collection: tens of megabytes per thread at these rates. So one stream object per
  // configuration is kept, and its native handle compresses each chunk straight into the output buffer
  // (what zlib's own synchronous path does: writeSync with the finishing flag, results in _writeState),
  // then is reset for the next member or frame. Where the handle is not what is expected, the one-shot
  // function is used.
  function direct(stream, finish, oneShot) {
    var h = stream._handle, state = stream._writeState;
    if (!h || typeof h.writeSync !== 'function' || typeof h.reset !== 'function' || !state || state.length < 2) return oneShot;
    return function (input, output) {
      if (output.length === 0) return oneShot(input, output);
      h.writeSync(finish, input, 0, input.length, output, 0, output.length);
      var availOut = state[0], availIn = state[1];
      h.reset();
      // Not finished within the buffer (or failed): the one-shot function does it, or throws the error.
      if (availIn !== 0 || availOut === 0 || stream.destroyed) return oneShot(input, output);
      return output.length - availOut;
    };
  }
  // zlib's streams compress on libuv's thread pool: parallel work without a worker's isolate. A stream
  // per chunk in flight is kept and reset after each member, because setting one up (deflate's window
  // and hash tables, fresh pages from the allocator each time) cost 40% more CPU than the reused one.
  // Each chunk is written, then flushed with the finishing flag; the flush's callback comes after the
  // member's last bytes were emitted, which are copied into the output buffer. A stream that failed is
  // dropped.
  function onPool(make, finish) {
    var idle = [];
    function lane() {
      var s = make(), parts = [], settle = null;
      s.on('data', function (part) { parts.push(part); });
      s.on('error', function (err) {
        s.failed = true;
        if (settle) settle(err);
      });
      s.run = function (input, output) {
        return new Promise(function (resolve, reject) {
          settle = function (err) {
            settle = null;
            var done = parts, length = 0;
            parts = [];
            if (err) return reject(err);
            s.reset();
            idle.push(s);
            for (var i = 0; i < done.length; i++) length += done[i].length;
            if (length > output.length) return resolve(Buffer.concat(done, length));
            for (var j = 0, at = 0; j < done.length; j++) { output.set(done[j], at); at += done[j].length; }
            resolve(length);
          };
          s.write(input);
          s.flush(finish, function () { if (settle && !s.failed) settle(null); });
        });
      };
      return s;
    }
    return function (input, output) {
      return (idle.pop() || lane()).run(input, output);
    };
  }
  if (config.algorithm === 'gzip') {
    var gzipOptions = { level: config.level };
    if (pool) return onPool(function () { return zlib.createGzip({ level: config.level, chunkSize: 65536 }); }, zlib.constants.Z_FINISH);
    return direct(zlib.createGzip(gzipOptions), zlib.constants.Z_FINISH,
      function (input, output) { return copyOut(zlib.gzipSync(input, gzipOptions), output); });
  }
  if (config.algorithm === 'lz4') return makeLz4(config.lz4Blocks === 'js' ? null : loadLz4Block());
  if (config.zstdBuiltin) {
    var c = zlib.constants;
    var params = {};
    params[c.ZSTD_c_compressionLevel] = config.level;
    params[c.ZSTD_c_checksumFlag] = 1;
    if (config.longDistance) params[c.ZSTD_c_enableLongDistanceMatching] = 1;
    var zstdOptions = { params: params };
    return direct(zlib.createZstdCompress(zstdOptions), c.ZSTD_e_end,
      function (input, output) { return copyOut(zlib.zstdCompressSync(input, zstdOptions), output); });
  }
  var zstd = req(config.zstdModule || '@mongodb-js/zstd');
  return function (input, output) {
    // The package's results are native buffers that only a garbage collection frees, and a worker's
    // heap sees too little allocation to collect often: the worker passes a minor collection to run
    // before each chunk, when the previous result is garbage.
    if (collect) collect();
    var b = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    return zstd.compress(b, config.level).then(function (result) { return copyOut(result, output); });
  };

  // LZ4 blocks from our WebAssembly module (lz4-block.wat). Its memory: the hash table, the input area,
  // then one block's output. A block is compressed where it lies when the input is a view of the buffer
  // that inputBuffer() handed out (from its start), else copied into the input area first; the result
  // is copied into the frame. The memory grows to the largest block seen and is reused, so nothing is
  // allocated per call. The module gives up on a block that shrinks by less than 1/20 over its first
  // probe bytes, which is then stored. Returns (src, s, e, dst, d, dstEnd, probe) -> end in dst or -1
  // (no room, or given up: store the block), with inputBuffer attached, or null where WebAssembly cannot
  // run (node --jitless has none): the JavaScript compressor then does all the work.
  function loadLz4Block() {
    try {
      var x = new WebAssembly.Instance(new WebAssembly.Module(req('node:buffer').Buffer.from(LZ4_WASM, 'base64'))).exports;
      var TABLE = 16384, reserved = 0, mem = new Uint8Array(x.memory.buffer);
      var fit = function (bytes) {
        var have = x.memory.buffer.byteLength;
        if (bytes > have) {
          x.memory.grow(Math.ceil((bytes - have) / 65536));
          mem = new Uint8Array(x.memory.buffer);
        }
      };
      var block = function (src, s, e, dst, d, dstEnd, probe) {
        var n = e - s, cap = dstEnd - d, at = TABLE + s, out = TABLE + reserved;
        if (reserved === 0 || src.buffer !== x.memory.buffer || src.byteOffset !== TABLE) {
          at = out;
          out += n;
          fit(out + cap);
          mem.set(src.subarray(s, e), at);
        }
        var r = x.compress(at, n, out, cap, probe);
        if (r < 0) return -1;
        dst.set(mem.subarray(out, out + r), d);
        return d + r;
      };
      // Room for the output of the largest block (4 MiB) of an input that size is reserved with it, so
      // that compressing views of it never grows the memory (which would detach the buffer).
      block.inputBuffer = function (bytes) {
        if (reserved !== 0 || bytes <= 0) return null;
        fit(TABLE + bytes + Math.min(bytes, 4 << 20));
        reserved = bytes;
        return new Uint8Array(x.memory.buffer, TABLE, bytes);
      };
      return block;
    } catch (e) {
      return null;
    }
  }

  // LZ4 frames written here, with the blocks from the WebAssembly compressor above when it loaded and
  // from the JavaScript one below otherwise (a native binding was tried: its per-call buffers live
  // outside the JavaScript heap until a garbage collection, and with lz4 that garbage, not the work, set
  // the memory and much of the time). Frame: magic, FLG 0x60 (version 1, independent blocks, no block or content
  // checksum, as pg_basebackup writes), BD (the block maximum), header checksum; blocks (a stored block
  // when compressing does not shrink it); end mark. Block format: LZ4's sequences (token, literals, 16-bit
  // offset, match length), minimum match 4, the last 5 bytes literals and no match starting in the last 12.
  function makeLz4(wasmBlock) {
    var table = new Int32Array(4096);
    function put32(b, i, v) { b[i] = v; b[i + 1] = v >>> 8; b[i + 2] = v >>> 16; b[i + 3] = v >>> 24; }
    function lastLiterals(src, anchor, e, dst, d, dstEnd) {
      var lit = e - anchor;
      if (d + 1 + lit + ((lit + 240) / 255 | 0) > dstEnd) return -1;
      if (lit >= 15) { dst[d++] = 0xf0; var l = lit - 15; while (l >= 255) { dst[d++] = 255; l -= 255; } dst[d++] = l; } else dst[d++] = lit << 4;
      dst.set(src.subarray(anchor, e), d);
      return d + lit;
    }
    // Compresses src[s, e) into dst from d; returns the end in dst, or -1 when it would pass dstEnd.
    function block(src, words, s, e, dst, d, dstEnd) {
      var mflimit = e - 12, matchlimit = e - 5, anchor = s, ip = s + 1;
      if (e - s < 13) return lastLiterals(src, anchor, e, dst, d, dstEnd);
      table.fill(s - 65536);
      for (;;) {
        var step = 1, attempts = 33, ref = 0, seq = 0;
        // LZ4's acceleration, with the step growing after every 32 misses rather than 64: incompressible
        // data is skipped twice as fast (in JavaScript it dominated the time), for 0.01% of ratio on a
        // base backup. A candidate is checked by its first byte before the other three are loaded.
        for (;;) {
          if (ip > mflimit) return lastLiterals(src, anchor, e, dst, d, dstEnd);
          seq = src[ip] | (src[ip + 1] << 8) | (src[ip + 2] << 16) | (src[ip + 3] << 24);
          var hash = Math.imul(seq, -1640531535) >>> 20;
          ref = table[hash];
          table[hash] = ip;
          if (ip - ref < 65536 && src[ref] === (seq & 255) && (src[ref] | (src[ref + 1] << 8) | (src[ref + 2] << 16) | (src[ref + 3] << 24)) === seq) break;
          ip += step;
          step = attempts++ >> 5;
        }
        while (ip > anchor && ref > s && src[ip - 1] === src[ref - 1]) { ip--; ref--; }
        var q = ip + 4, r = ref + 4;
        // Matches at a distance that is a multiple of 4 (most, in PostgreSQL's 8-byte aligned tuples) are
        // extended a word at a time once aligned: 20% less time on a base backup. Equality of two words
        // does not depend on byte order.
        if (words !== null && ((q - r) & 3) === 0) {
          while ((q & 3) !== 0 && q < matchlimit && src[q] === src[r]) { q++; r++; }
          if ((q & 3) === 0) while (q + 4 <= matchlimit && words[q >> 2] === words[r >> 2]) { q += 4; r += 4; }
        }
        while (q < matchlimit && src[q] === src[r]) { q++; r++; }
        var lit = ip - anchor, mlen = q - ip;
        if (d + lit + ((lit + 240) / 255 | 0) + 8 + ((mlen + 240) / 255 | 0) > dstEnd) return -1;
        var tok = d++, t, n;
        if (lit >= 15) { t = 0xf0; n = lit - 15; while (n >= 255) { dst[d++] = 255; n -= 255; } dst[d++] = n; } else t = lit << 4;
        if (lit > 32) { dst.set(src.subarray(anchor, ip), d); d += lit; } else for (var k = anchor; k < ip; k++) dst[d++] = src[k];
        var off = ip - ref;
        dst[d++] = off & 255; dst[d++] = off >>> 8;
        n = mlen - 4;
        if (n >= 15) { t |= 15; n -= 15; while (n >= 255) { dst[d++] = 255; n -= 255; } dst[d++] = n; } else t |= n;
        dst[tok] = t;
        ip = q; anchor = q;
        if (ip > mflimit) return lastLiterals(src, anchor, e, dst, d, dstEnd);
        var p = ip - 2;
        table[Math.imul(src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24), -1640531535) >>> 20] = p;
      }
    }
    // Blocks of at most 64 KiB (BD 4), as liblz4 writes by default for pg_basebackup and pg_receivewal:
    // every position the hash table holds is then within LZ4's 64 KiB reach, which made the WebAssembly
    // compressor 14% faster on insert-heavy WAL than 256 KiB blocks (bench/lz4-codecs.ts). The header's
    // last byte is its checksum, (XXH32(FLG, BD) >> 8) & 0xff, precomputed (the unit tests recompute it).
    var BLOCK = 1 << 16;
    var header = new Uint8Array([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
    var codec = function (input, output) {
      var n = input.length;
      var need = 7 + 4 * (Math.ceil(n / BLOCK) + 1) + n;
      var dst = output.length >= need ? output : new Uint8Array(need);
      var words = (input.byteOffset & 3) === 0 ? new Int32Array(input.buffer, input.byteOffset, n >> 2) : null;
      dst.set(header, 0);
      var d = 7;
      // After a block given up on, the next one is given up on sooner: incompressible WAL (compressed
      // or random data in TOAST) comes in runs longer than a block.
      var probe = LZ4_PROBE;
      for (var s = 0; s < n; s += BLOCK) {
        var e = Math.min(n, s + BLOCK);
        var end = -1;
        if (wasmBlock !== null) {
          try {
            end = wasmBlock(input, s, e, dst, d + 4, d + 4 + (e - s) - 1, probe);
          } catch (err) {
            // A trap (say, out of memory) leaves the instance in an unknown state: JavaScript from now on.
            wasmBlock = null;
          }
          probe = end < 0 ? LZ4_PROBE_AFTER_STORED : LZ4_PROBE;
        }
        if (wasmBlock === null) end = block(input, words, s, e, dst, d + 4, d + 4 + (e - s) - 1);
        if (end < 0) {
          put32(dst, d, ((e - s) | 0x80000000) >>> 0);
          dst.set(input.subarray(s, e), d + 4);
          d += 4 + (e - s);
        } else {
          put32(dst, d, end - d - 4);
          d = end;
        }
      }
      put32(dst, d, 0);
      return dst === output ? d + 4 : dst.subarray(0, d + 4);
    };
    if (wasmBlock !== null) codec.inputBuffer = wasmBlock.inputBuffer;
    return codec;
  }
}`;

type CodecFactory = (req: (id: string) => unknown, config: ChunkCodecConfig, collect: undefined, pool: boolean) => ChunkCodec;
let factory: CodecFactory | undefined;

/**
 * Builds the compressor for one configuration on this thread (`req` is a `createRequire(...)`); with
 * `pool`, gzip compresses on libuv's thread pool (the zstd package always does).
 * @throws whatever loading the library throws (the callers check the packages first).
 */
export function createChunkCodec(req: (id: string) => unknown, config: ChunkCodecConfig, pool = false): ChunkCodec {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  factory ??= new Function(`return (${CHUNK_CODEC_SOURCE});`)() as CodecFactory;
  return factory(req, config, undefined, pool);
}
