/**
 * File checksums on worker threads, so that checksumming a plain backup uses more than one core
 * (JavaScript CRC-32C is several times slower per core than the CPU's CRC instruction pg_verifybackup
 * uses). Each worker reads whole files with its own buffer and returns the digest.
 *
 * The worker is given as source text (`eval: true`) so it runs the same from the TypeScript sources
 * and from the built package. Its CRC-32C is that of `@node-rs/crc32` when the main thread uses it (the
 * worker loads it from the path it is given, and checks it on the RFC 3720 check value), else the same
 * slice-by-8 (whole words through an aligned Int32Array) as `manifest/crc32c.ts`; the results are checked
 * against that implementation by the tests.
 * @module
 */
import type { Worker } from 'node:worker_threads';
import { nodeWorkerThreads } from '../builtins.js';
import type { ManifestFileChecksumAlgorithm } from '../manifest/checksum.js';
import { crc32cImplementation } from '../manifest/crc32c.js';
import { nativeCrc32cModulePath } from '../manifest/crc32c-native.js';

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const T = new Int32Array(2048);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n];
  for (let k = 1; k < 8; k++) { c = T[c & 0xff] ^ (c >>> 8); T[k * 256 + n] = c; }
}
const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function crc(c, d, i, end) {
  if (LE && end - i >= 64) {
    while (((d.byteOffset + i) & 3) !== 0) c = T[(c ^ d[i++]) & 0xff] ^ (c >>> 8);
    const pairs = (end - i) >>> 3;
    const w = new Int32Array(d.buffer, d.byteOffset + i, pairs * 2);
    for (let j = 0; j < w.length; j += 2) {
      const lo = c ^ w[j];
      const hi = w[j + 1];
      c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^ T[1024 + (lo >>> 24)] ^
        T[768 + (hi & 0xff)] ^ T[512 + ((hi >>> 8) & 0xff)] ^ T[256 + ((hi >>> 16) & 0xff)] ^ T[hi >>> 24];
    }
    i += pairs * 8;
  }
  const stop8 = end - ((end - i) & 7);
  while (i < stop8) {
    const lo = c ^ (d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24));
    c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^ T[1024 + (lo >>> 24)] ^
      T[768 + d[i + 4]] ^ T[512 + d[i + 5]] ^ T[256 + d[i + 6]] ^ T[d[i + 7]];
    i += 8;
  }
  while (i < end) c = T[(c ^ d[i++]) & 0xff] ^ (c >>> 8);
  return c;
}
let native = null;
if (workerData && workerData.crc32cModule) {
  try {
    const f = require(workerData.crc32cModule).crc32c;
    const check = Buffer.from('123456789');
    if (f(check) === 0xe3069283 && f(check.subarray(4), f(check.subarray(0, 4))) === 0xe3069283) native = f;
  } catch (err) {
    native = null;
  }
}
const buf = Buffer.allocUnsafe(1 << 20);
const REPORT = 8 << 20;
parentPort.on('message', (m) => {
  let fd;
  try {
    fd = openSync(m.path, 'r');
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message), stage: 'open' });
    return;
  }
  let total = 0;
  let pending = 0;
  let c = -1;
  const h = m.algorithm === 'CRC32C' || m.algorithm === 'NONE' ? null : createHash(m.algorithm.toLowerCase());
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      if (h) h.update(buf.subarray(0, n));
      else if (m.algorithm === 'CRC32C') c = native && n >= 256 ? ~native(buf.subarray(0, n), ~c >>> 0) : crc(c, buf, 0, n);
      total += n;
      pending += n;
      if (pending >= REPORT) { parentPort.postMessage({ id: m.id, progress: pending }); pending = 0; }
    }
  } catch (err) {
    closeSync(fd);
    parentPort.postMessage({ id: m.id, error: String(err && err.message), stage: 'read' });
    return;
  }
  closeSync(fd);
  let digest;
  if (h) digest = h.digest();
  else if (m.algorithm === 'CRC32C') { digest = Buffer.alloc(4); digest.writeUInt32LE((c ^ -1) >>> 0); }
  else digest = Buffer.alloc(0);
  parentPort.postMessage({ id: m.id, progress: pending, bytes: total, digest });
});
`;

/** The outcome of checksumming one file. */
export type PooledChecksum = { ok: true; bytes: number; digest: Buffer } | { ok: false; stage: 'open' | 'read'; error: string };

interface Reply {
  id: number;
  progress?: number;
  bytes?: number;
  digest?: Uint8Array;
  error?: string;
  stage?: 'open' | 'read';
}

/** One worker thread, one file at a time. */
export class ChecksumThread {
  private readonly worker: Worker;
  private nextId = 0;
  private current:
    | { id: number; resolve: (r: PooledChecksum) => void; reject: (e: unknown) => void; onBytes: (n: number) => void }
    | undefined;

  constructor() {
    // The package where this thread uses it (not when a test forced JavaScript).
    const crc32cModule = crc32cImplementation() === 'native' ? nativeCrc32cModulePath() : undefined;
    this.worker = new (nodeWorkerThreads().Worker)(WORKER_SOURCE, { eval: true, workerData: { crc32cModule } });
    this.worker.on('message', (m: Reply) => {
      const cur = this.current;
      if (!cur || m.id !== cur.id) return;
      if (m.progress) cur.onBytes(m.progress);
      if (m.error !== undefined) {
        this.current = undefined;
        cur.resolve({ ok: false, stage: m.stage ?? 'read', error: m.error });
      } else if (m.digest !== undefined) {
        this.current = undefined;
        cur.resolve({ ok: true, bytes: m.bytes ?? 0, digest: Buffer.from(m.digest) });
      }
    });
    this.worker.on('error', (err) => {
      const cur = this.current;
      this.current = undefined;
      cur?.reject(err);
    });
    this.worker.on('exit', () => {
      const cur = this.current;
      this.current = undefined;
      cur?.reject(new Error('the checksum thread stopped'));
    });
  }

  /** Checksum `path` with `algorithm`; `onBytes` hears about progress. */
  checksum(path: string, algorithm: ManifestFileChecksumAlgorithm, onBytes: (n: number) => void): Promise<PooledChecksum> {
    if (this.current) return Promise.reject(new Error('ChecksumThread is busy'));
    return new Promise((resolve, reject) => {
      const id = ++this.nextId;
      this.current = { id, resolve, reject, onBytes };
      this.worker.postMessage({ id, path, algorithm });
    });
  }

  /** Stop the thread (an unfinished file is abandoned). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
