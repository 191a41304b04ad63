import type pg from 'pg';

import { createMetrics } from '../../src/observability/metrics';
import { sampleReplicationSlots, startReplicationSlotSampler } from '../../src/observability/replication-slots';

type Row = {
  slot_name: string;
  active: boolean;
  lag: string | null;
  retained: string | null;
  safe: string | null;
  wal_status: string | null;
};

/** A pool whose one query answers the scripted pg_replication_slots rows, in turn. */
function scriptedPool(answers: (Row[] | Error)[]): pg.Pool & { calls: number } {
  const pool = {
    calls: 0,
    query() {
      const a = answers[Math.min(pool.calls++, answers.length - 1)]!;
      return a instanceof Error ? Promise.reject(a) : Promise.resolve({ rows: a });
    },
  };
  return pool as unknown as pg.Pool & { calls: number };
}

const slot = (name: string, over: Partial<Row> = {}): Row => ({
  slot_name: name,
  active: true,
  lag: '100',
  retained: '200',
  safe: '4294967096',
  wal_status: 'reserved',
  ...over,
});

async function gauge(metrics: ReturnType<typeof createMetrics>, name: string) {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels.slot), v.value]));
}

describe('replication slot gauges', () => {
  it('export lag, retained WAL, WAL left before invalidation and lost, per slot', async () => {
    const metrics = createMetrics('slots-test');
    await sampleReplicationSlots(
      scriptedPool([
        [
          slot('a'),
          slot('b', { active: false, lag: '5000', retained: '9000', safe: null }),
          slot('c', { lag: '7', retained: null, safe: null, wal_status: 'lost' }),
        ],
      ]),
      metrics,
    );
    expect(await gauge(metrics, 'kts_replication_slot_lag_bytes')).toEqual({ a: 100, b: 5000, c: 7 });
    expect(await gauge(metrics, 'kts_replication_slot_retained_wal_bytes')).toEqual({ a: 200, b: 9000, c: 0 });
    // Unlimited (or lost): no distance to a limit to report.
    expect(await gauge(metrics, 'kts_replication_slot_safe_wal_bytes')).toEqual({ a: 4294967096 });
    expect(await gauge(metrics, 'kts_replication_slot_lost')).toEqual({ a: 0, b: 0, c: 1 });
  });

  it('forget a slot once it is dropped, so it stops alerting with its last value', async () => {
    const metrics = createMetrics('slots-test');
    const pool = scriptedPool([[slot('a'), slot('gone', { lag: '999999' })], [slot('a', { lag: '50' })]]);
    await sampleReplicationSlots(pool, metrics);
    await sampleReplicationSlots(pool, metrics);
    expect(await gauge(metrics, 'kts_replication_slot_lag_bytes')).toEqual({ a: 50 });
    expect(await gauge(metrics, 'kts_replication_slot_lost')).toEqual({ a: 0 });
  });

  it('are sampled on their own clock, and a failed read is reported and retried on time', async () => {
    const metrics = createMetrics('slots-test');
    const pool = scriptedPool([new Error('connection refused'), [slot('a', { lag: '1' })], [slot('a', { lag: '2' })]]);
    const errors: unknown[] = [];
    const sampler = startReplicationSlotSampler({ db: pool, metrics, intervalMs: 20, onError: (e) => errors.push(e) });
    while (pool.calls < 3) await new Promise((r) => setTimeout(r, 5));
    await sampler.stop();
    const calls = pool.calls;
    await new Promise((r) => setTimeout(r, 60));
    expect(pool.calls).toBe(calls);
    expect(errors.map((e) => (e as Error).message)).toEqual(['connection refused']);
    expect((await gauge(metrics, 'kts_replication_slot_lag_bytes')).a).toBeGreaterThan(0);
  });
});
