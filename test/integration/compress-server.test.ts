// Server-side compression (15+) against real servers: the COMPRESSION options we build are accepted,
// the archives come back named .tar.gz / .tar.lz4 / .tar.zst, our decompressors (and the command-line
// tools) read the server's bytes back to a valid tar, and a server built without a method refuses it
// before any data, in words mapServerCompressionError recognises. The embedded builds (15-18) have zlib
// only; Debian's PostgreSQL 15 has lz4 and zstd too.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompressArchive } from '../../src/compress/archive.js';
import { mapServerCompressionError, serverCompressionOptions } from '../../src/compress/server.js';
import { resolveCompression, type CompressionSpec } from '../../src/compress/spec.js';
import { quoteLiteral } from '../../src/replication/commands.js';
import { ReplicationConnection } from '../../src/connection/connection.js';
import { ROLES, startCluster, testMajors, type Cluster } from '../harness/index.js';

const majors = testMajors().filter((m) => m >= 15);
const clusters = new Map<string, Cluster>();

beforeAll(async () => {
  const started = await Promise.all([...majors.map((major) => startCluster({ major })), startCluster({ major: 15, flavor: 'debian' })]);
  for (const c of started) clusters.set(`${c.flavor}-${c.major}`, c);
}, 300_000);

afterAll(async () => {
  await Promise.all([...clusters.values()].map((c) => c.destroy()));
});

interface Archive {
  name: string;
  bytes: Buffer;
}

/** Runs BASE_BACKUP with the spec's options and gathers the archives (15+ CopyData sub-messages). */
async function backup(c: Cluster, spec: CompressionSpec): Promise<{ archives: Archive[]; sawCopy: boolean }> {
  const conn = await ReplicationConnection.connect({ host: c.host, port: c.port, user: ROLES.trust, sslmode: 'disable', env: {} });
  const options = serverCompressionOptions(spec, conn.serverMajor).map((o) => `${o.name} ${quoteLiteral(o.value)}`);
  const sql = `BASE_BACKUP (LABEL 'pgbb-compress', CHECKPOINT 'fast', TARGET 'client', ${options.join(', ')})`;
  const archives: Archive[] = [];
  let parts: Buffer[] = [];
  let inManifest = false;
  let sawCopy = false;
  try {
    for await (const m of conn.stream(sql)) {
      if (m.type === 'CopyOutResponse') sawCopy = true;
      if (m.type !== 'CopyData') continue;
      const p = m.payload;
      const kind = String.fromCharCode(p[0]!);
      if (kind === 'n') {
        const name = p.subarray(1, p.indexOf(0, 1)).toString();
        parts = [];
        archives.push({ name, bytes: Buffer.alloc(0) });
      } else if (kind === 'd' && !inManifest) {
        parts.push(Buffer.from(p.subarray(1)));
        archives[archives.length - 1]!.bytes = Buffer.concat(parts);
      } else if (kind === 'm') {
        inManifest = true;
      }
    }
  } finally {
    await conn.close();
  }
  return { archives, sawCopy };
}

async function* once(b: Buffer) {
  for (let i = 0; i < b.length; i += 65_536) yield b.subarray(i, i + 65_536);
}

async function checkArchive(a: Archive, algorithm: 'gzip' | 'lz4' | 'zstd'): Promise<void> {
  const parts: Buffer[] = [];
  for await (const chunk of decompressArchive(once(a.bytes), a.name)) parts.push(Buffer.from(chunk));
  const tar = Buffer.concat(parts);
  // The server compressed a terminated tar: 1024 zero bytes at the end, inside the compression.
  expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true);
  expect(tar.length).toBeGreaterThan(a.bytes.length);
  const listing = execFileSync('tar', ['-tf', '-'], { input: tar, maxBuffer: 1 << 30 })
    .toString()
    .split('\n');
  expect(listing).toContain('backup_label');
  expect(listing).toContain('global/pg_control');
  // The command-line tool agrees with us byte for byte.
  expect(execFileSync(algorithm, ['-d', '-c'], { input: a.bytes, maxBuffer: 1 << 30 }).equals(tar)).toBe(true);
}

describe.each(majors)('PostgreSQL %i (embedded build, zlib only)', (major) => {
  const c = () => clusters.get(`embedded-${major}`)!;

  it('compresses with gzip on the server (level from the detail) and names the archive .tar.gz', async () => {
    const { archives } = await backup(c(), resolveCompression('server-gzip:1'));
    expect(archives.map((a) => a.name)).toEqual(['base.tar.gz']);
    await checkArchive(archives[0]!, 'gzip');
  });

  for (const method of ['lz4', 'zstd'] as const) {
    it(`refuses ${method} before any data, and we explain it`, async () => {
      const spec = resolveCompression(`server-${method}`);
      let err: unknown;
      let sawCopy = true;
      try {
        ({ sawCopy } = await backup(c(), spec));
      } catch (e) {
        err = e;
        sawCopy = false;
      }
      expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
      expect(sawCopy).toBe(false);
      const mapped = mapServerCompressionError(err, spec);
      expect(mapped).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
      expect(mapped!.message).toContain(`the server was built without ${method} support`);
    });
  }
});

describe('PostgreSQL 15 (Debian build, with lz4 and zstd)', () => {
  const c = () => clusters.get('debian-15')!;
  for (const [spec, algorithm, suffix] of [
    ['server-lz4', 'lz4', '.tar.lz4'],
    ['server-lz4:level=9', 'lz4', '.tar.lz4'],
    ['server-zstd', 'zstd', '.tar.zst'],
    ['server-zstd:level=-3,workers=2', 'zstd', '.tar.zst'],
    ['server-gzip', 'gzip', '.tar.gz'],
  ] as const) {
    it(`${spec}: the archive is base${suffix} and decompresses to a valid tar`, async () => {
      const { archives } = await backup(c(), resolveCompression(spec));
      expect(archives.map((a) => a.name)).toEqual([`base${suffix}`]);
      await checkArchive(archives[0]!, algorithm);
    });
  }
});
