// Test data and the command-line tools that judge our output (gzip, lz4, zstd in /usr/bin).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Text shaped like pgbench_accounts rows, then random bytes, then text again: compressible and not. */
export function mixedData(bytes: number, seed = 1): Buffer {
  const rows: string[] = [];
  let n = 0;
  let i = seed;
  while (n < bytes / 2) {
    const row = `${i}\t${i % 100000}\t${(i * 7919) % 5000 - 2500}\t${' '.repeat(84)}\n`;
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

/** Splits a buffer the ways STYLE.md asks: whole, byte by byte (small inputs), 321-byte chunks, random cuts. */
export function splits(data: Buffer, { byteByByte = data.length <= 4096 } = {}): [string, Buffer[]][] {
  const out: [string, Buffer[]][] = [['whole', [data]]];
  if (byteByByte) out.push(['byte by byte', Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))]);
  const c321: Buffer[] = [];
  for (let i = 0; i < data.length; i += 321) c321.push(data.subarray(i, i + 321));
  out.push(['321-byte chunks', c321]);
  const rnd: Buffer[] = [];
  let state = 12345;
  for (let i = 0; i < data.length;) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const n = 1 + (state % 100000);
    rnd.push(data.subarray(i, i + n));
    i += n;
  }
  out.push(['random splits', rnd]);
  return out;
}
