// The listing JSON of `pgbb list` / `pgbb show` (documented, stable) and their text forms and arguments.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import { formatListing, parseListCommandLine } from '../../../src/cli/list.js';
import { formatSize, repositoryAddress } from '../../../src/cli/repo-flags.js';
import { formatBackup, parseShowCommandLine } from '../../../src/cli/show.js';
import { parseLsn } from '../../../src/lsn.js';
import { repositoryListing } from '../../../src/repository/listing.js';
import { backupRecordJson, type BackupRecord } from '../../../src/repository/record.js';

const full: BackupRecord = {
  id: '20261206-033800.123F',
  type: 'full',
  parent: null,
  status: 'complete',
  startTime: new Date('2026-12-06T03:38:00.123Z'),
  endTime: new Date('2026-12-06T03:39:10.456Z'),
  startLsn: parseLsn('0/2000028'),
  endLsn: parseLsn('0/2000138'),
  timeline: 1,
  endTimeline: 1,
  postgresVersion: '17.2',
  systemIdentifier: '7443990000000000001',
  originalSize: 31_457_280,
  storedSize: 4_194_304,
  compression: 'gzip',
  durationMs: 70_333,
  wal: 'stream',
  label: 'pg_basebackup base backup',
  objects: [{ name: 'base.tar.gz', size: 4_194_304, sha256: 'c'.repeat(64) }],
};
const incremental: BackupRecord = {
  ...full,
  id: '20261207-000000.000I',
  type: 'incremental',
  parent: full.id,
  startTime: new Date('2026-12-07T00:00:00Z'),
  endTime: new Date('2026-12-07T00:00:05Z'),
};
const cluster = { systemIdentifier: '7443990000000000001', majorVersion: 17 };

describe('repositoryListing', () => {
  it('has the documented top-level keys and per-backup fields, without the objects', () => {
    const listing = repositoryListing('/r', cluster, [full, incremental]);
    expect(Object.keys(listing)).toEqual(['repository', 'cluster', 'backups', 'pitrWindow', 'walArchive', 'rehearsals']);
    expect(listing.backups[0]).toEqual({
      id: full.id,
      type: 'full',
      parent: null,
      status: 'complete',
      startTime: '2026-12-06T03:38:00.123Z',
      endTime: '2026-12-06T03:39:10.456Z',
      startLsn: '0/2000028',
      endLsn: '0/2000138',
      timeline: 1,
      endTimeline: 1,
      postgresVersion: '17.2',
      systemIdentifier: '7443990000000000001',
      originalSize: 31_457_280,
      storedSize: 4_194_304,
      compression: 'gzip',
      durationMs: 70_333,
      wal: 'stream',
      label: 'pg_basebackup base backup',
    });
    expect(listing.backups[1]).toMatchObject({ type: 'incremental', parent: full.id });
    expect(listing.pitrWindow).toEqual({ from: { time: '2026-12-06T03:39:10.456Z', lsn: '0/2000138', timeline: 1 }, to: null });
    expect(listing.walArchive).toBeNull();
  });

  it('an empty repository', () => {
    expect(repositoryListing('/r', null, [])).toEqual({
      repository: '/r',
      cluster: null,
      backups: [],
      pitrWindow: { from: null, to: null },
      walArchive: null,
      rehearsals: [],
    });
  });
});

describe('repositoryListing with a WAL archive', () => {
  const wal = {
    segmentSize: 16 * 1024 * 1024,
    timelines: [
      {
        timeline: 1,
        firstSegment: '000000010000000000000002',
        lastSegment: '000000010000000000000009',
        segments: 6,
        gaps: [{ first: '000000010000000000000004', last: '000000010000000000000005' }],
        history: false,
      },
      {
        timeline: 2,
        firstSegment: '00000002000000000000000A',
        lastSegment: '00000002000000000000000A',
        segments: 1,
        gaps: [],
        history: true,
      },
    ],
    newest: { segment: '00000002000000000000000A', timeline: 2, endLsn: parseLsn('0/B000000'), storedAt: new Date('2026-12-07T01:00:00Z') },
  };

  it('walArchive per timeline (with LSNs) and pitrWindow.to at the end of the newest segment', () => {
    const listing = repositoryListing('/r', cluster, [full], wal);
    expect(listing.walArchive).toEqual({
      segmentSize: 16 * 1024 * 1024,
      timelines: [
        {
          timeline: 1,
          firstSegment: '000000010000000000000002',
          lastSegment: '000000010000000000000009',
          startLsn: '0/2000000',
          endLsn: '0/A000000',
          segments: 6,
          gaps: [{ first: '000000010000000000000004', last: '000000010000000000000005' }],
          history: false,
        },
        {
          timeline: 2,
          firstSegment: '00000002000000000000000A',
          lastSegment: '00000002000000000000000A',
          startLsn: '0/A000000',
          endLsn: '0/B000000',
          segments: 1,
          gaps: [],
          history: true,
        },
      ],
    });
    expect(listing.pitrWindow).toEqual({
      from: { time: '2026-12-06T03:39:10.456Z', lsn: '0/2000138', timeline: 1 },
      to: { time: '2026-12-07T01:00:00.000Z', lsn: '0/B000000', timeline: 2 },
    });
    const text = formatListing(listing).split('\n');
    expect(text).toContain(
      'WAL archive, timeline 1: 000000010000000000000002 to 000000010000000000000009 (0/2000000 to 0/A000000, 6 segments), ' +
        'MISSING 000000010000000000000004..000000010000000000000005',
    );
    expect(text).toContain(
      'WAL archive, timeline 2: 00000002000000000000000A to 00000002000000000000000A (0/A000000 to 0/B000000, 1 segments, history file)',
    );
    expect(text).toContain(
      'point-in-time window: from 2026-12-06 03:39:10Z (0/2000138, timeline 1) to 0/B000000 (timeline 2, stored 2026-12-07 01:00:00Z)',
    );
  });
});

describe('pgbb list and show: text and arguments', () => {
  it('list prints one row per backup and the window', () => {
    const text = formatListing(repositoryListing('/r', cluster, [full, incremental]));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('repository: /r (PostgreSQL 17, system identifier 7443990000000000001)');
    expect(lines[1]).toMatch(/^ID\s+TYPE\s+PARENT\s+START\s+END\s+START LSN\s+END LSN\s+TL\s+SIZE\s+STORED\s+COMPRESSION\s+DURATION$/);
    expect(lines[2]).toMatch(
      /^20261206-033800\.123F\s+full\s+-\s+2026-12-06 03:38:00Z\s+2026-12-06 03:39:10Z\s+0\/2000028\s+0\/2000138\s+1\s+30\.0 MB\s+4\.0 MB\s+gzip\s+1m 10s$/,
    );
    expect(lines[3]).toMatch(/^20261207-000000\.000I\s+incremental\s+20261206-033800\.123F\s/);
    expect(lines[4]).toBe(
      'point-in-time window: from 2026-12-06 03:39:10Z (0/2000138, timeline 1) to the end of each backup (the repository holds no WAL archive yet)',
    );
    expect(formatListing(repositoryListing('/r', null, []))).toBe(
      'repository: /r (empty)\nno backups\npoint-in-time window: none (no backups)\n',
    );
  });

  it('show prints the record and its objects', () => {
    const text = formatBackup(backupRecordJson(full));
    expect(text).toMatch(/^id:\s+20261206-033800\.123F$/m);
    expect(text).toMatch(/^duration:\s+1m 10s$/m);
    expect(text).toMatch(new RegExp(`^  base\\.tar\\.gz  4\\.0 MB  sha256:${'c'.repeat(64)}$`, 'm'));
  });

  it('arguments: the id is required, --repo falls back to PGBB_REPO', () => {
    expect(parseShowCommandLine(['x', '--repo', '/r', '--json'])).toEqual({ kind: 'run', options: { id: 'x', repo: '/r', json: true } });
    expect(() => parseShowCommandLine(['--repo', '/r'])).toThrow(UsageError);
    expect(() => parseShowCommandLine(['a', 'b'])).toThrow(/too many command-line arguments \(first is "b"\)/);
    expect(() => parseListCommandLine(['extra'])).toThrow(UsageError);
    expect(repositoryAddress('pgbb list', undefined, { PGBB_REPO: '/e' })).toBe('/e');
    expect(repositoryAddress('pgbb list', '/r', { PGBB_REPO: '/e' })).toBe('/r');
    expect(() => repositoryAddress('pgbb list', undefined, {})).toThrow('no repository specified (use --repo or PGBB_REPO)');
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 kB');
  });
});
