// runBackup against a fake walsender that sends what a real server never does: an unknown
// CopyData type byte, a truncated message, a message that lies about its length, a tar header
// with a bad checksum, an archive name with a slash. Each must end in a typed error naming the
// byte or offset, with the connection closed and nothing left in the target.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runBackup, type RunBackupOptions } from '../../../src/backup/run.js';
import { PgBackupError, type TarError } from '../../../src/errors.js';
import type { FakeClient } from '../connection/fake-server.js';
import { build } from '../fixtures/backend-messages.js';
import { FakeWalsender, type BackupWire } from '../fixtures/fake-walsender.js';
import { member } from '../tar/fixtures.js';

const PG_VERSION = member({ name: 'PG_VERSION', mode: 0o600 }, '17\n');
const RELATION = member({ name: 'base/1/1259', mode: 0o600 }, Buffer.alloc(8192, 7));
const BAD_HEADER = member({ name: 'global/pg_control', mode: 0o600, checksumDelta: 1 }, Buffer.alloc(8192, 0x42));

let fake: FakeWalsender | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

type Format = 'plain' | 'tar' | 'tar-stream';

async function target(): Promise<{ parent: string; dir: string }> {
  const parent = await mkdtemp(join(tmpdir(), 'pgbb-badbytes-'));
  dirs.push(parent);
  return { parent, dir: join(parent, 'backup') };
}

/** Runs a backup against the fake server; returns the error and what the target holds afterwards. */
async function failingRun(format: Format, versionNum: number, respond: (c: FakeClient, w: BackupWire) => Promise<void> | void) {
  fake = await FakeWalsender.start({ versionNum, respond });
  const { parent, dir } = await target();
  const sunk: Buffer[] = [];
  const output: RunBackupOptions['output'] =
    format === 'tar-stream'
      ? {
          format,
          stream: new Writable({
            write(c: Buffer, _e, cb) {
              sunk.push(c);
              cb();
            },
          }),
          end: true,
        }
      : { format, directory: dir };
  const started = performance.now();
  const err = await runBackup({ connection: fake.connectionString, wal: 'fetch', noSync: true, output }).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - started;
  expect(err).toBeInstanceOf(PgBackupError);
  // The client hung up: no half-read connection is left behind.
  await fake.backupClientClosed;
  expect(fake.commands.some((c) => c.startsWith('BASE_BACKUP'))).toBe(true);
  expect(existsSync(dir)).toBe(false);
  expect(await readdir(parent)).toEqual([]);
  return { err: err as PgBackupError, ms, sunk: Buffer.concat(sunk) };
}

const FORMATS: Format[] = ['plain', 'tar', 'tar-stream'];

describe.each(FORMATS)('runBackup (%s) against a walsender sending bad bytes', (format) => {
  it('15+: an unknown CopyData type byte is a ProtocolError naming the byte', async () => {
    const { err } = await failingRun(format, 170002, (c, w) => {
      c.send(w.copyOut(), w.newArchive('base.tar'), w.typed('d', Buffer.concat([PG_VERSION, RELATION])), w.typed('x', Buffer.from('junk')));
    });
    expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    expect(err.message).toMatch(/unknown BASE_BACKUP CopyData type byte 0x78 \('x'\)/);
  });

  it('15+: an archive name with a slash is a ProtocolError naming it', async () => {
    const { err } = await failingRun(format, 170002, (c, w) => {
      c.send(w.copyOut(), w.newArchive('../base.tar'), w.typed('d', PG_VERSION), w.copyDone(), w.end());
    });
    expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
    expect(err.message).toContain('"../base.tar"');
  });

  for (const versionNum of [130010, 170002]) {
    const archiveStart = (w: BackupWire): Buffer =>
      versionNum >= 150000 ? Buffer.concat([w.copyOut(), w.newArchive('base.tar')]) : w.copyOut();
    const data = (w: BackupWire, b: Buffer): Buffer => (versionNum >= 150000 ? w.typed('d', b) : w.copyData(b));

    it(`${(versionNum / 10000) | 0}: a message cut short by the end of the connection is a ConnectionClosedError saying so`, async () => {
      const { err } = await failingRun(format, versionNum, (c, w) => {
        const frame = data(w, Buffer.concat([PG_VERSION, RELATION]));
        // The length field promises the whole frame; only part of it arrives, then EOF.
        c.socket.end(Buffer.concat([archiveStart(w), frame.subarray(0, 700)]));
      });
      expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
      expect(err.message).toMatch(
        /closed the connection unexpectedly .*, in the middle of a message \(received 700 of the \d+ bytes of a message of type 'd' \(0x64\) at stream offset \d+\)$/,
      );
    });

    it(`${(versionNum / 10000) | 0}: a message whose content overruns its length is a ProtocolError`, async () => {
      const { err } = await failingRun(format, versionNum, (c, w) => {
        // A DataRow for the end position whose field length (1000) runs past the message end.
        const bad = build.raw('D', Buffer.from([0, 2, 0, 0, 3, 0xe8, 0x30, 0x2f, 0x31]));
        c.send(
          archiveStart(w),
          data(w, Buffer.concat([PG_VERSION, Buffer.alloc(1024)])),
          w.copyDone(),
          build.rowDescription([
            { name: 'recptr', typeOid: 25 },
            { name: 'tli', typeOid: 20 },
          ]),
          bad,
        );
      });
      expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
      expect(err.message).toBe('truncated DataRow: needed 1000 more byte(s) at offset 6 of 9');
    });

    it(`${(versionNum / 10000) | 0}: a tar header with a bad checksum is a TarError naming its offset`, async () => {
      const { err } = await failingRun(format, versionNum, (c, w) => {
        c.send(archiveStart(w), data(w, Buffer.concat([PG_VERSION, RELATION, BAD_HEADER, Buffer.alloc(1024)])), w.copyDone(), w.end());
      });
      expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
      const offset = PG_VERSION.length + RELATION.length;
      expect(err.message).toContain(`offset ${offset}`);
      expect((err as TarError).offset).toBe(offset);
    });

    it(`${(versionNum / 10000) | 0}: a message the response does not allow there is a ProtocolError naming it`, async () => {
      const { err } = await failingRun(format, versionNum, (c, w) => {
        c.send(archiveStart(w), data(w, PG_VERSION), build.dataRow(['0/0', '1']));
      });
      expect(err).toMatchObject({ code: 'ERR_PGBB_PROTOCOL' });
      expect(err.message).toMatch(/unexpected DataRow in the BASE_BACKUP response \(state (archive|copy)\)/);
    });
  }
});

it('tar-stream without the manifest (archive passed through unparsed) still refuses a bad tar header', async () => {
  fake = await FakeWalsender.start({
    versionNum: 170002,
    respond: (c, w) => {
      c.send(
        w.copyOut(),
        w.newArchive('base.tar'),
        w.typed('d', Buffer.concat([PG_VERSION, BAD_HEADER, Buffer.alloc(1024)])),
        w.copyDone(),
        w.end(),
      );
    },
  });
  let ended = false;
  const stream = new Writable({
    write(_c: Buffer, _e, cb) {
      cb();
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  const err = await runBackup({
    connection: fake.connectionString,
    wal: 'fetch',
    manifest: false,
    output: { format: 'tar-stream', stream, end: true },
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
  expect((err as TarError).offset).toBe(PG_VERSION.length);
  expect(ended).toBe(false);
});
