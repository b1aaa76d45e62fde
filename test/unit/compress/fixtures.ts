// Test data and the command-line tools that judge our output (gzip, lz4, zstd in /usr/bin).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { SplitOptions } from '../helpers/splits.js';

/** Text shaped like pgbench_accounts rows, then random bytes, then text again: compressible and not. */
export function mixedData(bytes: number, seed = 1): Buffer {
  const rows: string[] = [];
  let n = 0;
  let i = seed;
  while (n < bytes / 2) {
    const row = `${i}\t${i % 100000}\t${((i * 7919) % 5000) - 2500}\t${' '.repeat(84)}\n`;
    rows.push(row);
    n += row.length;
    i++;
  }
  const text = Buffer.from(rows.join(''));
  return Buffer.concat([text.subarray(0, Math.floor(bytes / 4)), randomBytes(Math.floor(bytes / 2)), text]).subarray(0, bytes);
}

/** Runs a tool with `input` on stdin and returns its stdout. */
export function tool(cmd: string, args: string[], input: Uint8Array): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30 });
}

/** Decompresses with the reference tool for the method. */
export function referenceDecompress(algorithm: 'gzip' | 'lz4' | 'zstd', data: Uint8Array): Buffer {
  return tool(algorithm, ['-d', '-c'], data);
}

/** Compressed fixtures run to megabytes: only the small ones are fed byte by byte. */
export const COMPRESS_SPLITS: SplitOptions = { byteByByteMax: 4096 };
