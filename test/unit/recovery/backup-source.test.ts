// inspectBackup on hand-made directories: what is refused before a restore writes anything.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectBackup, parseTablespaceMap } from '../../../src/recovery/backup-source.js';

const LABEL = 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000080\nSTART TIMELINE: 1\n';

describe('inspectBackup', () => {
  it("reads a plain backup's label", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgbb-src-'));
    await writeFile(join(dir, 'PG_VERSION'), '17\n');
    await writeFile(join(dir, 'backup_label'), LABEL);
    const s = await inspectBackup(dir);
    expect(s).toMatchObject({ format: 'plain', label: { startLsn: 0x2000028n, startTimeline: 1 }, tablespaces: [], endLsn: undefined });
  });

  it('refuses an incremental backup, pointing at pgbb combine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgbb-src-'));
    await writeFile(join(dir, 'PG_VERSION'), '17\n');
    await writeFile(join(dir, 'backup_label'), `${LABEL}INCREMENTAL FROM LSN: 0/1000028\nINCREMENTAL FROM TLI: 1\n`);
    await expect(inspectBackup(dir)).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
      message: expect.stringMatching(/incremental.*pgbb combine/),
    });
  });

  it('refuses a directory that is not a backup, and one without backup_label', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgbb-src-'));
    await mkdir(join(dir, 'x'));
    await expect(inspectBackup(dir)).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG', message: expect.stringMatching(/not a backup/) });
    await writeFile(join(dir, 'PG_VERSION'), '17\n');
    await expect(inspectBackup(dir)).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG', message: expect.stringMatching(/no backup_label/) });
  });

  it('parses tablespace_map lines, locations with spaces and escapes', () => {
    expect(parseTablespaceMap('16384 /srv/ts one\n16385 /srv/a\\\\b\n')).toEqual([
      { oid: 16384, location: '/srv/ts one' },
      { oid: 16385, location: '/srv/a\\b' },
    ]);
    expect(() => parseTablespaceMap('x /srv\n')).toThrow(/tablespace_map/);
  });
});
