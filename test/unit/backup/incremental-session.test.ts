// The incremental path of the session (no server): UPLOAD_MANIFEST before BASE_BACKUP (INCREMENTAL)
// on the same connection, refusal on 13-16 before any command, advice on server errors.
import { EventEmitter } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBaseBackupCommand } from '../../../src/backup/command.js';
import type { BackupDeps } from '../../../src/backup/deps.js';
import { resolveBaseBackupOptions } from '../../../src/backup/options.js';
import { startBackupWith } from '../../../src/backup/session.js';
import type { ReplicationConnectionApi } from '../../../src/connection/types.js';
import { ServerError } from '../../../src/errors.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { modernResponse } from './fixtures.js';

const label = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
function tarOf(): Buffer {
  const h = Buffer.alloc(512);
  h.write('backup_label', 0);
  h.write('0000600\0', 100);
  h.write(`${label.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.fill(0x20, 148, 156);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, label, Buffer.alloc(512 - label.length), Buffer.alloc(1024)]);
}

function harness(major: number, o: { error?: ServerError } = {}) {
  const log: string[] = [];
  const conns: ReplicationConnectionApi[] = [];
  const messages = modernResponse([{ oid: null, location: null, sizeKb: 2, tar: tarOf() }]);
  const deps: BackupDeps = {
    async connect() {
      const c = Object.assign(new EventEmitter(), {
        state: 'ready',
        serverMajor: major,
        serverVersionNum: major * 10000 + 1,
        backendPid: 77,
        parameters: new Map<string, string>(),
        options: {},
        stream(sql: string) {
          log.push(sql);
          return (async function* (): AsyncGenerator<StreamMessage> {
            if (o.error) throw o.error;
            for (const m of messages) yield m;
          })();
        },
        async close() {},
        destroy() {},
      }) as unknown as ReplicationConnectionApi;
      conns.push(c);
      return c;
    },
    async identifySystem() {
      return { systemId: '7300000000000000001', timeline: 1 };
    },
    async show(_c, name) {
      return name === 'wal_segment_size' ? '16MB' : '0700';
    },
    async createPhysicalSlot() {},
    async dropSlot() {},
    startWalStream() {
      throw new Error('no WAL streaming in these tests');
    },
    async uploadManifest(c, manifest) {
      log.push(`UPLOAD_MANIFEST ${manifest.toString()} on connection ${conns.indexOf(c)}`);
    },
  };
  return { deps, log };
}

describe('incremental backup session', () => {
  it('uploads the manifest on the backup connection, then asks for INCREMENTAL', async () => {
    const h = harness(17);
    const session = await startBackupWith(h.deps, { wal: 'none', incrementalManifest: Buffer.from('{"m":1}') });
    await session.result();
    expect(h.log[0]).toBe('UPLOAD_MANIFEST {"m":1} on connection 0');
    expect(h.log[1]).toMatch(/^BASE_BACKUP \(.*TARGET 'client', {2}INCREMENTAL\)$/);
  });

  it('reads the manifest from a path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgbb-inc-'));
    await writeFile(join(dir, 'backup_manifest'), 'from-file');
    const h = harness(18);
    const session = await startBackupWith(h.deps, { wal: 'none', incrementalManifest: join(dir, 'backup_manifest') });
    await session.result();
    expect(h.log[0]).toBe('UPLOAD_MANIFEST from-file on connection 0');
  });

  it('a missing manifest file is a ConfigError before connecting', async () => {
    const h = harness(17);
    await expect(startBackupWith(h.deps, { wal: 'none', incrementalManifest: '/nonexistent/backup_manifest' })).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
    expect(h.log).toEqual([]);
  });

  it.each([13, 14, 15, 16])('PostgreSQL %i: UnsupportedServerError before any command', async (major) => {
    const h = harness(major);
    await expect(startBackupWith(h.deps, { wal: 'none', incrementalManifest: Buffer.from('{}') })).rejects.toMatchObject({
      code: 'ERR_PGBB_UNSUPPORTED_SERVER',
    });
    expect(h.log).toEqual([]);
  });

  it('summarize_wal off: the server error carries the advice', async () => {
    const h = harness(17, {
      error: new ServerError({
        severity: 'ERROR',
        sqlState: '55000',
        message: 'incremental backups cannot be taken unless WAL summarization is enabled',
      }),
    });
    const err = await startBackupWith(h.deps, { wal: 'none', incrementalManifest: Buffer.from('{}') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as Error).message).toMatch(/summarize_wal = on on the server: set it and reload, then take a new full backup/);
  });

  it('options: needs a manifest, rejects junk', () => {
    expect(() => resolveBaseBackupOptions({ incrementalManifest: 'x', manifest: false })).toThrow(
      expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }),
    );
    expect(() => resolveBaseBackupOptions({ incrementalManifest: '' })).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    expect(() => resolveBaseBackupOptions({ incrementalManifest: 5 as unknown as string })).toThrow(
      expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }),
    );
  });

  it('command: INCREMENTAL on 17+ only', () => {
    const o = resolveBaseBackupOptions({ incrementalManifest: Buffer.from('{}') });
    expect(buildBaseBackupCommand(o, 17)).toContain('INCREMENTAL');
    expect(buildBaseBackupCommand(resolveBaseBackupOptions({}), 17)).not.toContain('INCREMENTAL');
  });
});
