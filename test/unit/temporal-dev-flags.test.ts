import { TEMPORAL_DEV_TUNING, temporalDevFlags, tuningWith } from '../../src/stack/temporal-dev-flags';

describe('Temporal dev server flags', () => {
  it('are start-dev arguments: pragmas as NAME=VALUE, dynamic config values as KEY=JSON', () => {
    expect(
      temporalDevFlags({
        sqlitePragmas: { journal_mode: 'wal' },
        dynamicConfig: { 'a.b': 1, 'c.d': 'x', 'e.f': true },
      }),
    ).toEqual([
      '--sqlite-pragma',
      'journal_mode=wal',
      '--dynamic-config-value',
      'a.b=1',
      '--dynamic-config-value',
      'c.d="x"',
      '--dynamic-config-value',
      'e.f=true',
    ]);
  });

  it('default to WAL with synchronous=normal and one partition per task queue', () => {
    expect(temporalDevFlags()).toEqual([
      '--sqlite-pragma',
      'journal_mode=wal',
      '--sqlite-pragma',
      'synchronous=normal',
      '--dynamic-config-value',
      'matching.numTaskqueueReadPartitions=1',
      '--dynamic-config-value',
      'matching.numTaskqueueWritePartitions=1',
    ]);
  });

  it('take overrides that replace or remove one value and leave the shared definition alone', () => {
    const off = tuningWith({ sqlitePragmas: { synchronous: 'off', journal_mode: null }, dynamicConfig: { 'a.b': 1 } });
    expect(off.sqlitePragmas).toEqual({ synchronous: 'off' });
    expect(off.dynamicConfig).toEqual({
      'matching.numTaskqueueReadPartitions': 1,
      'matching.numTaskqueueWritePartitions': 1,
      'a.b': 1,
    });
    const four = tuningWith({ dynamicConfig: { 'matching.numTaskqueueReadPartitions': null } });
    expect(four.dynamicConfig).toEqual({ 'matching.numTaskqueueWritePartitions': 1 });
    expect(TEMPORAL_DEV_TUNING.sqlitePragmas.synchronous).toBe('normal');
    expect(tuningWith()).toEqual(TEMPORAL_DEV_TUNING);
  });
});
