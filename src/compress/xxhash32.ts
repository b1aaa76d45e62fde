/**
 * XXH32, the checksum of the LZ4 frame format (header checksum, block and content checksums). Pure.
 * Written from the algorithm's published description: 16-byte stripes into four accumulators, then
 * the tail and an avalanche.
 * @module
 */

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const read32 = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
const round = (acc: number, input: number): number => Math.imul(rotl((acc + Math.imul(input, P2)) | 0, 13), P1);

/**
 * Incremental XXH32: `update()` any number of times, then `digest()`.
 *
 * @example
 * ```ts
 * const h = new XxHash32();
 * h.update(Buffer.from('ab')).update(Buffer.from('c'));
 * h.digest(); // 0x32d153ff, the same as xxhash32(Buffer.from('abc'))
 * ```
 */
export class XxHash32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private total = 0;
  private readonly tail = new Uint8Array(16);
  private tailLength = 0;

  /** @param seed the seed (the LZ4 frame format uses 0). @default 0 */
  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  /** Adds bytes. Returns `this`. */
  update(data: Uint8Array): this {
    const len = data.length;
    this.total += len;
    let i = 0;
    if (this.tailLength > 0) {
      const take = Math.min(16 - this.tailLength, len);
      this.tail.set(data.subarray(0, take), this.tailLength);
      this.tailLength += take;
      i = take;
      if (this.tailLength < 16) return this;
      this.stripe(this.tail, 0);
      this.tailLength = 0;
    }
    let v1 = this.v1,
      v2 = this.v2,
      v3 = this.v3,
      v4 = this.v4;
    const limit = len - 16;
    for (; i <= limit; i += 16) {
      v1 = round(v1, read32(data, i));
      v2 = round(v2, read32(data, i + 4));
      v3 = round(v3, read32(data, i + 8));
      v4 = round(v4, read32(data, i + 12));
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
    if (i < len) {
      this.tail.set(data.subarray(i), 0);
      this.tailLength = len - i;
    }
    return this;
  }

  /** The hash of everything added so far, as an unsigned 32-bit integer. Does not reset the state. */
  digest(): number {
    let h = this.total >= 16 ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0 : (this.seed + P5) | 0;
    // The length enters modulo 2^32 (XXH32 defines it so).
    h = (h + (this.total % 0x100000000)) | 0;
    const t = this.tail;
    let i = 0;
    for (; i + 4 <= this.tailLength; i += 4) {
      h = Math.imul(rotl((h + Math.imul(read32(t, i), P3)) | 0, 17), P4);
    }
    for (; i < this.tailLength; i++) {
      h = Math.imul(rotl((h + Math.imul(t[i]!, P5)) | 0, 11), P1);
    }
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }

  private stripe(b: Uint8Array, i: number): void {
    this.v1 = round(this.v1, read32(b, i));
    this.v2 = round(this.v2, read32(b, i + 4));
    this.v3 = round(this.v3, read32(b, i + 8));
    this.v4 = round(this.v4, read32(b, i + 12));
  }
}

/**
 * XXH32 of one buffer.
 * @example
 * ```ts
 * xxhash32(Buffer.alloc(0)); // 0x02cc5d05
 * ```
 */
export function xxhash32(data: Uint8Array, seed = 0): number {
  return new XxHash32(seed).update(data).digest();
}
