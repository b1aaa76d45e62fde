// The one -T parser (pg_basebackup's tablespace_list_append), behind backup -T and combine -T.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { canonicalizePath, parseTablespaceMapping, tablespaceMappingFrom } from '../../../src/sinks/tablespace-mapping.js';

const reason = (spec: string): string => {
  try {
    parseTablespaceMapping(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`${spec} was accepted`);
};

describe('parseTablespaceMapping', () => {
  it('splits at the unescaped "=", "\\=" standing for a literal "="', () => {
    expect(parseTablespaceMapping('/old=/new')).toEqual(['/old', '/new']);
    expect(parseTablespaceMapping('/a\\=b=/c\\=d')).toEqual(['/a=b', '/c=d']);
    expect(parseTablespaceMapping('/old/=/new//dir/')).toEqual(['/old', '/new/dir']);
  });

  it('takes OLDDIR as a server path, absolute by Unix or Windows rules', () => {
    expect(parseTablespaceMapping('C:\\ts=/new')).toEqual(['C:\\ts', '/new']);
    expect(parseTablespaceMapping('d:/ts=/new')).toEqual(['d:/ts', '/new']);
    expect(parseTablespaceMapping('\\\\server\\share=/new')).toEqual(['\\\\server\\share', '/new']);
    // NEWDIR is a path here, so only this machine's rules apply.
    expect(reason('/old=C:\\new')).toBe('new directory is not an absolute path in tablespace mapping: C:\\new');
  });

  it('refuses what pg_basebackup refuses, with its reasons', () => {
    expect(reason('/a=/b=/c')).toBe('multiple "=" signs in tablespace mapping "/a=/b=/c": escape a literal "=" as "\\="');
    expect(reason('/a==/b')).toMatch(/^multiple "=" signs/);
    expect(reason('/a')).toBe('invalid tablespace mapping format "/a", must be "OLDDIR=NEWDIR"');
    expect(reason('=/b')).toBe('invalid tablespace mapping format "=/b", must be "OLDDIR=NEWDIR"');
    expect(reason('/a=')).toBe('invalid tablespace mapping format "/a=", must be "OLDDIR=NEWDIR"');
    expect(reason('')).toBe('invalid tablespace mapping format "", must be "OLDDIR=NEWDIR"');
    expect(reason('a=/b')).toBe('old directory is not an absolute path in tablespace mapping: a');
    expect(reason('/a=b')).toBe('new directory is not an absolute path in tablespace mapping: b');
  });
});

describe('tablespaceMappingFrom', () => {
  it("keeps the first mapping of a directory, as pg_basebackup's lookup returns the first match", () => {
    const m = tablespaceMappingFrom(['/srv/ts=/first', '/srv/other=/o', '/srv//ts/=/second']);
    expect(m.get('/srv/ts')).toBe('/first');
    expect([...m]).toEqual([
      ['/srv/ts', '/first'],
      ['/srv/other', '/o'],
    ]);
  });

  it('fails on the first bad spec', () => {
    expect(() => tablespaceMappingFrom(['/a=/b', 'rel=/c'])).toThrow(ConfigError);
  });

  it('compares canonical paths', () => {
    expect(canonicalizePath('/a/./b//c/../d/')).toBe('/a/b/d');
    expect(canonicalizePath('/')).toBe('/');
  });
});
