// UPLOAD_MANIFEST over a scripted connection: the CopyIn exchange, chunking, version gate, advice.
import { describe, expect, it } from 'vitest';
import type { ReplicationConnectionApi } from '../../../src/connection/types.js';
import { ServerError } from '../../../src/errors.js';
import type { StreamMessage } from '../../../src/protocol/messages.js';
import { uploadManifest, withIncrementalAdvice } from '../../../src/replication/commands.js';

function fake(major: number, reply: StreamMessage[], finalError?: Error) {
  const log: string[] = [];
  const sent: Buffer[] = [];
  const conn = {
    serverMajor: major,
    serverVersionNum: major * 10000,
    stream(sql: string) {
      log.push(`Q ${sql}`);
      return (async function* () {
        for (const m of reply) {
          yield m;
        }
        if (finalError) throw finalError;
      })();
    },
    sendCopyData(b: Buffer) {
      sent.push(Buffer.from(b));
      log.push(`d ${b.length}`);
      return sent.length % 2 === 0;
    },
    sendCopyDone() {
      log.push('c');
    },
    async drained() {
      log.push('drain');
    },
  } as unknown as ReplicationConnectionApi;
  return { conn, log, sent };
}

const copyIn: StreamMessage = { type: 'CopyInResponse', format: 0, columnFormats: [] };
const done: StreamMessage = { type: 'CommandComplete', tag: 'UPLOAD_MANIFEST' };

describe('uploadManifest', () => {
  it('sends the manifest as CopyData chunks after CopyInResponse, then CopyDone', async () => {
    const { conn, log, sent } = fake(17, [copyIn, done]);
    const manifest = Buffer.from('x'.repeat(250));
    await uploadManifest(conn, manifest, { chunkBytes: 100 });
    expect(log).toEqual(['Q UPLOAD_MANIFEST', 'd 100', 'drain', 'd 100', 'd 50', 'drain', 'c']);
    expect(Buffer.concat(sent).equals(manifest)).toBe(true);
  });

  it('refuses 13-16 before sending anything', async () => {
    const { conn, log } = fake(16, [copyIn, done]);
    await expect(uploadManifest(conn, Buffer.from('{}'))).rejects.toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
    expect(log).toEqual([]);
  });

  it('fails on a response without COPY', async () => {
    const { conn } = fake(17, [done]);
    await expect(uploadManifest(conn, Buffer.from('{}'))).rejects.toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
  });

  it('adds advice to a manifest of another cluster', async () => {
    const err = new ServerError({
      severity: 'ERROR',
      sqlState: 'XX000',
      message: 'system identifier in backup manifest is 1, but database system identifier is 2',
    });
    const { conn } = fake(17, [copyIn], err);
    const got = await uploadManifest(conn, Buffer.from('{}')).catch((e: unknown) => e);
    expect(got).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((got as ServerError).message).toMatch(/another cluster/);
    expect((got as ServerError).serverMessage).toBe(err.serverMessage);
  });
});

describe('withIncrementalAdvice', () => {
  const e = (message: string) => new ServerError({ severity: 'ERROR', sqlState: '55000', message });
  it('says to turn summarize_wal on', () => {
    expect(withIncrementalAdvice(e('incremental backups cannot be taken unless WAL summarization is enabled')).message).toContain(
      'incremental backups require summarize_wal = on on the server: set it and reload, then take a new full backup',
    );
  });
  it('explains missing WAL summaries and v1 manifests', () => {
    expect(
      withIncrementalAdvice(
        e('WAL summaries are required on timeline 1 from 0/2000028 to 0/5000028, but no summaries for that timeline and LSN range exist'),
      ).message,
    ).toMatch(/no WAL summaries/);
    expect(withIncrementalAdvice(e('backup manifest version 1 does not support incremental backup')).message).toMatch(
      /PostgreSQL 16 or older/,
    );
  });
  it('leaves unrelated errors alone', () => {
    const err = e('permission denied');
    expect(withIncrementalAdvice(err)).toBe(err);
  });
});
