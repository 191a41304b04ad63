import type pg from 'pg';

import type { Metrics } from './metrics';

export interface ReplicationSlotSample {
  slot: string;
  active: boolean;
  /** WAL bytes not yet confirmed by the slot's consumer. */
  lagBytes: number;
  /** WAL bytes kept on disk for the slot. */
  retainedWalBytes: number;
  /**
   * WAL bytes that may still be written before the slot passes max_slot_wal_keep_size and is
   * invalidated; null when the size is unlimited (or the slot is already lost).
   */
  safeWalBytes: number | null;
  /** PostgreSQL's wal_status: reserved, extended, unreserved (invalidated at the next checkpoint) or lost. */
  walStatus: string | null;
}

/**
 * Reads every logical replication slot's lag, retained WAL and distance to max_slot_wal_keep_size
 * (any role may read pg_replication_slots) and sets the gauges. A slot whose connector is gone keeps
 * WAL until max_slot_wal_keep_size, then PostgreSQL invalidates it and Debezium has to snapshot
 * again: the ReplicationSlot* alerts watch these. Gauges of slots that no longer exist are removed,
 * so a dropped slot does not keep alerting with its last value.
 */
export async function sampleReplicationSlots(db: pg.Pool, metrics?: Metrics): Promise<ReplicationSlotSample[]> {
  const { rows } = await db.query<{
    slot_name: string;
    active: boolean;
    lag: string | null;
    retained: string | null;
    safe: string | null;
    wal_status: string | null;
  }>(
    `SELECT slot_name, active, wal_status,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained,
            safe_wal_size::text AS safe
       FROM pg_replication_slots WHERE slot_type = 'logical'`,
  );
  const samples = rows.map((r) => ({
    slot: r.slot_name,
    active: r.active,
    lagBytes: Number(r.lag ?? 0),
    retainedWalBytes: Number(r.retained ?? 0),
    safeWalBytes: r.safe === null ? null : Number(r.safe),
    walStatus: r.wal_status,
  }));
  if (metrics) {
    // Reset and set in one synchronous run: a scrape sees the old set or the new one, never a gap.
    metrics.replicationSlotLagBytes.reset();
    metrics.replicationSlotRetainedWalBytes.reset();
    metrics.replicationSlotSafeWalBytes.reset();
    metrics.replicationSlotLost.reset();
    for (const s of samples) {
      metrics.replicationSlotLagBytes.set({ slot: s.slot }, s.lagBytes);
      metrics.replicationSlotRetainedWalBytes.set({ slot: s.slot }, s.retainedWalBytes);
      if (s.safeWalBytes !== null) metrics.replicationSlotSafeWalBytes.set({ slot: s.slot }, s.safeWalBytes);
      metrics.replicationSlotLost.set({ slot: s.slot }, s.walStatus === 'lost' ? 1 : 0);
    }
  }
  return samples;
}

/**
 * Samples the slots every `intervalMs` until stop(), on a timer of its own: a cleaning round waits
 * for the slot to pass its watermark, so when Debezium stalls (exactly when these gauges matter) a
 * round takes much longer than its interval and could not be the clock. A failed sample (database
 * unreachable) goes to `onError` and the next one is tried on time.
 */
export function startReplicationSlotSampler(options: {
  db: pg.Pool;
  metrics: Metrics;
  intervalMs: number;
  onError?: (err: unknown) => void;
}): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = sampleReplicationSlots(options.db, options.metrics)
      .then(() => undefined)
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.intervalMs);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
